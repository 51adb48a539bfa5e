"""Creating, dispatching and waiting on posts: the one implementation both dialects call."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import or_
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from api.auth import Principal
from api.errors import Conflict, NotFound, ServiceUnavailable
from api.post_requests import PostPlan
from api.state import AppState
from store.events import emit
from store.models import Post, PostResult, PublishAttempt, utcnow
from store.posts import create_post, post_json, results_of, targets_json
from temporal_client import start_post_workflow, workflow_id

log = logging.getLogger("herald.posts")


async def existing_by_key(state: AppState, session, principal: Principal, key: str | None) -> Post | None:
    """The post an earlier request with this idempotency key created. If that request died between writing
    the post and starting its workflow, the workflow is started now rather than by the sweeper later."""
    if not key:
        return None
    post = (await session.exec(select(Post).where(
        Post.workspace_id == principal.workspace_id, Post.livemode == principal.livemode,
        Post.idempotency_key == key))).first()
    if post is not None and post.dispatched_at is None and post.status in ("scheduled", "publishing"):
        await dispatch(state, session, post)  # starting is idempotent: a running workflow is left alone
    return post


async def create_from_plan(state: AppState, session, principal: Principal, plan: PostPlan, *, draft: bool,
                           idempotency_key: str | None, dialect: str = "u", external_user_id: str | None = None,
                           metadata: dict | None = None) -> tuple[Post, list[PostResult]]:
    """Write the post and its results, then start its workflow (unless it is a draft)."""
    status = "draft" if draft else ("scheduled" if plan.scheduled_at else "publishing")
    post, results = await create_post(
        session, workspace_id=principal.workspace_id, livemode=principal.livemode, status=status,
        mode="scheduled" if plan.scheduled_at else "immediate", caption=plan.caption, title=plan.title,
        scheduled_at=plan.scheduled_at, targets=targets_json(plan.targets), request=plan.request,
        idempotency_key=idempotency_key, dialect=dialect, external_user_id=external_user_id, metadata=metadata)
    if status == "scheduled":
        await emit(session, post.workspace_id, post.livemode, "post.scheduled", post_json(post, results))
    await session.commit()
    platforms = sorted({t.account.platform for t in plan.targets})
    if status == "scheduled":
        # The answer need not wait for the start: the post is committed, an edit or cancel that comes first
        # starts the workflow itself (see routers.posts), and if this process dies first the sweeper does.
        # It starts from a copy: the request goes on using `post` in its session, which may expire it.
        state.spawn(dispatch(state, None, Post.model_validate(post.model_dump()), platforms=platforms))
    elif status == "publishing":
        await dispatch(state, session, post, platforms=platforms)
    return post, results


async def dispatch(state: AppState, session, post: Post, retry_result_ids: list[str] | None = None,
                   platforms: list[str] | None = None) -> None:
    """Start the post's workflow. If Temporal is unreachable the post stays undispatched and the
    maintenance sweeper starts it later: an accepted post is never lost. `session` is only read when
    `platforms` is not given."""
    client = state.temporal
    if client is None:
        log.warning("temporal unavailable; post %s left for the dispatch sweeper", post.id)
        return
    if platforms is None:
        platforms = sorted(set((await session.exec(
            select(PostResult.platform).where(PostResult.post_id == post.id))).all()))
    try:
        started = await start_post_workflow(client, state.settings, post, platforms, retry_result_ids)
    except RPCError as exc:
        log.warning("could not start workflow for %s (%s); the sweeper will retry", post.id, exc.status)
        return
    if not started and retry_result_ids:
        raise Conflict("The post is still publishing; retry once it has finished")
    state.write_behind.dispatched(post.id)


async def wait_for_outcome(state: AppState, post_id: str, timeout: float) -> None:
    """Wait a bounded time for the fan-out; the caller then returns the post as it is."""
    if state.temporal is None or timeout <= 0:
        return
    handle = state.temporal.get_workflow_handle(workflow_id(post_id))
    try:
        await asyncio.wait_for(handle.result(), timeout=timeout)
    except (TimeoutError, asyncio.TimeoutError):
        pass
    except Exception as exc:  # a failed or terminated run: the post's rows say what happened
        log.warning("workflow for %s ended abnormally: %s", post_id, type(exc).__name__)


async def workflow_running(state: AppState, post_id: str) -> bool:
    if state.temporal is None:
        raise ServiceUnavailable("The workflow engine is not reachable; retry shortly")
    try:
        desc = await state.temporal.get_workflow_handle(workflow_id(post_id)).describe()
    except RPCError:
        return False
    return desc.status == WorkflowExecutionStatus.RUNNING


async def retry_result(state: AppState, session, post: Post, result_id: str) -> None:
    """Run a new attempt for one failed or unconfirmed result of `post` (already scoped to its owner)."""
    result = await session.get(PostResult, result_id)
    if result is None or result.post_id != post.id:
        raise NotFound("Result")
    if result.status not in ("failed", "unconfirmed"):
        raise Conflict(f"Only failed or unconfirmed results can be retried; this one is {result.status}")
    if await workflow_running(state, post.id):
        raise Conflict("The post is still publishing; retry once it has finished")
    if result.status == "unconfirmed":
        # The engineer checked the platform and asks for a new post: earlier unknown attempts are abandoned.
        for att in (await session.exec(select(PublishAttempt).where(
                PublishAttempt.result_id == result.id,
                or_(PublishAttempt.status == "unknown", PublishAttempt.status == "started")))).all():
            att.status = "abandoned"
            session.add(att)
    result.status, result.error_code, result.error_message = "pending", None, None
    result.updated_at = post.updated_at = utcnow()
    post.status = "publishing"
    session.add_all([result, post])
    await session.commit()
    await dispatch(state, session, post, retry_result_ids=[result.id])


async def load_post(session, principal: Principal, post_id: str) -> Post:
    post = (await session.exec(select(Post).where(
        Post.id == post_id, Post.workspace_id == principal.workspace_id,
        Post.livemode == principal.livemode))).first()
    if post is None:
        raise NotFound("Post")
    return post


async def render(session, post: Post) -> dict:
    await session.refresh(post)
    return post_json(post, (await results_of(session, [post.id]))[post.id])
