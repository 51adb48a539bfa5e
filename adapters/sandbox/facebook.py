"""Sandbox Facebook Pages (graph.facebook.com / graph-video.facebook.com, v{N}).

OAuth: `www.facebook.com/v{N}/dialog/oauth` (consent; PKCE verified when a
challenge is sent), `GET /v{N}/oauth/access_token` for both the code exchange
(short-lived user token) and `grant_type=fb_exchange_token` (60-day user token).
`GET /me/accounts` lists the user's Pages with never-expiring Page tokens;
`DELETE /{user-id}/permissions` revokes the app.

Sandbox conventions: each user manages one Page, "<Name> Page"; a username
starting with `no_page` manages none, one starting with `viewer` has a Page
without the CREATE_CONTENT task.

Publishing with a Page token: `/feed` (text, link, `attached_media`), `/photos`
(`url`; `published=false` stages a photo for `attached_media`), `/videos`
(`file_url`, processed asynchronously; `GET /{video-id}?fields=status`),
`/{object-id}/comments`. `/feed` (newest first) and `/comments` (oldest first) are read with
cursor pagination (`limit` ≤ 100, `after`). Posting the same message as the Page's previous post
is error 506.
"""

from __future__ import annotations

import json
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
    LONG_LIVED_TTL,
    GraphFail,
    auth_fail,
    authenticate,
    check_version,
    edge_page,
    fail,
    fetch_media,
    graph_time,
    guarded,
    invalid_param,
    new_id,
    ok,
    params_of,
    unknown_path,
)

PLATFORM = "facebook"
TOKEN_PREFIX = "EAAG"
RATE_CODE = 80001
CAPTION_LIMIT = 63206
VIDEO_SECONDS = 0.6
PAGE_TASKS = ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
VIDEO_TYPES = ("video/mp4", "video/quicktime")

OAUTH = OAuthServer(
    OAuthSpec(
        platform=PLATFORM,
        display_name="Facebook",
        scope_separator=",",
        pkce="optional",
        token_auth="client_secret_post",
        access_ttl=3600.0,
        issue_refresh=False,
        brand_color="#1877f2",
        token_prefix=TOKEN_PREFIX,
    )
)

router = APIRouter()


# --- OAuth (registered before the generic node routes) -------------------------------


@router.get("/{version}/dialog/oauth")
def authorize(version: str, request: Request) -> Response:
    return OAUTH.consent_page(request, action=request.url.path + "/decide")


@router.post("/{version}/dialog/oauth/decide")
async def decide(version: str, request: Request) -> Response:
    return await OAUTH.decide(request)


@router.get("/{version}/oauth/access_token")
async def access_token(version: str, request: Request) -> Response:
    async def run() -> Response:
        check_version(version)
        params = dict(request.query_params)
        if params.get("grant_type") == "fb_exchange_token":
            return JSONResponse(_exchange(params))
        params.setdefault("grant_type", "authorization_code")
        try:
            out = await OAUTH.token(request, params)
        except SandboxError as exc:
            raise _oauth_fail(exc) from None
        return JSONResponse({k: out[k] for k in ("access_token", "token_type", "expires_in")})

    return await guarded(run())


def _oauth_fail(exc: SandboxError) -> GraphFail:
    if exc.kind == "invalid_client":
        return fail(400, 1, "Error validating client secret.")
    subcodes = {"already used": 36009, "expired": 36007, "redirect_uri": 36008}
    sub = next((code for text, code in subcodes.items() if text in exc.message), None)
    messages = {
        36009: "This authorization code has been used.",
        36007: "This authorization code has expired.",
        36008: "Error validating verification code. Please make sure your redirect_uri is identical to the "
        "one you used in the OAuth dialog request",
    }
    return fail(
        400, 100, messages.get(sub, f"Invalid verification code format. ({exc.message})"), subcode=sub
    )


def _exchange(params: dict[str, str]) -> dict[str, Any]:
    token = params.get("fb_exchange_token")
    try:
        user, grant = WORLD.bearer(PLATFORM, token)
    except SandboxError as exc:
        raise auth_fail(exc, WORLD.state(PLATFORM).grants.get(token or "")) from None
    with WORLD.lock:
        secret = WORLD.state(PLATFORM).apps.get(grant.client_id)
    if params.get("client_id") != grant.client_id or params.get("client_secret") != secret:
        raise fail(400, 1, "Error validating client secret.")
    fresh = WORLD.issue_grant(
        PLATFORM,
        kind="access",
        user_id=user.id,
        client_id=grant.client_id,
        scopes=grant.scopes,
        ttl=LONG_LIVED_TTL,
        prefix=TOKEN_PREFIX,
    )
    return {"access_token": fresh.token, "token_type": "bearer", "expires_in": int(LONG_LIVED_TTL)}


