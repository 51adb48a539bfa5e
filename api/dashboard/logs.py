"""The app's operator log: API requests and pipeline events, searched by request, post or account."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import select

from api import pagination
from api.dashboard.auth import OperatorDep
from api.dashboard.pages import load_app, mode_of, new_router, page_of, query_filters
from api.dashboard.render import link, page
from api.deps import SessionDep
from api.errors import BadRequest
from api.routers.logs import KINDS, filtered
from store.models import OperatorLog

router = new_router()


@router.get("/apps/{workspace_id}/logs")
async def logs(workspace_id: str, request: Request, operator: OperatorDep, session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    mode, livemode = mode_of(request.query_params.get("mode"))
    filters = query_filters(request, "request_id", "post_id", "account_id", "kind")
    if filters["kind"] not in (None, *KINDS):
        raise BadRequest("kind is request or pipeline.")
    query = filtered(select(OperatorLog).where(OperatorLog.workspace_id == ws.id, OperatorLog.livemode == livemode),
                     **filters)
    current = page_of(request, default=50)
    found = pagination.envelope(list((await session.exec(pagination.apply(query, OperatorLog, current))).all()),
                                current, lambda row: row)
    next_cursor = found["meta"]["next_cursor"]
    return page(request, "logs.html", operator, ws=ws, mode=mode, tab="logs", rows=found["data"], filters=filters,
                kinds=KINDS, next_url=link(f"/dashboard/apps/{ws.id}/logs", mode=mode, **filters, cursor=next_cursor,
                                           limit=request.query_params.get("limit"))
                if next_cursor else None)
