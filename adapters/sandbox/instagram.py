"""Sandbox Instagram (Instagram API with Instagram Login).

Hosts folded onto one router: `www.instagram.com/oauth/authorize` (consent),
`api.instagram.com/oauth/access_token` (code → 1-h token + user_id),
`graph.instagram.com/access_token` (ig_exchange_token → 60 days),
`graph.instagram.com/refresh_access_token` (ig_refresh_token) and
`graph.instagram.com/v{N}/...` (profile, containers, publish, comments).

Publishing is two steps, as on Instagram: `POST /{ig-user-id}/media` creates a
container that is IN_PROGRESS while the media is fetched and processed, then
FINISHED (or ERROR); `POST /{ig-user-id}/media_publish?creation_id=` turns a
FINISHED container into a post. Images must be JPEG (≤ 8 MiB), Reels MP4/MOV;
carousels hold 2–10 FINISHED children; captions ≤ 2,200 characters, ≤ 30
hashtags, ≤ 20 mentions; 100 published posts per rolling 24 h. `/media` (newest first) and
`/comments` (oldest first) are read with cursor pagination (`limit`, `after`).
"""

from __future__ import annotations

import re
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
    with_fragment,
)

PLATFORM = "instagram"
TOKEN_PREFIX = "IGAA"
RATE_CODE = 80002
CAPTION_LIMIT = 2200
MAX_HASHTAGS = 30
MAX_MENTIONS = 20
MAX_CAROUSEL = 10
MAX_IMAGE_BYTES = 8 * 1024 * 1024
PUBLISH_CAP = 100
PUBLISH_WINDOW = 24 * 3600.0
VIDEO_TYPES = ("video/mp4", "video/quicktime")

OAUTH = OAuthServer(
    OAuthSpec(
        platform=PLATFORM,
        display_name="Instagram",
        scope_separator=",",
        pkce="none",
        token_auth="client_secret_post",
        access_ttl=3600.0,
        issue_refresh=False,
        brand_color="#d62976",
        token_prefix=TOKEN_PREFIX,
    )
)

router = APIRouter()


# --- OAuth -----------------------------------------------------------------------


@router.get("/oauth/authorize")
def authorize(request: Request) -> Response:
    return OAUTH.consent_page(request, action=request.url.path + "/decide")


@router.post("/oauth/authorize/decide")
async def decide(request: Request) -> Response:
    return with_fragment(await OAUTH.decide(request), "#_")


@router.post("/oauth/access_token")
async def access_token(request: Request) -> Response:
    body = {k: str(v) for k, v in (await request.form()).items()}
    try:
        out = await OAUTH.token(request, body)
    except SandboxError as exc:
        # api.instagram.com keeps the old, flat error shape.
        return JSONResponse(
            {"error_type": "OAuthException", "code": 400, "error_message": exc.message}, status_code=400
        )
    with WORLD.lock:
        grant = WORLD.state(PLATFORM).grants[out["access_token"]]
    return JSONResponse(
        {
            "access_token": out["access_token"],
            "user_id": int(grant.user_id),
            "permissions": ",".join(grant.scopes),
        }
    )


@router.get("/access_token")
async def long_lived(request: Request) -> Response:
    async def run() -> Response:
        params = await params_of(request)
        return JSONResponse(
            exchange_long_lived(PLATFORM, params, grant_type="ig_exchange_token", prefix=TOKEN_PREFIX)
        )

    return await guarded(run())


@router.get("/refresh_access_token")
async def refresh_token(request: Request) -> Response:
    async def run() -> Response:
        params = await params_of(request)
        return JSONResponse(
            refresh_long_lived(PLATFORM, params, grant_type="ig_refresh_token", prefix=TOKEN_PREFIX)
        )

    return await guarded(run())


# --- Graph nodes and edges -------------------------------------------------------------


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