# --- Pages ---------------------------------------------------------------------------


def _is_page(user: SandboxUser) -> bool:
    return user.extra.get("kind") == "page"


def _pages_of(user: SandboxUser) -> list[SandboxUser]:
    if user.username.startswith("no_page"):
        return []
    page = WORLD.user_for(
        PLATFORM,
        f"page.{user.username}",
        display_name=f"{user.display_name} Page",
        kind="page",
        owner=user.id,
    )
    page.extra.setdefault("tasks", ["ANALYZE"] if user.username.startswith("viewer") else PAGE_TASKS)
    return [page]


def _page_token(page: SandboxUser, client_id: str, scopes: tuple[str, ...]) -> str:
    tokens = WORLD.state(PLATFORM).table("page_tokens")
    with WORLD.lock:
        known = WORLD.state(PLATFORM).grants.get(tokens.get((page.id, client_id), ""))
        if known and not known.revoked and (known.expires_at is None or known.expires_at > time.time()):
            return known.token
    # Derived from a long-lived user token, a Page token does not expire.
    grant = WORLD.issue_grant(
        PLATFORM,
        kind="access",
        user_id=page.id,
        client_id=client_id,
        scopes=scopes,
        ttl=None,
        prefix=TOKEN_PREFIX,
    )
    with WORLD.lock:
        tokens[(page.id, client_id)] = grant.token
    return grant.token


# --- Graph nodes and edges -----------------------------------------------------------------


@router.get("/{version}/{node}")
async def get_node(version: str, node: str, request: Request) -> Response:
    return await guarded(_get_node(version, node, request))


@router.get("/{version}/{node}/{edge}")
async def get_edge(version: str, node: str, edge: str, request: Request) -> Response:
    return await guarded(_get_edge(version, node, edge, request))


@router.post("/{version}/{node}/{edge}")
async def post_edge(version: str, node: str, edge: str, request: Request) -> Response:
    return await guarded(_post_edge(version, node, edge, request))


@router.delete("/{version}/{node}/{edge}")
async def delete_edge(version: str, node: str, edge: str, request: Request) -> Response:
    return await guarded(_delete_edge(version, node, edge, request))


async def _auth(version: str, request: Request) -> tuple[SandboxUser, Any, dict[str, str]]:
    check_version(version)
    params = await params_of(request)
    user, grant = await authenticate(PLATFORM, request, params, rate_code=RATE_CODE)
    return user, grant, params


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


def _as_page(user: SandboxUser, node: str) -> None:
    if not _is_page(user):
        raise fail(
            403,
            200,
            "(#200) If posting to a page, requires both pages_read_engagement and "
            "pages_manage_posts as an admin with sufficient administrative permission",
        )
    if node not in ("me", user.id):
        raise fail(403, 200, "(#200) The Page token does not belong to this Page")
    if "CREATE_CONTENT" not in user.extra.get("tasks", []):
        raise fail(403, 200, "(#200) The user does not have the CREATE_CONTENT task on this Page")


async def _get_node(version: str, node: str, request: Request) -> Response:
    user, _, params = await _auth(version, request)
    fields = params.get("fields")
    if node in ("me", user.id):
        return ok(PLATFORM, user.id, _pick({"id": user.id, "name": user.display_name}, fields, "id,name"))
    with WORLD.lock:
        video = _table("videos").get(node)
        post = _table("posts").get(node)
    if video and video["page"] == user.id:
        return ok(PLATFORM, user.id, _pick(_video_view(video), fields))
    if post and post["page"] == user.id:
        return ok(PLATFORM, user.id, _pick(_post_view(post), fields))
    raise _not_found(node)


