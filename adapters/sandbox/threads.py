"""Sandbox Threads (graph.threads.net).

`threads.net/oauth/authorize` (consent), `POST /oauth/access_token` (code → 1-h
token + user_id), `GET /access_token?grant_type=th_exchange_token` (60 days),
`GET /refresh_access_token?grant_type=th_refresh_token`, and `/v1.0/...`.

Publishing is two steps: `POST /{user-id}/threads` creates a container
(TEXT | IMAGE | VIDEO | CAROUSEL, `reply_to_id` for replies), IN_PROGRESS while
media is fetched, then FINISHED or ERROR with an `error_message`;
`POST /{user-id}/threads_publish?creation_id=` publishes it (code 24/4279009
while it is not resolvable yet). Text is at most 500 characters with emoji
counted by their UTF-8 bytes; carousels hold 2–20 items. Listings (`/threads`, `/replies`) are
newest first (a post's `/replies` oldest first with `reverse=false`) and read with cursor
pagination (`limit` ≤ 100, `after`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from adapters.sandbox.core import (
    WORLD,
    DroppedConnection,
    OAuthServer,
    OAuthSpec,
    SandboxError,
    SandboxUser,
    take_content_fault,
    take_drop_fault,
)
from adapters.sandbox.graph import (
    GraphFail,
    authenticate,
    check_version,
    container,
    container_status,
    edge_page,
    exchange_long_lived,
    fail,
    fetch_media,
    graph_time,
    guarded,
    invalid_param,
    new_container,
    new_id,
    ok,
    params_of,
    refresh_long_lived,
    unknown_path,
)
from adapters.text import threads_length

PLATFORM = "threads"
TOKEN_PREFIX = "THAA"
RATE_CODE = 4
TEXT_LIMIT = 500
MIN_CAROUSEL, MAX_CAROUSEL = 2, 20
IMAGE_TYPES = ("image/jpeg", "image/png")
VIDEO_TYPES = ("video/mp4", "video/quicktime")
MEDIA_TYPES = ("TEXT", "IMAGE", "VIDEO", "CAROUSEL")
REPLY_CONTROLS = (
    "everyone",
    "accounts_you_follow",
    "mentioned_only",
    "parent_post_author_only",
    "followers_only",
)

OAUTH = OAuthServer(
    OAuthSpec(
        platform=PLATFORM,
        display_name="Threads",
        scope_separator=",",
        pkce="none",
        token_auth="client_secret_post",
        access_ttl=3600.0,
        issue_refresh=False,
        brand_color="#000000",
        token_prefix=TOKEN_PREFIX,
    )
)

router = APIRouter()


@router.get("/oauth/authorize")
def authorize(request: Request) -> Response:
    return OAUTH.consent_page(request, action=request.url.path + "/decide")


@router.post("/oauth/authorize/decide")
async def decide(request: Request) -> Response:
    return await OAUTH.decide(request)


@router.post("/oauth/access_token")
async def access_token(request: Request) -> Response:
    body = {k: str(v) for k, v in (await request.form()).items()}
    try:
        out = await OAUTH.token(request, body)
    except SandboxError as exc:
        return JSONResponse(
            {"error": fail(400, 1 if exc.kind == "invalid_client" else 100, exc.message).error},
            status_code=400,
        )
    with WORLD.lock:
        grant = WORLD.state(PLATFORM).grants[out["access_token"]]
    return JSONResponse({"access_token": out["access_token"], "user_id": int(grant.user_id)})


@router.get("/access_token")
async def long_lived(request: Request) -> Response:
    async def run() -> Response:
        return JSONResponse(
            exchange_long_lived(
                PLATFORM, await params_of(request), grant_type="th_exchange_token", prefix=TOKEN_PREFIX
            )
        )

    return await guarded(run())


@router.get("/refresh_access_token")
async def refresh_token(request: Request) -> Response:
    async def run() -> Response:
        return JSONResponse(
            refresh_long_lived(
                PLATFORM, await params_of(request), grant_type="th_refresh_token", prefix=TOKEN_PREFIX
            )
        )

    return await guarded(run())


@router.get("/{version}/{node}")
async def get_node(version: str, node: str, request: Request) -> Response:
    return await guarded(_get_node(version, node, request))


@router.get("/{version}/{node}/{edge}")
async def get_edge(version: str, node: str, edge: str, request: Request) -> Response:
    return await guarded(_get_edge(version, node, edge, request))


@router.post("/{version}/{node}/{edge}")
async def post_edge(version: str, node: str, edge: str, request: Request) -> Response:
    return await guarded(_post_edge(version, node, edge, request))


async def _auth(version: str, request: Request) -> tuple[SandboxUser, dict[str, str]]:
    check_version(version)
    params = await params_of(request)
    user, _ = await authenticate(PLATFORM, request, params, rate_code=RATE_CODE)
    return user, params


def _pick(obj: dict[str, Any], fields: str | None, default: str = "id") -> dict[str, Any]:
    wanted = [f.strip() for f in (fields or default).split(",") if f.strip()]
    return {f: obj[f] for f in ["id", *wanted] if f in obj}


def _table(name: str) -> dict[str, Any]:
    return WORLD.state(PLATFORM).table(name)


def _not_found(node: str) -> GraphFail:
    return fail(
        400,
        100,
        f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        subcode=33,
        kind="GraphMethodException",
    )


def _post(node: str) -> dict[str, Any]:
    with WORLD.lock:
        post = _table("posts").get(node)
    if not post:
        raise _not_found(node)
    return post


async def _get_node(version: str, node: str, request: Request) -> Response:
    user, params = await _auth(version, request)
    fields = params.get("fields")
    if node in ("me", user.id):
        profile = {
            "id": user.id,
            "username": user.username,
            "name": user.display_name,
            "threads_profile_picture_url": user.avatar_url,
            "threads_biography": "",
        }
        return ok(PLATFORM, user.id, _pick(profile, fields))
    c = container(PLATFORM, node)
    if c and c["owner"] == user.id:
        view = {"id": c["id"], "status": container_status(c)}
        if view["status"] == "ERROR":
            view["error_message"] = c["error"]["error_message"]
        return ok(PLATFORM, user.id, _pick(view, fields))
    return ok(PLATFORM, user.id, _pick(_view(_post(node)), fields))


def _view(post: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in post.items() if k not in ("owner", "created_at", "urls")}


async def _get_edge(version: str, node: str, edge: str, request: Request) -> Response:
    user, params = await _auth(version, request)
    fields = params.get("fields")
    if node in ("me", user.id) and edge in ("threads", "replies"):
        want_reply = edge == "replies"
        with WORLD.lock:
            mine = [
                p for p in _table("posts").values() if p["owner"] == user.id and p["is_reply"] == want_reply
            ]
    elif edge == "replies":
        parent = _post(node)
        with WORLD.lock:
            mine = [p for p in _table("posts").values() if p.get("replied_to", {}).get("id") == parent["id"]]
    elif node in ("me", user.id) and edge == "threads_publishing_limit":
        cutoff = time.time() - 86400
        with WORLD.lock:
            recent = [
                p for p in _table("posts").values() if p["owner"] == user.id and p["created_at"] > cutoff
            ]
        usage = {
            "quota_usage": sum(not p["is_reply"] for p in recent),
            "config": {"quota_total": 250, "quota_duration": 86400},
            "reply_quota_usage": sum(p["is_reply"] for p in recent),
            "reply_config": {"quota_total": 1000, "quota_duration": 86400},
        }
        return ok(PLATFORM, user.id, {"data": [usage]})
    else:
        raise unknown_path()
    # A post's replies are listed oldest first only when asked with reverse=false.
    oldest_first = node not in ("me", user.id) and params.get("reverse", "true").lower() == "false"
    mine.sort(key=lambda p: p["created_at"], reverse=not oldest_first)
    return ok(PLATFORM, user.id, edge_page(request, params, mine, lambda p: _pick(_view(p), fields)))


async def _post_edge(version: str, node: str, edge: str, request: Request) -> Response:
    user, params = await _auth(version, request)
    if node not in ("me", user.id):
        raise fail(400, 10, "(#10) Application does not have permission for this action")
    if edge == "threads":
        return await _create_container(user, params, request)
    if edge == "threads_publish":
        return _publish(user, params, request)
    raise unknown_path()


def _rejected() -> GraphFail:
    return invalid_param(
        "The post cannot be published",
        user_title="Post not allowed",
        user_msg="This post goes against our Community Guidelines.",
    )


async def _media_error(
    url: str | None, accepted: tuple[str, ...], download_error: str, format_error: str
) -> dict[str, str] | None:
    if not url:
        raise invalid_param("The parameter image_url or video_url is required.")
    data, kind = await fetch_media(url)
    if data is None:
        return {"error_message": download_error}
    return None if kind in accepted else {"error_message": format_error}


async def _create_container(user: SandboxUser, params: dict[str, str], request: Request) -> Response:
    media_type = (params.get("media_type") or "").upper()
    if media_type not in MEDIA_TYPES:
        raise invalid_param(f"Param media_type must be one of {', '.join(MEDIA_TYPES)}")
    text = params.get("text", "")
    if threads_length(text) > TEXT_LIMIT:
        raise invalid_param(
            f"Param text must be at most {TEXT_LIMIT} characters long.",
            user_msg=f"The text must be at most {TEXT_LIMIT} characters (emoji count their bytes).",
        )
    if params.get("reply_control") and params["reply_control"] not in REPLY_CONTROLS:
        raise invalid_param("Param reply_control is invalid")
    reply_to = params.get("reply_to_id")
    if reply_to:
        _post(reply_to)
    if take_content_fault(PLATFORM, user.id, request):
        raise _rejected()
    carousel_item = params.get("is_carousel_item", "").lower() == "true"
    children: list[str] = []
    error = None
    if media_type == "TEXT":
        if not text:
            raise invalid_param("Param text is required for TEXT posts")
    elif media_type == "IMAGE":
        error = await _media_error(params.get("image_url"), IMAGE_TYPES, "UNKNOWN", "UNKNOWN")
    elif media_type == "VIDEO":
        error = await _media_error(
            params.get("video_url"), VIDEO_TYPES, "FAILED_DOWNLOADING_VIDEO", "FAILED_PROCESSING_VIDEO"
        )
    else:
        children = [i.strip() for i in (params.get("children") or "").split(",") if i.strip()]
        if not MIN_CAROUSEL <= len(children) <= MAX_CAROUSEL:
            raise invalid_param(f"A carousel needs {MIN_CAROUSEL} to {MAX_CAROUSEL} children")
        for child_id in children:
            child = container(PLATFORM, child_id)
            if (
                not child
                or child["owner"] != user.id
                or not child["carousel_item"]
                or container_status(child) != "FINISHED"
            ):
                raise invalid_param(
                    "Carousel item is invalid or not ready",
                    subcode=4279004,
                    user_msg=f"Item {child_id} must be a FINISHED carousel item.",
                )
    c = new_container(PLATFORM, user.id, media_type, params, error=error, children=children)
    c["carousel_item"] = carousel_item
    c["url"] = params.get("image_url") or params.get("video_url")
    return ok(PLATFORM, user.id, {"id": c["id"]})


def _publish(user: SandboxUser, params: dict[str, str], request: Request) -> Response:
    creation_id = params.get("creation_id", "")
    c = container(PLATFORM, creation_id)
    if not c or c["owner"] != user.id:
        raise fail(
            400,
            24,
            "The requested resource does not exist",
            subcode=4279009,
            user_title="Media Not Found",
            user_msg="The media was not found.",
        )
    status = container_status(c)
    if status == "IN_PROGRESS":
        raise fail(
            400,
            24,
            "The requested resource does not exist",
            subcode=4279009,
            user_title="Media Not Found",
            user_msg="The media is not ready to be published yet.",
        )
    if status in ("ERROR", "EXPIRED"):
        detail = c["error"]["error_message"] if c["error"] else "EXPIRED"
        raise invalid_param("The media cannot be published", subcode=4279004, user_msg=detail)
    if status == "PUBLISHED" or c["carousel_item"]:
        raise invalid_param(
            "The container cannot be published", user_msg="It is published or a carousel item."
        )
    if take_content_fault(PLATFORM, user.id, request):
        raise _rejected()
    post = _new_post(user, c)
    WORLD.record_post(
        PLATFORM,
        user.id,
        id=post["id"],
        text=post["text"],
        media=post["urls"],
        reply_to=c["params"].get("reply_to_id"),
        raw=params,
    )
    if take_drop_fault(PLATFORM, user.id, request):
        return DroppedConnection()
    return ok(PLATFORM, user.id, {"id": post["id"]})


def _new_post(user: SandboxUser, c: dict[str, Any]) -> dict[str, Any]:
    children = [container(PLATFORM, i) for i in c["children"]]
    shortcode = secrets.token_urlsafe(8)[:11]
    now = time.time()
    reply_to = c["params"].get("reply_to_id")
    post = {
        "id": new_id(),
        "owner": user.id,
        "text": c["params"].get("text", ""),
        "media_type": {"TEXT": "TEXT_POST", "CAROUSEL": "CAROUSEL_ALBUM"}.get(
            c["media_type"], c["media_type"]
        ),
        "shortcode": shortcode,
        "permalink": f"https://www.threads.net/@{user.username}/post/{shortcode}",
        "username": user.username,
        "timestamp": graph_time(now),
        "created_at": now,
        "is_reply": bool(reply_to),
        "urls": [ch["url"] for ch in children if ch] if children else [u for u in [c["url"]] if u],
    }
    if reply_to:
        post["replied_to"] = {"id": reply_to}
    with WORLD.lock:
        c["published_id"] = post["id"]
        _table("posts")[post["id"]] = post
    return post