def _profile(user: SandboxUser) -> dict[str, Any]:
    return {
        # With Instagram Login, `id` is app-scoped and `user_id` is the professional account id.
        "id": str(int(user.id) + 7),
        "user_id": user.id,
        "username": user.username,
        "name": user.display_name,
        "account_type": "BUSINESS",
        "profile_picture_url": user.avatar_url,
    }


def _not_found(node: str) -> GraphFail:
    return fail(
        400,
        100,
        f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        subcode=33,
        kind="GraphMethodException",
    )


def _table(name: str) -> dict[str, Any]:
    return WORLD.state(PLATFORM).table(name)


async def _get_node(version: str, node: str, request: Request) -> Response:
    user, params = await _auth(version, request)
    fields = params.get("fields")
    if node in ("me", user.id):
        return ok(PLATFORM, user.id, _pick(_profile(user), fields))
    c = container(PLATFORM, node)
    if c and c["owner"] == user.id:
        status = container_status(c)
        view = {"id": c["id"], "status_code": status, "status": status.title()}
        if status == "ERROR":
            view["status"] = f"Error: Media upload has failed with error code {c['error']['subcode']}"
        elif status == "EXPIRED":
            view["status"] = "Expired: the container was not published within 24 hours"
        return ok(PLATFORM, user.id, _pick(view, fields))
    with WORLD.lock:
        media = _table("media").get(node)
    if media and media["owner"] == user.id:
        return ok(PLATFORM, user.id, _pick(_media_view(media, user), fields))
    raise _not_found(node)


def _media_view(media: dict[str, Any], user: SandboxUser) -> dict[str, Any]:
    return {**{k: v for k, v in media.items() if k != "owner"}, "username": user.username}


async def _get_edge(version: str, node: str, edge: str, request: Request) -> Response:
    user, params = await _auth(version, request)
    fields = params.get("fields")
    if node in ("me", user.id) and edge == "media":
        with WORLD.lock:
            mine = [m for m in _table("media").values() if m["owner"] == user.id]
        mine.sort(key=lambda m: m["created_at"], reverse=True)
        page = edge_page(request, params, mine, lambda m: _pick(_media_view(m, user), fields))
        return ok(PLATFORM, user.id, page)
    if node in ("me", user.id) and edge == "content_publishing_limit":
        body = {
            "data": [
                {
                    "quota_usage": _published_last_day(user.id),
                    "config": {"quota_total": PUBLISH_CAP, "quota_duration": int(PUBLISH_WINDOW)},
                }
            ]
        }
        return ok(PLATFORM, user.id, body)
    if edge == "comments":
        media = _own_media(node, user)
        with WORLD.lock:
            comments = [c for c in _table("comments").values() if c["media_id"] == media["id"]]
        page = edge_page(request, params, comments, lambda c: _pick(c, fields, "id,text,timestamp"))
        return ok(PLATFORM, user.id, page)
    raise unknown_path()


def _own_media(node: str, user: SandboxUser) -> dict[str, Any]:
    with WORLD.lock:
        media = _table("media").get(node)
    if not media or media["owner"] != user.id:
        raise _not_found(node)
    return media


def _published_last_day(user_id: str) -> int:
    cutoff = time.time() - PUBLISH_WINDOW
    with WORLD.lock:
        return sum(1 for m in _table("media").values() if m["owner"] == user_id and m["created_at"] > cutoff)


async def _post_edge(version: str, node: str, edge: str, request: Request) -> Response:
    user, params = await _auth(version, request)
    if edge in ("media", "media_publish") and node not in ("me", user.id):
        raise fail(400, 10, "(#10) Application does not have permission for this action")
    if edge == "media":
        return await _create_container(user, params, request)
    if edge == "media_publish":
        return _publish(user, params, request)
    if edge == "comments":
        return _comment(node, user, params, request)
    raise unknown_path()