def _video_view(video: dict[str, Any]) -> dict[str, Any]:
    ready = time.time() >= video["ready_at"]
    state = ("error" if video["error"] else "ready") if ready else "processing"
    phase: dict[str, Any] = {"status": {"ready": "complete", "processing": "in_progress"}.get(state, "error")}
    if state == "error":
        phase["errors"] = [{"code": 1363008, "message": video["error"]}]
    return {
        "id": video["id"],
        "description": video["description"],
        "permalink_url": f"/{video['page']}/videos/{video['id']}/",
        "status": {
            "video_status": state,
            "processing_progress": 100 if ready else 50,
            "uploading_phase": {"status": "complete"},
            "processing_phase": phase,
        },
    }


def _post_view(post: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in post.items() if k in ("id", "message", "created_time", "permalink_url")}


async def _get_edge(version: str, node: str, edge: str, request: Request) -> Response:
    user, grant, params = await _auth(version, request)
    fields = params.get("fields")
    if edge == "accounts" and node in ("me", user.id) and not _is_page(user):
        data = [
            {
                "id": p.id,
                "name": p.display_name,
                "category": "Brand",
                "access_token": _page_token(p, grant.client_id, grant.scopes),
                "tasks": p.extra["tasks"],
            }
            for p in _pages_of(user)
        ]
        return ok(
            PLATFORM,
            user.id,
            {
                "data": [_pick(d, fields, "id,name,access_token,category,tasks") for d in data],
                "paging": {"cursors": {"before": "", "after": ""}},
            },
        )
    if edge in ("feed", "posts", "published_posts") and node in ("me", user.id):
        with WORLD.lock:
            mine = [p for p in _table("posts").values() if p["page"] == user.id]
        mine.sort(key=lambda p: p["created_at"], reverse=True)
        page = edge_page(
            request, params, mine, lambda p: _pick(_post_view(p), fields, "id,message,created_time")
        )
        return ok(PLATFORM, user.id, page)
    if edge == "comments":
        target = _commentable(node, user)
        with WORLD.lock:
            # Oldest first: the default `order` (chronological) of unranked comments.
            comments = [c for c in _table("comments").values() if c["object"] == target]
        page = edge_page(request, params, comments, lambda c: _pick(c, fields, "id,message,created_time"))
        return ok(PLATFORM, user.id, page)
    raise unknown_path()


async def _delete_edge(version: str, node: str, edge: str, request: Request) -> Response:
    user, _, _ = await _auth(version, request)
    if edge != "permissions" or node not in ("me", user.id) or _is_page(user):
        raise unknown_path()
    for account in [user, *_pages_of(user)]:
        WORLD.revoke_account_tokens(PLATFORM, account.id)
    return JSONResponse({"success": True})


async def _post_edge(version: str, node: str, edge: str, request: Request) -> Response:
    user, _, params = await _auth(version, request)
    if edge == "comments":
        return _comment(node, user, params, request)
    if edge not in ("feed", "photos", "videos"):
        raise unknown_path()
    _as_page(user, node)
    message = params.get("message") or params.get("caption") or params.get("description") or ""
    if len(message) > CAPTION_LIMIT:
        raise invalid_param(
            "Message is too long", user_msg=f"Posts can be at most {CAPTION_LIMIT} characters."
        )
    if take_content_fault(PLATFORM, user.id, request):
        raise invalid_param(
            "The post cannot be published",
            user_title="Post not allowed",
            user_msg="This post goes against our Community Standards.",
        )
    if edge == "feed":
        return _feed(user, params, message, request)
    if edge == "photos":
        return await _photo(user, params, message, request)
    return await _video(user, params, message, request)


def _new_post(
    user: SandboxUser, object_id: str, message: str, urls: list[str], params: dict[str, str], request: Request
) -> Response | None:
    now = time.time()
    post_id = f"{user.id}_{object_id}"
    post = {
        "id": post_id,
        "page": user.id,
        "message": message,
        "created_time": graph_time(now),
        "created_at": now,
        "permalink_url": f"https://www.facebook.com/{post_id}",
    }
    with WORLD.lock:
        _table("posts")[post_id] = post
    WORLD.record_post(PLATFORM, user.id, id=post_id, text=message, media=urls, reply_to=None, raw=params)
    return DroppedConnection() if take_drop_fault(PLATFORM, user.id, request) else None


