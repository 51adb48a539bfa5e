"""Creating, dispatching and waiting on posts: the one implementation both dialects call."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import or_
from sqlmodel import Session, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from api.auth import Principal
from api.errors import Conflict, NotFound, ServiceUnavailable
from api.post_requests import PostFields, plan_post
from api.state import AppState
from store.events import event_insert, new_event
from store.models import Post, PostResult, PublishAttempt, utcnow
from store.posts import create_post, post_json, results_of, results_query, targets_json
from temporal_client import start_post_workflow, workflow_id

log = logging.getLogger("herald.posts")


def _by_key(principal: Principal, key: str):
    return select(Post).where(Post.workspace_id == principal.workspace_id, Post.livemode == principal.livemode,
                              Post.idempotency_key == key)


def _undispatched(post: Post) -> bool:
    return post.dispatched_at is None and post.status in ("scheduled", "publishing")


async def existing_by_key(state: AppState, session, principal: Principal, key: str | None) -> Post | None:
    """The post an earlier request with this idempotency key created. If that request died between writing
    the post and starting its workflow, the workflow is started now rather than by the sweeper later."""
    if not key:
        return None
    post = (await session.exec(_by_key(principal, key))).first()
    if post is not None and _undispatched(post):
        await dispatch(state, session, post)  # starting is idempotent: a running workflow is left alone
    return post


@dataclass
class NewPost:
    """A create request before validation, as both dialects hand it to `create`."""

    body: PostFields
    draft: bool = False
    idempotency_key: str | None = None
    dialect: str = "u"
    external_user_id: str | None = None
    metadata: dict | None = None


@dataclass
class Created:
    post: Post
    results: list[PostResult]
    replayed: bool  # an earlier request with the same idempotency key created it: nothing new was written


def _create_in(conn, principal: Principal, settings, new: NewPost) -> Created:
    with Session(conn) as s:
        if new.idempotency_key:
            post = s.exec(_by_key(principal, new.idempotency_key)).first()
            if post is not None:
                return Created(post, list(s.exec(results_query([post.id])).all()), replayed=True)
        plan = plan_post(s, principal, settings, new.body, draft=new.draft)
        status = "draft" if new.draft else ("scheduled" if plan.scheduled_at else "publishing")
        post, results = create_post(
            s, workspace_id=principal.workspace_id, livemode=principal.livemode, status=status,
            mode="scheduled" if plan.scheduled_at else "immediate", caption=plan.caption, title=plan.title,
            scheduled_at=plan.scheduled_at, targets=targets_json(plan.targets), request=plan.request,
            idempotency_key=new.idempotency_key, dialect=new.dialect, external_user_id=new.external_user_id,
            metadata=new.metadata)
        if status == "scheduled":
            s.execute(event_insert(new_event(post.workspace_id, post.livemode, "post.scheduled",
                                             post_json(post, results))))
        return Created(post, sorted(results, key=lambda r: (r.created_at, r.id)), replayed=False)


async def create(state: AppState, principal: Principal, new: NewPost) -> Created:
    """Validate and write the post, its results and its event in one database unit (one thread hop instead
    of one per cursor call), then start its workflow unless it is a draft. A request that fails validation
    writes nothing."""
    created = await state.db.unit(partial(_create_in, principal=principal, settings=state.settings, new=new))
    post, platforms = created.post, sorted({r.platform for r in created.results})
    if created.replayed:
        if _undispatched(post):  # the request that wrote it died before starting its workflow
            await dispatch(state, None, post, platforms=platforms)
    elif post.status == "scheduled":
        # The answer need not wait for the start: the post is committed, an edit or cancel that comes first
        # starts the workflow itself (see routers.posts), and if this process dies first the sweeper does.
        state.spawn(dispatch(state, None, post, platforms=platforms))
    elif post.status == "publishing":
        await dispatch(state, None, post, platforms=platforms)
    return created


async def outcome_within(state: AppState, post: Post, results: list[PostResult]) -> tuple[Post, list[PostResult]]:
    """A just-created immediate post after waiting the configured time for its fan-out: as it is then (the
    workflow writes it from another process), or as written when the wait is zero."""
    timeout = state.settings.immediate_publish_wait_seconds
    if timeout <= 0:
        return post, results
    await wait_for_outcome(state, post.id, timeout)

    def read(conn) -> tuple[Post, list[PostResult]]:
        with Session(conn) as s:
            return s.get(Post, post.id) or post, list(s.exec(results_query([post.id])).all())

    return await state.db.unit(read, writes=False)


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