def _check_caption(caption: str) -> None:
    if len(caption) > CAPTION_LIMIT:
        raise invalid_param(
            "The caption is too long",
            user_title="Caption too long",
            user_msg=f"Captions can be at most {CAPTION_LIMIT} characters.",
        )
    if len(re.findall(r"(?<!\w)#\w", caption)) > MAX_HASHTAGS:
        raise invalid_param(
            "Too many hashtags",
            user_title="Too many hashtags",
            user_msg=f"A caption can contain at most {MAX_HASHTAGS} hashtags.",
        )
    if len(re.findall(r"(?<!\w)@\w", caption)) > MAX_MENTIONS:
        raise invalid_param(
            "Too many mentions",
            user_title="Too many mentions",
            user_msg=f"A caption can contain at most {MAX_MENTIONS} @mentions.",
        )


def _rejected() -> GraphFail:
    return invalid_param(
        "The content cannot be published",
        user_title="Content not allowed",
        user_msg="This post goes against our Community Guidelines.",
    )


def _download_failed() -> GraphFail:
    return fail(
        400,
        9004,
        "Only photo or video can be accepted as media type.",
        subcode=2207052,
        user_title="Media download has failed",
        user_msg="The media could not be fetched from the URI. Check that it is public.",
    )


async def _create_container(user: SandboxUser, params: dict[str, str], request: Request) -> Response:
    media_type = (params.get("media_type") or "IMAGE").upper()
    carousel_item = params.get("is_carousel_item", "").lower() == "true"
    caption = params.get("caption", "")
    _check_caption(caption)
    if take_content_fault(PLATFORM, user.id, request):
        raise _rejected()
    if media_type == "CAROUSEL":
        return ok(PLATFORM, user.id, {"id": _carousel(user, params)["id"]})
    if media_type == "VIDEO" and not carousel_item:
        raise invalid_param("The media_type VIDEO is no longer supported. Use REELS to publish a video.")
    if media_type == "IMAGE":
        url = params.get("image_url")
        if not url:
            raise invalid_param("The parameter image_url is required.")
        data, kind = await fetch_media(url)
        if data is None:
            raise _download_failed()
        if kind != "image/jpeg":
            raise invalid_param(
                "Invalid image format",
                subcode=2207009,
                user_title="Unsupported format",
                user_msg="Only JPEG images can be published.",
            )
        if len(data) > MAX_IMAGE_BYTES:
            raise fail(
                400,
                36000,
                "Image size too large",
                subcode=2207004,
                user_title="Image too large",
                user_msg="The image is larger than 8 MiB.",
            )
        c = new_container(PLATFORM, user.id, "IMAGE", params)
    elif media_type in ("REELS", "VIDEO"):
        url = params.get("video_url")
        if not url:
            raise invalid_param("The parameter video_url is required.")
        data, kind = await fetch_media(url)
        if data is None:
            raise _download_failed()
        error = None
        if kind not in VIDEO_TYPES:
            error = {"subcode": 2207026, "message": "The video format is not supported."}
        c = new_container(PLATFORM, user.id, media_type, params, error=error)
    else:
        raise invalid_param(f"media_type {media_type} is not supported")
    c["carousel_item"] = carousel_item
    c["url"] = params.get("image_url") or params.get("video_url")
    return ok(PLATFORM, user.id, {"id": c["id"]})


def _carousel(user: SandboxUser, params: dict[str, str]) -> dict[str, Any]:
    ids = [i.strip() for i in (params.get("children") or "").split(",") if i.strip()]
    if len(ids) < 2 or len(ids) > MAX_CAROUSEL:
        raise invalid_param(f"A carousel needs 2 to {MAX_CAROUSEL} children", subcode=2207025)
    for child_id in ids:
        child = container(PLATFORM, child_id)
        if not child or child["owner"] != user.id or not child.get("carousel_item"):
            raise invalid_param(f"Child {child_id} is not a carousel item container")
        status = container_status(child)
        if status == "IN_PROGRESS":
            raise fail(
                400,
                9007,
                "Media ID is not available",
                subcode=2207027,
                user_title="Media not ready",
                user_msg="A carousel item is still being processed.",
            )
        if status != "FINISHED":
            raise fail(
                400,
                100,
                "(#100) A carousel item cannot be used",
                subcode=2207026 if status == "ERROR" else 2207020,
                user_msg=f"Carousel item {child_id} is {status}.",
            )
    c = new_container(PLATFORM, user.id, "CAROUSEL", params, children=ids)
    c["carousel_item"] = False
    return c


