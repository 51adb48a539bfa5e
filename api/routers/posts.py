"""`/v1/social-posts` (and its alias `/v1/posts`): create, schedule, edit, cancel, retry, validate, bulk."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from sqlmodel import select

from adapters.registry import PLATFORMS
from api import pagination
from api.deps import PrincipalDep, SessionDep, StateDep
from api.errors import (
    ERROR_RESPONSES,
    ApiError,
    Conflict,
    ServiceUnavailable,
    ValidationFailed,
    api_error_response,
    field_path,
)
from api.idempotency import IdempotentRoute
from api.post_requests import PostCreate, PostUpdate, plan_post
from api.post_service import (
    NewPost,
    create,
    dispatch,
    load_post,
    outcome_within,
    render,
    retry_result,
    wait_for_outcome,
    workflow_id,
)
from store.models import Post, PostResult
from store.posts import apply_changes, delete_post, post_json, results_of, targets_json
from workflows.publish import PublishPostWorkflow
from workflows.publish_payloads import CancelRequest, EditRequest

POST_STATUSES = Literal["draft", "scheduled", "publishing", "published", "partial", "failed", "cancelled"]
MAX_BULK = 50


class PostOut(BaseModel):
    data: dict[str, Any]


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    posts: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BULK)
    idempotency_key: str | None = Field(default=None, max_length=64)


def _key(request: Request, body_key: str | None) -> str | None:
    return request.headers.get("idempotency-key") or body_key


async def _create(state, principal, body: PostCreate, key: str | None) -> tuple[int, dict]:
    created = await create(state, principal, NewPost(body, draft=body.status == "draft", idempotency_key=key))
    post, results = created.post, created.results
    if post.status == "publishing" and not created.replayed:
        post, results = await outcome_within(state, post, results)
    return 200, post_json(post, results)


def build(prefix: str, include_in_schema: bool) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["posts"], responses=ERROR_RESPONSES, route_class=IdempotentRoute,
                       include_in_schema=include_in_schema)
    name = prefix.rsplit("/", 1)[-1].replace("-", "_")

    @router.post("", response_model=PostOut, operation_id=f"create_{name}",
                 summary="Publish now, schedule, or save a draft")
    async def create_post(body: PostCreate, request: Request, principal: PrincipalDep,
                          state: StateDep) -> JSONResponse:
        status, data = await _create(state, principal, body, _key(request, body.idempotency_key))
        return JSONResponse({"data": data}, status_code=status)

    @router.post("/validate", operation_id=f"validate_{name}", summary="Dry run: the issues a create would give")
    async def validate(body: PostCreate, principal: PrincipalDep, session: SessionDep, state: StateDep) -> dict:
        plan = await session.run_sync(plan_post, principal, state.settings, body, draft=body.status == "draft")
        return {"data": {"valid": True, "issues": [], "targets": len(plan.targets)}}

    @router.post("/bulk", operation_id=f"bulk_{name}", summary="Create up to 50 posts, each with its own result")
    async def bulk(body: BulkIn, principal: PrincipalDep, state: StateDep, request: Request) -> dict:
        items = []
        for i, raw in enumerate(body.posts):
            try:
                item = PostCreate.model_validate(raw)
                status, data = await _create(state, principal, item, item.idempotency_key)
                items.append({"index": i, "status": status, "data": data})
            except ValidationError as exc:
                issues = [{"field": f"posts[{i}].{field_path(e['loc'])}", "code": e["type"], "message": e["msg"]}
                          for e in exc.errors()]
                items.append({"index": i, "status": 422, "error": {
                    "code": "VALIDATION_ERROR", "normalized_code": "validation_error",
                    "message": issues[0]["message"], "issues": issues}})
            except ApiError as exc:
                err = json.loads(api_error_response(request, exc).body)["error"]
                items.append({"index": i, "status": exc.status, "error": err})
        return {"data": items, "meta": {"succeeded": sum(1 for x in items if "data" in x),
                                        "failed": sum(1 for x in items if "error" in x)}}

    @router.get("", operation_id=f"list_{name}")
    async def list_posts(
        principal: PrincipalDep, session: SessionDep, page: pagination.PageDep,
        status: POST_STATUSES | None = None,
        platform: Literal[PLATFORMS] | None = None,
        from_: datetime | None = Query(default=None, alias="from"),
        to: datetime | None = None,
    ) -> dict:
        q = select(Post).where(Post.workspace_id == principal.workspace_id, Post.livemode == principal.livemode)
        if status:
            q = q.where(Post.status == status)
        if platform:
            q = q.where(Post.id.in_(select(PostResult.post_id).where(PostResult.platform == platform)))
        for bound, op in ((from_, "ge"), (to, "lt")):
            if bound is not None:
                if bound.tzinfo is None:
                    raise ValidationFailed.one("from" if op == "ge" else "to", "timezone_required",
                                               "Timestamps need a timezone (RFC 3339)")
                q = q.where(Post.created_at >= bound if op == "ge" else Post.created_at < bound)
        rows = list((await session.exec(pagination.apply(q, Post, page))).all())
        out = pagination.envelope(rows, page, lambda p: p)
        results = await results_of(session, [p.id for p in out["data"]])
        out["data"] = [post_json(p, results[p.id]) for p in out["data"]]
        return out

    @router.get("/{post_id}", response_model=PostOut, operation_id=f"get_{name}")
    async def get_post(post_id: str, principal: PrincipalDep, session: SessionDep) -> dict:
        return {"data": await render(session, await load_post(session, principal, post_id))}

    @router.patch("/{post_id}", response_model=PostOut, operation_id=f"update_{name}",
                  summary="Edit a draft or scheduled post, or move its schedule")
    async def update(post_id: str, body: PostUpdate, principal: PrincipalDep, session: SessionDep,
                     state: StateDep) -> dict:
        post = await load_post(session, principal, post_id)
        if post.status not in ("draft", "scheduled"):
            raise Conflict(f"A {post.status} post cannot be edited")
        patch = body.model_dump(exclude_unset=True, mode="json")
        if not patch:
            raise ValidationFailed.one("body", "empty_update", "Nothing to change")
        merged = _merge(post.request, patch)
        try:
            candidate = PostUpdate.model_validate(merged)
        except ValidationError as exc:
            raise ValidationFailed(exc.errors()[0]["msg"], issues=[
                {"field": field_path(e["loc"]), "code": e["type"], "message": e["msg"]} for e in exc.errors()]) from None
        if post.status == "scheduled" and candidate.scheduled_at is None:
            raise ValidationFailed.one("scheduled_at", "required", "A scheduled post needs scheduled_at; "
                                       "cancel it to stop it")
        plan = await session.run_sync(plan_post, principal, state.settings, candidate, draft=post.status == "draft")
        changes = {"caption": plan.caption, "title": plan.title, "request": plan.request,
                   "scheduled_at": plan.scheduled_at.isoformat() if plan.scheduled_at else None}
        if set(patch) - {"scheduled_at"}:
            changes["targets"] = targets_json(plan.targets)
        if post.status == "draft":
            await apply_changes(session, post, changes)
            await session.commit()
        else:
            await _update_workflow(state, session, post, EditRequest(changes=changes, scheduled_at=plan.scheduled_at))
        return {"data": await render(session, post)}

    @router.post("/{post_id}/publish", response_model=PostOut, operation_id=f"publish_{name}",
                 summary="Publish (or schedule) a draft")
    async def publish_draft(post_id: str, principal: PrincipalDep, session: SessionDep, state: StateDep) -> dict:
        post = await load_post(session, principal, post_id)
        if post.status != "draft":
            raise Conflict(f"Only drafts can be published; this post is {post.status}")
        body = PostCreate.model_validate({k: v for k, v in post.request.items() if k != "status"})
        if body.scheduled_at is not None and body.scheduled_at <= datetime.now(UTC):
            body = body.model_copy(update={"scheduled_at": None})
        plan = await session.run_sync(plan_post, principal, state.settings, body)
        await apply_changes(session, post, {"targets": targets_json(plan.targets)})
        post.scheduled_at = plan.scheduled_at
        post.mode = "scheduled" if plan.scheduled_at else "immediate"
        post.status = "scheduled" if plan.scheduled_at else "publishing"
        await session.commit()
        await dispatch(state, session, post)
        if post.status == "publishing":
            await wait_for_outcome(state, post.id, state.settings.immediate_publish_wait_seconds)
        return {"data": await render(session, post)}

    @router.post("/{post_id}/cancel", response_model=PostOut, operation_id=f"cancel_{name}")
    async def cancel(post_id: str, principal: PrincipalDep, session: SessionDep, state: StateDep) -> dict:
        post = await load_post(session, principal, post_id)
        if post.status != "scheduled":
            raise Conflict(f"Only scheduled posts can be cancelled; this post is {post.status}")
        await _update_workflow(state, session, post, CancelRequest())
        return {"data": await render(session, post)}

    @router.delete("/{post_id}", operation_id=f"delete_{name}")
    async def delete(post_id: str, principal: PrincipalDep, session: SessionDep) -> dict:
        post = await load_post(session, principal, post_id)
        if post.status not in ("draft", "cancelled"):
            raise Conflict(f"Only drafts and cancelled posts can be deleted; this post is {post.status}")
        await delete_post(session, post)
        await session.commit()
        return {"data": {"id": post_id, "deleted": True}}

    @router.post("/{post_id}/results/{result_id}/retry", response_model=PostOut, operation_id=f"retry_{name}",
                 summary="Run a new attempt for one failed or unconfirmed result")
    async def retry(post_id: str, result_id: str, principal: PrincipalDep, session: SessionDep,
                    state: StateDep) -> dict:
        post = await load_post(session, principal, post_id)
        await retry_result(state, session, post, result_id)
        await wait_for_outcome(state, post.id, state.settings.immediate_publish_wait_seconds)
        return {"data": await render(session, post)}

    return router


def _merge(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A patch replaces whole fields; switching shape drops the other shape's fields."""
    merged = {k: v for k, v in stored.items() if k in PostUpdate.model_fields}
    if "platform_posts" in patch:
        merged.pop("account_ids", None)
        merged.pop("media_urls", None)
        merged.pop("media_ids", None)
    if "account_ids" in patch:
        merged.pop("platform_posts", None)
    merged.update(patch)
    return {k: v for k, v in merged.items() if v is not None or k == "scheduled_at"}


async def _update_workflow(state, session, post: Post, request: EditRequest | CancelRequest) -> None:
    """Edits and cancels go through the waiting workflow, so the change it accepts is the one that runs."""
    if state.temporal is None:
        raise ServiceUnavailable("The workflow engine is not reachable; retry shortly")
    handle = state.temporal.get_workflow_handle(workflow_id(post.id))
    update = PublishPostWorkflow.cancel if isinstance(request, CancelRequest) else PublishPostWorkflow.edit
    for first in (True, False):
        try:
            await handle.execute_update(update, request)
            return
        except WorkflowUpdateFailedError as exc:
            raise Conflict(getattr(exc.cause, "message", None) or "The post can no longer be changed") from None
        except RPCError as exc:
            if not (first and exc.status == RPCStatusCode.NOT_FOUND and post.dispatched_at is None):
                raise Conflict("The post is no longer waiting to publish") from None
        # Accepted a moment ago, its workflow not started yet (that happens after the answer): start it here.
        # Starting is idempotent, so a start racing this one is harmless.
        await dispatch(state, session, post)


social_posts = build("/v1/social-posts", include_in_schema=True)
posts_alias = build("/v1/posts", include_in_schema=False)