def _feed(user: SandboxUser, params: dict[str, str], message: str, request: Request) -> Response:
    attached = _attached_media(params)
    if not message and not attached and not params.get("link"):
        raise invalid_param("Missing message or attachment")
    with WORLD.lock:
        previous = max(
            (p for p in _table("posts").values() if p["page"] == user.id),
            key=lambda p: p["created_at"],
            default=None,
        )
    if message and previous and previous["message"] == message:
        raise fail(
            400,
            506,
            "Duplicate status message",
            subcode=1455006,
            user_title="Duplicate Status Update",
            user_msg="This status update is identical to the last one you posted. Try posting something "
            "different, or delete your previous update.",
        )
    urls = []
    for fbid in attached:
        with WORLD.lock:
            photo = _table("photos").get(fbid)
        if not photo or photo["page"] != user.id or photo["published"]:
            raise invalid_param(f"attached_media {fbid} is not an unpublished photo of this Page")
        urls.append(photo["url"])
    object_id = str(new_id())
    dropped = _new_post(user, object_id, message, urls, params, request)
    return dropped or ok(PLATFORM, user.id, {"id": f"{user.id}_{object_id}"})


def _attached_media(params: dict[str, str]) -> list[str]:
    items: list[Any] = []
    if params.get("attached_media"):
        try:
            items = json.loads(params["attached_media"])
        except ValueError:
            raise invalid_param("attached_media must be a JSON array") from None
    items += [json.loads(v) for k, v in sorted(params.items()) if k.startswith("attached_media[")]
    return [str(i.get("media_fbid")) for i in items if isinstance(i, dict)]


async def _photo(user: SandboxUser, params: dict[str, str], message: str, request: Request) -> Response:
    url = params.get("url")
    if not url:
        raise invalid_param("(#324) Requires upload file", user_msg="Send url or source.")
    data, kind = await fetch_media(url)
    if data is None or kind not in IMAGE_TYPES:
        raise invalid_param(
            "Invalid file",
            subcode=2069019,
            user_title="Invalid image",
            user_msg="The file at url is not a supported image.",
        )
    published = params.get("published", "true").lower() != "false"
    photo_id = new_id()
    with WORLD.lock:
        _table("photos")[photo_id] = {"id": photo_id, "page": user.id, "url": url, "published": published}
    if not published:
        return ok(PLATFORM, user.id, {"id": photo_id})
    dropped = _new_post(user, photo_id, message, [url], params, request)
    return dropped or ok(PLATFORM, user.id, {"id": photo_id, "post_id": f"{user.id}_{photo_id}"})


async def _video(user: SandboxUser, params: dict[str, str], message: str, request: Request) -> Response:
    url = params.get("file_url")
    if not url:
        raise invalid_param("(#100) Requires file_url or source")
    data, kind = await fetch_media(url)
    if data is None:
        raise invalid_param("Failed to fetch the video from file_url", subcode=1363030)
    video_id = new_id()
    error = (
        None if kind in VIDEO_TYPES else "The video file you selected is in a format that we don't support."
    )
    with WORLD.lock:
        _table("videos")[video_id] = {
            "id": video_id,
            "page": user.id,
            "description": message,
            "error": error,
            "ready_at": time.time() + VIDEO_SECONDS,
        }
    dropped = _new_post(user, video_id, message, [url], params, request)
    return dropped or ok(PLATFORM, user.id, {"id": video_id})


def _commentable(node: str, user: SandboxUser) -> str:
    with WORLD.lock:
        post = _table("posts").get(node) or _table("posts").get(f"{user.id}_{node}")
    if not post or post["page"] != user.id:
        raise _not_found(node)
    return post["id"]


def _comment(node: str, user: SandboxUser, params: dict[str, str], request: Request) -> Response:
    target = _commentable(node, user)
    message = params.get("message", "")
    if not message:
        raise invalid_param("Missing message")
    if take_content_fault(PLATFORM, user.id, request):
        raise invalid_param(
            "The comment cannot be published", user_msg="It goes against our Community Standards."
        )
    comment_id = f"{target.split('_')[-1]}_{new_id()}"
    comment = {
        "id": comment_id,
        "object": target,
        "message": message,
        "created_time": graph_time(time.time()),
        "from": {"id": user.id, "name": user.display_name},
    }
    with WORLD.lock:
        _table("comments")[comment_id] = comment
    WORLD.record_post(PLATFORM, user.id, id=comment_id, text=message, media=[], reply_to=target, raw=params)
    if take_drop_fault(PLATFORM, user.id, request):
        return DroppedConnection()
    return ok(PLATFORM, user.id, {"id": comment_id})
