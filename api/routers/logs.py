"""`/v1/logs`: the workspace's operator log (API requests and pipeline events) in the key's mode."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import pagination
from api.deps import PrincipalDep, SessionDep
from api.errors import ERROR_RESPONSES
from api.ownership import scoped
from store.models import OperatorLog

router = APIRouter(prefix="/v1/logs", tags=["logs"], responses=ERROR_RESPONSES)

Kind = Literal["request", "pipeline"]
KINDS = Kind.__args__


class LogPublic(BaseModel):
    id: str
    object: str = "operator_log"
    kind: str
    level: str
    request_id: str | None
    method: str | None
    path: str | None
    status_code: int | None
    duration_ms: int | None
    post_id: str | None
    account_id: str | None
    message: str
    livemode: bool
    created_at: datetime


class LogList(BaseModel):
    data: list[LogPublic]
    meta: dict


def public(row: OperatorLog) -> LogPublic:
    return LogPublic(**row.model_dump(include=set(LogPublic.model_fields)))


def filtered(query, *, request_id: str | None, post_id: str | None, account_id: str | None, kind: str | None):
    """Exact-match filters shared with the dashboard's log page."""
    for column, value in ((OperatorLog.request_id, request_id), (OperatorLog.post_id, post_id),
                          (OperatorLog.account_id, account_id), (OperatorLog.kind, kind)):
        if value:
            query = query.where(column == value)
    return query


@router.get("", response_model=LogList, summary="Operator logs: requests and pipeline events, newest first")
async def list_logs(
    principal: PrincipalDep, session: SessionDep, page: pagination.PageDep,
    request_id: str | None = Query(default=None, max_length=64, description="The `X-Request-Id` of a call"),
    post_id: str | None = Query(default=None, max_length=40),
    account_id: str | None = Query(default=None, max_length=40),
    kind: Kind | None = None,
) -> dict:
    query = filtered(scoped(OperatorLog, principal), request_id=request_id, post_id=post_id,
                     account_id=account_id, kind=kind)
    rows = (await session.exec(pagination.apply(query, OperatorLog, page))).all()
    return pagination.envelope(list(rows), page, public)
