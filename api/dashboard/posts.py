"""Posts with their per-platform results, a link to each post's workflow, and the retry of a failed result."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import select

from adapters.registry import PLATFORMS
from api import pagination
from api.dashboard.auth import OperatorDep
from api.dashboard.csrf import CsrfForm
from api.dashboard.pages import load_app, mode_of, new_router, owned, page_of, query_filters, see_other
from api.dashboard.render import link, page, temporal_url
from api.deps import SessionDep, StateDep
from api.errors import BadRequest
from api.post_service import retry_result
from api.routers.posts import POST_STATUSES
from store.models import Post, PostResult
from store.posts import results_of

STATUSES = POST_STATUSES.__args__

router = new_router()


@router.get("/apps/{workspace_id}/posts")
async def posts(workspace_id: str, request: Request, operator: OperatorDep, session: SessionDep,
                state: StateDep) -> Response:
    ws = await load_app(session, workspace_id)
    mode, livemode = mode_of(request.query_params.get("mode"))
    filters = query_filters(request, "status", "platform", "external_user_id", max_length=256)
    if filters["status"] not in (None, *STATUSES) or filters["platform"] not in (None, *PLATFORMS):
        raise BadRequest("Unknown status or platform filter.")
    query = select(Post).where(Post.workspace_id == ws.id, Post.livemode == livemode)
    if filters["status"]:
        query = query.where(Post.status == filters["status"])
    if filters["platform"]:
        query = query.where(Post.id.in_(select(PostResult.post_id).where(PostResult.platform == filters["platform"])))
    if filters["external_user_id"]:
        query = query.where(Post.external_user_id == filters["external_user_id"])
    current = page_of(request)
    found = pagination.envelope(list((await session.exec(pagination.apply(query, Post, current))).all()),
                                current, lambda p: p)
    next_cursor = found["meta"]["next_cursor"]
    return page(request, "posts.html", operator, ws=ws, mode=mode, tab="posts", posts=found["data"],
                results=await results_of(session, [p.id for p in found["data"]]), statuses=STATUSES,
                platforms=PLATFORMS, filters=filters,
                workflow_links={p.id: temporal_url(state.settings, p.id) for p in found["data"]},
                next_url=link(f"/dashboard/apps/{ws.id}/posts", mode=mode, **filters, cursor=next_cursor,
                              limit=request.query_params.get("limit"))
                if next_cursor else None)


@router.post("/apps/{workspace_id}/posts/{post_id}/results/{result_id}/retry")
async def retry(workspace_id: str, post_id: str, result_id: str, operator: OperatorDep, form: CsrfForm,
                session: SessionDep, state: StateDep) -> Response:
    ws = await load_app(session, workspace_id)
    post = await owned(session, Post, post_id, ws, "post")
    mode = "live" if post.livemode else "test"
    # The API's retry route runs exactly this: a failed or unconfirmed result, once its workflow has ended.
    await retry_result(state, session, post, result_id)
    return see_other(f"/dashboard/apps/{ws.id}/posts?mode={mode}&done=retry_started#{post.id}")
