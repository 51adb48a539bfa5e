"""Dialect M (mypostshare-compatible, seed 004) under `/api/v1`: a thin router over Herald's services.

A customer of that system moves by changing the base URL to `https://<herald>/api`
and the key. Bodies are bare JSON (no `{data}` envelope); errors use Herald's envelope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from api.account_disconnect import disconnect_account
from api.connect_service import NewSession, create_session, hosted_url
from api.deps import PrincipalDep, SessionDep, StateDep
from api.dialect_m import lookups, shapes
from api.dialect_m.schemas import (
    IDENTIFIER,
    ConnectionOut,
    ConnectSessionCreatedOut,
    ConnectSessionIn,
    ConnectSessionOut,
    EndUserDetailOut,
    EndUserIn,
    EndUserOut,
    PostIn,
    PostOut,
    PostSummaryOut,
    ScheduledPostIn,
)
from api.errors import ERROR_RESPONSES, ApiError, NotFound, ValidationFailed
from api.idempotency import PlainIdempotentRoute
from api.ownership import get_owned
from api.post_requests import PostFields
from api.post_service import NewPost, create, existing_by_key, load_post, outcome_within
from api.routers.accounts import render as render_accounts
from store.accounts import upsert_managed_user
from store.events import emit
from store.models import ConnectSession, Post
from store.posts import results_of

router = APIRouter(prefix="/api/v1", tags=["dialect M (mypostshare)"], responses=ERROR_RESPONSES,
                   route_class=PlainIdempotentRoute)

ExternalUserId = Annotated[str, Path(min_length=1, max_length=256, pattern=IDENTIFIER)]


def _json(body, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


async def _post_body(session, post: Post) -> dict:
    await session.refresh(post)
    return shapes.post_json(post, (await results_of(session, [post.id]))[post.id])


# --- end users ---


@router.post("/end-users", response_model=EndUserOut, summary="Create or upsert an end user")
async def upsert_end_user(body: EndUserIn, principal: PrincipalDep, session: SessionDep) -> JSONResponse:
    fields = dict(workspace_id=principal.workspace_id, livemode=principal.livemode,
                  external_user_id=body.externalUserId, email=body.email, display_name=body.displayName,
                  metadata=body.metadata)
    try:
        user = await upsert_managed_user(session, **fields)
        await session.commit()
    except IntegrityError:  # a concurrent first upsert of the same user won: update that row instead
        await session.rollback()
        user = await upsert_managed_user(session, **fields)
        await session.commit()
    await session.refresh(user)
    return _json(shapes.end_user_json(user))


@router.get("/end-users/{externalUserId}", response_model=EndUserDetailOut, summary="Get an end user")
async def get_end_user(externalUserId: ExternalUserId, principal: PrincipalDep,
                       session: SessionDep) -> JSONResponse:
    user = await lookups.end_user(session, principal, externalUserId)
    return _json(shapes.end_user_json(user, await lookups.connections(session, principal, user)))


@router.get("/end-users/{externalUserId}/connections", response_model=list[ConnectionOut],
            summary="List an end user's connections")
async def list_connections(externalUserId: ExternalUserId, principal: PrincipalDep,
                           session: SessionDep) -> JSONResponse:
    user = await lookups.end_user(session, principal, externalUserId)
    return _json([shapes.connection_json(a) for a in await lookups.connections(session, principal, user)])


@router.delete("/end-users/{externalUserId}/connections/{platform}", status_code=204, response_class=Response,
               summary="Disconnect a platform")
async def disconnect_platform(externalUserId: ExternalUserId, platform: Annotated[str, Path(max_length=32)],
                              request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    """Revoke at the platform where it can and forget the tokens, for every live connection there."""
    lookups.check_platform(platform)
    user = await lookups.end_user(session, principal, externalUserId)
    live = [a for a in await lookups.connections(session, principal, user, platform) if a.status != "disconnected"]
    if not live:
        raise NotFound(f"{platform} connection of end user {externalUserId}")
    for account in live:
        await disconnect_account(request, session, account)
    for rendered in await render_accounts(session, live):
        await emit(session, principal.workspace_id, principal.livemode, "account.disconnected",
                   rendered.model_dump(mode="json"))
    await session.commit()
    return Response(status_code=204)


# --- connect sessions ---


@router.post("/connect-sessions", status_code=201, response_model=ConnectSessionCreatedOut,
             summary="Create a hosted connect session")
async def create_connect_session(body: ConnectSessionIn, principal: PrincipalDep, session: SessionDep,
                                 state: StateDep) -> JSONResponse:
    lookups.check_platform(body.platform)
    await lookups.require_allowlisted(session, principal, body.redirectUri)
    user = await lookups.end_user(session, principal, body.externalUserId)
    try:
        row = await create_session(state, session, principal, NewSession(
            platform=body.platform, external_user_id=user.external_user_id, external_user_email=user.email,
            return_url=body.redirectUri, allow_quickstart_creds=True, dialect="m"))
    except ApiError as exc:
        raise shapes.in_m_terms(exc) from None
    return _json(shapes.session_created_json(row, hosted_url(state, row.id)), 201)


@router.get("/connect-sessions/{session_id}", response_model=ConnectSessionOut,
            summary="Get a connect session's status")
async def get_connect_session(session_id: str, principal: PrincipalDep, session: SessionDep) -> JSONResponse:
    return _json(shapes.session_json(await get_owned(session, ConnectSession, session_id, principal,
                                                     "Connect session")))


# --- posts ---


async def _create_post(request: Request, body: PostIn, principal, session, state) -> JSONResponse:
    key = request.headers.get("idempotency-key")
    existing = await existing_by_key(state, session, principal, key)
    if existing is not None:  # the same key after the replay window: the post, not a second one
        return _json(await _post_body(session, existing))
    user = await lookups.end_user(session, principal, body.externalUserId)
    lookups.check_platforms(body.platforms)
    account_ids = await lookups.target_accounts(session, principal, user, body.platforms)
    scheduled_at = shapes.as_utc(body.scheduleAt) if isinstance(body, ScheduledPostIn) else None
    fields = PostFields(caption=body.content, title=body.title, account_ids=account_ids,
                        media_urls=[body.mediaUrl] if body.mediaUrl else None, scheduled_at=scheduled_at)
    try:
        created = await create(state, principal, NewPost(fields, idempotency_key=key, dialect="m",
                                                         external_user_id=user.external_user_id,
                                                         metadata=body.metadata))
    except ApiError as exc:
        raise shapes.in_m_terms(exc) from None
    post, results = created.post, created.results
    if scheduled_at is None and not created.replayed:
        post, results = await outcome_within(state, post, results)
    return _json(shapes.post_json(post, results), 201)


@router.post("/posts", status_code=201, response_model=PostOut, summary="Publish immediately")
async def publish_now(body: PostIn, request: Request, principal: PrincipalDep, session: SessionDep,
                      state: StateDep) -> JSONResponse:
    """Waits a bounded time for the platforms; poll `GET /api/v1/posts/{id}` if it is still processing."""
    return await _create_post(request, body, principal, session, state)


@router.post("/posts/scheduled", status_code=201, response_model=PostOut, summary="Schedule a post")
async def schedule(body: ScheduledPostIn, request: Request, principal: PrincipalDep, session: SessionDep,
                   state: StateDep) -> JSONResponse:
    return await _create_post(request, body, principal, session, state)


@router.get("/posts/{post_id}", response_model=PostOut, summary="Get a post request")
async def get_post(post_id: str, principal: PrincipalDep, session: SessionDep) -> JSONResponse:
    return _json(await _post_body(session, await load_post(session, principal, post_id)))


@router.get("/posts", response_model=list[PostSummaryOut], summary="List post requests, newest first")
async def list_posts(
    principal: PrincipalDep, session: SessionDep,
    externalUserId: str | None = Query(default=None, max_length=256),
    status: str | None = Query(default=None, max_length=32),
    platform: str | None = Query(default=None, max_length=32),
    dateFrom: str | None = Query(default=None, max_length=64, description="ISO 8601 date or timestamp"),
    dateTo: str | None = Query(default=None, max_length=64, description="ISO 8601; a bare date covers that day"),
    limit: int = Query(default=100, ge=1, le=500),
) -> JSONResponse:
    if status is not None and status not in shapes.HERALD_POST_STATUS:
        raise ValidationFailed.one("status", "invalid_status",
                                   f"status must be one of {', '.join(shapes.HERALD_POST_STATUS)}")
    if platform is not None:
        lookups.check_platform(platform)
    bounds = {}
    for name, value in (("dateFrom", dateFrom), ("dateTo", dateTo)):
        if value is not None:
            try:
                bounds[name] = shapes.parse_bound(value, upper=name == "dateTo")
            except ValueError:
                raise ValidationFailed.one(name, "invalid_timestamp",
                                           f"{name} must be an ISO 8601 date or timestamp") from None
    filters = lookups.PostFilters(external_user_id=externalUserId, status=status, platform=platform,
                                  created_from=bounds["dateFrom"][0] if "dateFrom" in bounds else None,
                                  created_to=bounds.get("dateTo"), limit=limit)
    return _json([shapes.post_summary_json(p) for p in await lookups.find_posts(session, principal, filters)])