def _publish(user: SandboxUser, params: dict[str, str], request: Request) -> Response:
    creation_id = params.get("creation_id", "")
    c = container(PLATFORM, creation_id)
    if not c or c["owner"] != user.id:
        raise _not_found(creation_id)
    status = container_status(c)
    if status == "IN_PROGRESS":
        raise fail(
            400,
            9007,
            "Media ID is not available",
            subcode=2207027,
            user_title="Media not ready",
            user_msg="The media is not ready for publishing, please wait for a moment.",
        )
    if status == "ERROR":
        raise fail(
            400,
            9004,
            "The media could not be processed",
            subcode=c["error"]["subcode"],
            user_msg=c["error"]["message"],
        )
    if status == "EXPIRED":
        raise fail(
            400,
            100,
            "(#100) The media container has expired",
            subcode=2207020,
            user_msg="Create a new container: this one was not published within 24 hours.",
        )
    if status == "PUBLISHED" or c.get("carousel_item"):
        raise invalid_param(
            "The container cannot be published", user_msg="It is published or a carousel item."
        )
    if _published_last_day(user.id) >= PUBLISH_CAP:
        raise fail(
            400,
            9,
            "Application request limit reached",
            subcode=2207042,
            user_title="Max. publish limit reached",
            user_msg=f"You have reached the maximum of {PUBLISH_CAP} posts in 24 hours.",
        )
    if take_content_fault(PLATFORM, user.id, request):
        raise _rejected()
    media = _new_media(user, c)
    WORLD.record_post(
        PLATFORM,
        user.id,
        id=media["id"],
        text=media["caption"],
        media=media["urls"],
        reply_to=None,
        raw=params,
    )
    if take_drop_fault(PLATFORM, user.id, request):
        return DroppedConnection()
    return ok(PLATFORM, user.id, {"id": media["id"]})


def _new_media(user: SandboxUser, c: dict[str, Any]) -> dict[str, Any]:
    kind = c["media_type"]
    children = [container(PLATFORM, i) for i in c["children"]]
    shortcode = secrets.token_urlsafe(8)[:11]
    now = time.time()
    media = {
        "id": new_id(),
        "owner": user.id,
        "caption": c["params"].get("caption", ""),
        "media_type": {"CAROUSEL": "CAROUSEL_ALBUM", "REELS": "VIDEO"}.get(kind, kind),
        "media_product_type": "REELS" if kind == "REELS" else "FEED",
        "shortcode": shortcode,
        "permalink": f"https://www.instagram.com/{'reel' if kind == 'REELS' else 'p'}/{shortcode}/",
        "timestamp": graph_time(now),
        "created_at": now,
        "urls": [ch["url"] for ch in children if ch] if children else [c["url"]],
    }
    with WORLD.lock:
        c["published_id"] = media["id"]
        _table("media")[media["id"]] = media
    return media


def _comment(node: str, user: SandboxUser, params: dict[str, str], request: Request) -> Response:
    media = _own_media(node, user)
    message = params.get("message", "")
    if not message:
        raise invalid_param("The parameter message is required.")
    _check_caption(message)
    if take_content_fault(PLATFORM, user.id, request):
        raise _rejected()
    now = time.time()
    comment = {
        "id": new_id(),
        "media_id": media["id"],
        "text": message,
        "timestamp": graph_time(now),
        "username": user.username,
        "from": {"id": user.id, "username": user.username},
    }
    with WORLD.lock:
        _table("comments")[comment["id"]] = comment
    WORLD.record_post(
        PLATFORM, user.id, id=comment["id"], text=message, media=[], reply_to=media["id"], raw=params
    )
    if take_drop_fault(PLATFORM, user.id, request):
        return DroppedConnection()
    return ok(PLATFORM, user.id, {"id": comment["id"]})
