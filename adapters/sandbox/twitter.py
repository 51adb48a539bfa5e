"""Sandbox X: OAuth 2.0 with PKCE, `POST /2/tweets`, the user timeline and media upload v2.

Errors are X's problem-details bodies; every answer carries the
`x-rate-limit-*` headers of its endpoint's bucket. Identical text from the
same account within a day is refused as duplicate content, and chunked
uploads process for a moment before STATUS reports them ready.
"""

from __future__ import annotations

import html
import struct
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from adapters.sandbox.core import (
    WORLD,
    DroppedConnection,
    OAuthServer,
    OAuthSpec,
    SandboxError,
    SandboxUser,
    apply_pre_faults,
    take_content_fault,
    take_drop_fault,
)
from adapters.text import x_weighted

PLATFORM = "twitter"
PROBLEMS = "https://api.x.com/2/problems/"
DUPLICATE_WINDOW = 24 * 3600
PROCESSING_SECONDS = 0.3
IMAGE_MAX = 5 * 1024 * 1024
GIF_MAX = 15 * 1024 * 1024
VIDEO_MAX = 512 * 1024 * 1024
TWEET_KEYS = {
    "text",
    "media",
    "reply",
    "quote_tweet_id",
    "poll",
    "reply_settings",
    "community_id",
    "made_with_ai",
    "paid_partnership",
    "nullcast",
    "geo",
    "edit_options",
    "for_super_followers_only",
    "direct_message_deep_link",
    "card_uri",
    "share_with_followers",
}
REPLY_SETTINGS = {"following", "mentionedUsers", "subscribers", "verified"}
SCOPES = {
    "tweet.read",
    "tweet.write",
    "users.read",
    "offline.access",
    "media.write",
    "follows.read",
    "follows.write",
    "like.read",
    "like.write",
    "list.read",
    "list.write",
    "block.read",
    "block.write",
    "mute.read",
    "mute.write",
    "bookmark.read",
    "bookmark.write",
    "space.read",
    "dm.read",
    "dm.write",
}

# (limit, window seconds) per endpoint bucket, from X's rate-limit table (per user).
LIMITS = {
    "tweets": (100, 900),
    "me": (75, 900),
    "timeline": (900, 900),
    "media": (1875, 900),
}

NEEDED_SCOPES = {
    "tweets": {"tweet.read", "tweet.write", "users.read"},
    "me": {"tweet.read", "users.read"},
    "timeline": {"tweet.read", "users.read"},
    "media": {"media.write"},
}

OAUTH = OAuthServer(
    OAuthSpec(
        platform=PLATFORM,
        display_name="X",
        pkce="required",
        token_auth="either",
        access_ttl=7200,
        rotate_refresh=True,
        code_ttl=30,
        brand_color="#000000",
    )
)

router = APIRouter()


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        kind: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind = status, title, detail, kind
        self.errors, self.headers = errors, headers or {}

    def response(self, headers: dict[str, str]) -> JSONResponse:
        body: dict[str, Any] = {
            "title": self.title,
            "detail": self.detail,
            "type": PROBLEMS + self.kind if self.kind else "about:blank",
            "status": self.status,
        }
        if self.errors:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status, headers={**headers, **self.headers})


def _invalid(message: str) -> Problem:
    return Problem(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        "invalid-request",
        errors=[{"message": message}],
    )


def _count(account: str, bucket: str) -> tuple[dict[str, str], bool]:
    limit, window = LIMITS[bucket]
    st = WORLD.state(PLATFORM)
    now = time.time()
    with WORLD.lock:
        hits = [t for t in st.request_counts.get((account, bucket), []) if t > now - window]
        hits.append(now)
        st.request_counts[(account, bucket)] = hits
    headers = {
        "x-rate-limit-limit": str(limit),
        "x-rate-limit-remaining": str(max(0, limit - len(hits))),
        "x-rate-limit-reset": str(int(hits[0] + window)),
    }
    return headers, len(hits) > limit


def _account_hint(request: Request) -> str | None:
    return _grant_owner(_token(request))


def _grant_owner(token: str | None) -> str | None:
    with WORLD.lock:
        grant = WORLD.state(PLATFORM).grants.get(token or "")
    return grant.user_id if grant else None


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


async def _begin(request: Request, bucket: str) -> tuple[SandboxUser, dict[str, str]]:
    """Faults, bearer check and rate-limit headers shared by the API endpoints."""
    account = _account_hint(request)
    headers, over = _count(account or "anonymous", bucket)
    fault = await apply_pre_faults(PLATFORM, account, request)
    if fault and fault.kind == "rate_limit":
        headers.update(
            {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(time.time() + fault.retry_after))}
        )
        raise Problem(429, "Too Many Requests", "Too Many Requests", "rate-limit-exceeded", headers=headers)
    if fault:
        raise Problem(fault.status, "Service Unavailable", "Service Unavailable", headers=headers)
    try:
        user, grant = WORLD.bearer(PLATFORM, _token(request))
    except SandboxError:
        raise Problem(401, "Unauthorized", "Unauthorized", headers=headers) from None
    if over:
        raise Problem(
            429,
            "Too Many Requests",
            "Too Many Requests",
            "rate-limit-exceeded",
            headers={**headers, "x-rate-limit-remaining": "0"},
        )
    missing = NEEDED_SCOPES[bucket] - set(grant.scopes)
    if missing:
        raise Problem(
            403,
            "Forbidden",
            f"Missing scope {' '.join(sorted(missing))}",
            "client-forbidden",
            headers=headers,
        )
    return user, headers


# --- OAuth -------------------------------------------------------------------


@router.get("/i/oauth2/authorize")
def authorize(request: Request) -> Response:
    scopes = set((request.query_params.get("scope") or "").split())
    unknown = scopes - SCOPES
    if unknown:
        return HTMLResponse(
            f"<h1>Something went wrong</h1><p>Invalid scope: {html.escape(' '.join(unknown))}</p>",
            status_code=400,
        )
    if request.query_params.get("code_challenge_method", "plain") not in ("S256", "plain"):
        return HTMLResponse(
            "<h1>Something went wrong</h1><p>Invalid code_challenge_method</p>", status_code=400
        )
    return OAUTH.consent_page(request, action=request.url.path + "/decide")


@router.post("/i/oauth2/authorize/decide")
async def decide(request: Request) -> Response:
    return await OAUTH.decide(request)


@router.post("/2/oauth2/token")
async def token(request: Request) -> Response:
    body = {k: str(v) for k, v in (await request.form()).items()}
    fault = await apply_pre_faults(PLATFORM, _grant_owner(body.get("refresh_token")), request)
    if fault and fault.kind == "rate_limit":
        return Problem(
            429,
            "Too Many Requests",
            "Too Many Requests",
            "rate-limit-exceeded",
            headers={"retry-after": str(int(fault.retry_after))},
        ).response({})
    if fault:
        return Problem(fault.status, "Service Unavailable", "Service Unavailable").response({})
    try:
        return JSONResponse(await OAUTH.token(request, body))
    except SandboxError as exc:
        # X answers a bad code or refresh token with invalid_request and this description.
        error = "invalid_request" if exc.kind == "invalid_grant" else exc.kind
        description = (
            "Value passed for the token was invalid." if exc.kind == "invalid_grant" else exc.message
        )
        return JSONResponse({"error": error, "error_description": description}, status_code=exc.status)


@router.post("/2/oauth2/revoke")
async def revoke(request: Request) -> Response:
    form = await request.form()
    OAUTH.revoke(str(form.get("token") or ""))
    return JSONResponse({"revoked": True})


# --- users and posts -----------------------------------------------------------


@router.get("/2/users/me")
async def me(request: Request) -> Response:
    try:
        user, headers = await _begin(request, "me")
    except Problem as exc:
        return exc.response(exc.headers)
    return JSONResponse(
        {
            "data": {
                "id": user.id,
                "name": user.display_name,
                "username": user.username,
                "profile_image_url": user.avatar_url,
                "verified": False,
            }
        },
        headers=headers,
    )


def _posts() -> dict[str, dict[str, Any]]:
    return WORLD.state(PLATFORM).table("tweets")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _validate_tweet(user: SandboxUser, body: Any) -> None:
    if not isinstance(body, dict):
        raise _invalid("$: must be an object")
    unknown = sorted(set(body) - TWEET_KEYS)
    if unknown:
        raise _invalid(
            f"$.{unknown[0]}: is not defined in the schema and the schema does not allow "
            "additional properties"
        )
    text = body.get("text")
    media_ids = ((body.get("media") or {}).get("media_ids")) if isinstance(body.get("media"), dict) else None
    if text is not None and not isinstance(text, str):
        raise _invalid("$.text: string found, expected string")
    if not text and not media_ids and not body.get("poll"):
        raise _invalid("$.text: text is required when no media or poll is attached")
    if text and x_weighted(text) > 280:
        raise Problem(
            400,
            "Invalid Request",
            "Your post text is too long.",
            "invalid-request",
            errors=[{"message": "text: weighted length exceeds 280"}],
        )
    if media_ids is not None:
        _validate_media_ids(user, media_ids)
    poll = body.get("poll")
    if poll is not None:
        if media_ids:
            raise _invalid("$.poll: a post cannot have both a poll and media")
        options = poll.get("options") if isinstance(poll, dict) else None
        if (
            not isinstance(options, list)
            or not 2 <= len(options) <= 4
            or any(not isinstance(o, str) or not 1 <= len(o) <= 25 for o in options)
        ):
            raise _invalid("$.poll.options: 2 to 4 options of 1 to 25 characters are required")
        duration = poll.get("duration_minutes")
        if not isinstance(duration, int) or not 5 <= duration <= 10080:
            raise _invalid("$.poll.duration_minutes: must be between 5 and 10080")
    if "reply_settings" in body and body["reply_settings"] not in REPLY_SETTINGS:
        raise _invalid(f"$.reply_settings: must be one of {sorted(REPLY_SETTINGS)}")
    reply = body.get("reply")
    if reply is not None:
        target = str((reply or {}).get("in_reply_to_tweet_id") or "")
        if target not in _posts():
            raise Problem(
                403,
                "Forbidden",
                "You attempted to reply to a Post that is deleted or not visible to you.",
                "client-forbidden",
            )


def _validate_media_ids(user: SandboxUser, media_ids: Any) -> None:
    if not isinstance(media_ids, list) or not 1 <= len(media_ids) <= 4:
        raise _invalid("$.media.media_ids: between 1 and 4 media ids are required")
    media = WORLD.state(PLATFORM).media
    items = [media.get(str(mid)) for mid in media_ids]
    if any(m is None or m["owner"] != user.id or _state(m) != "succeeded" for m in items):
        raise Problem(
            400,
            "Invalid Request",
            "Your media IDs are invalid.",
            "invalid-request",
            errors=[{"message": "Your media IDs are invalid."}],
        )
    kinds = [m["media_type"] for m in items if m]
    if len(kinds) > 1 and any(k == "image/gif" or k.startswith("video/") for k in kinds):
        raise _invalid("$.media.media_ids: a GIF or video must be the only media of a post")


def _is_duplicate(user: SandboxUser, text: str | None) -> bool:
    if not text:
        return False
    since = time.time() - DUPLICATE_WINDOW
    return any(
        p["author_id"] == user.id and p["text"] == text and p["ts"] >= since for p in _posts().values()
    )


@router.post("/2/tweets")
async def create_tweet(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        user, headers = await _begin(request, "tweets")
        try:
            body = await request.json()
        except ValueError:
            raise _invalid("$: request body is not valid JSON") from None
        _validate_tweet(user, body)
        if take_content_fault(PLATFORM, user.id, request):
            raise Problem(
                403, "Forbidden", "You are not permitted to perform this action.", "client-forbidden"
            )
        if _is_duplicate(user, body.get("text")):
            raise Problem(
                403,
                "Forbidden",
                "You are not allowed to create a Tweet with duplicate content.",
                "client-forbidden",
            )
        post_id = str(WORLD.next_id() * 1_000_000_000 + int(time.time() * 1000) % 1_000_000_000)
        text = body.get("text") or ""
        media_ids = [str(m) for m in ((body.get("media") or {}).get("media_ids") or [])]
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        with WORLD.lock:
            conversation = _posts()[str(reply_to)]["conversation_id"] if reply_to else post_id
            _posts()[post_id] = {
                "id": post_id,
                "text": text,
                "author_id": user.id,
                "ts": time.time(),
                "reply_to": str(reply_to) if reply_to else None,
                "conversation_id": conversation,
                "media_ids": media_ids,
            }
        WORLD.record_post(
            PLATFORM,
            user.id,
            id=post_id,
            text=text,
            media=media_ids,
            reply_to=str(reply_to) if reply_to else None,
            raw=body,
        )
        if take_drop_fault(PLATFORM, user.id, request):
            return DroppedConnection()
        data = {"id": post_id, "text": html.escape(text, quote=False), "edit_history_post_ids": [post_id]}
        return JSONResponse({"data": data}, status_code=201, headers=headers)
    except Problem as exc:
        return exc.response({**headers, **exc.headers})


def _public(post: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    # X returns text HTML-escaped and every link as a t.co link.
    text = html.escape(post["text"], quote=False)
    if post["media_ids"]:
        text = (text + " " if text else "") + f"https://t.co/{post['id'][-10:]}"
    out: dict[str, Any] = {"id": post["id"], "text": text, "edit_history_post_ids": [post["id"]]}
    if "created_at" in fields:
        out["created_at"] = _iso(post["ts"])
    if "conversation_id" in fields:
        out["conversation_id"] = post["conversation_id"]
    if "referenced_tweets" in fields and post["reply_to"]:
        out["referenced_tweets"] = [{"type": "replied_to", "id": post["reply_to"]}]
    if "author_id" in fields:
        out["author_id"] = post["author_id"]
    return out


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise _invalid(f"Invalid time: {value}") from None


@router.get("/2/users/{user_id}/tweets")
async def timeline(request: Request, user_id: str) -> Response:
    headers: dict[str, str] = {}
    try:
        _, headers = await _begin(request, "timeline")
        q = request.query_params
        try:
            max_results = int(q.get("max_results", "10"))
        except ValueError:
            raise _invalid("max_results: must be an integer") from None
        if not 5 <= max_results <= 100:
            raise _invalid("The `max_results` query parameter value is not between 5 and 100")
        start, end = _parse_time(q.get("start_time")), _parse_time(q.get("end_time"))
        rows = sorted(
            (
                p
                for p in _posts().values()
                if p["author_id"] == user_id
                and (start is None or p["ts"] >= start)
                and (end is None or p["ts"] <= end)
            ),
            key=lambda p: int(p["id"]),
            reverse=True,
        )
        cursor = q.get("pagination_token")
        if cursor:
            rows = [p for p in rows if int(p["id"]) < int(cursor)]
        page = rows[:max_results]
        fields = set((q.get("tweet.fields") or "").split(","))
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if len(rows) > len(page):
            meta["next_token"] = page[-1]["id"]
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [_public(p, fields) for p in page]
        return JSONResponse(body, headers=headers)
    except Problem as exc:
        return exc.response({**headers, **exc.headers})


@router.get("/{username}/status/{post_id}")
def web_post(username: str, post_id: str) -> Response:
    """The sandbox stand-in for the x.com post page that PostRef.url points to."""
    post = _posts().get(post_id)
    if post is None:
        return HTMLResponse("<h1>This post doesn't exist</h1>", status_code=404)
    return HTMLResponse(
        f"<!doctype html><title>@{html.escape(username)} on X sandbox</title>"
        f"<p><b>@{html.escape(username)}</b></p><p>{html.escape(post['text'])}</p>"
    )


# --- media upload v2 ---------------------------------------------------------


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


def _dimensions(data: bytes) -> tuple[int, int]:
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return 0, 0


def _state(media: dict[str, Any]) -> str:
    """Processing runs for a moment after finalize; only then does a bad file show as failed."""
    ready_at = media.get("ready_at")
    if ready_at is None:
        return "pending"
    now = time.time()
    if now < ready_at:
        return "pending" if now < ready_at - PROCESSING_SECONDS / 2 else "in_progress"
    return "failed" if media.get("failed") else "succeeded"


def _media_view(media: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": media["id"],
        "media_key": media["media_key"],
        "size": media["size"],
        "expires_after_secs": 86400,
    }
    if media["category"] != "tweet_image":
        state = _state(media)
        info: dict[str, Any] = {"state": state}
        if state in ("pending", "in_progress"):
            info.update(check_after_secs=1, progress_percent=50 if state == "in_progress" else 0)
        if state == "failed":
            info["error"] = {
                "code": 1,
                "name": "InvalidMedia",
                "message": "Invalid or Unsupported media, Reason: UnsupportedMedia.",
            }
        out["processing_info"] = info
    return out


def _new_media(user: SandboxUser, media_type: str, category: str, total: int) -> dict[str, Any]:
    media_id = str(WORLD.next_id() * 1000 + 7)
    prefix = "3" if category == "tweet_image" else "16" if category == "tweet_gif" else "7"
    media = {
        "id": media_id,
        "media_key": f"{prefix}_{media_id}",
        "owner": user.id,
        "media_type": media_type,
        "category": category,
        "total_bytes": total,
        "size": 0,
        "segments": {},
        "ready_at": None,
    }
    with WORLD.lock:
        WORLD.state(PLATFORM).media[media_id] = media
    return media


def _owned_media(user: SandboxUser, media_id: str) -> dict[str, Any]:
    media = WORLD.state(PLATFORM).media.get(media_id)
    if media is None or media["owner"] != user.id:
        raise _invalid(f"media_id {media_id} was not found")
    return media


@router.post("/2/media/upload")
async def simple_upload(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        user, headers = await _begin(request, "media")
        form = await request.form()
        upload = form.get("media")
        if upload is None or isinstance(upload, str):
            raise _invalid("media: a file is required")
        data = await upload.read()
        category = str(form.get("media_category") or "tweet_image")
        sniffed = _sniff(data)
        if category != "tweet_image" or not sniffed.startswith("image/") or sniffed == "image/gif":
            raise Problem(
                400,
                "Invalid Request",
                "Unsupported media: use the chunked upload for video and GIF.",
                "invalid-request",
                errors=[{"message": f"media type {sniffed} is not supported here"}],
            )
        if len(data) > IMAGE_MAX:
            raise Problem(
                413, "Payload Too Large", f"media is larger than {IMAGE_MAX} bytes", "invalid-request"
            )
        media = _new_media(user, sniffed, category, len(data))
        width, height = _dimensions(data)
        media.update(size=len(data), ready_at=time.time())
        out = _media_view(media)
        out["image"] = {"image_type": sniffed, "w": width, "h": height}
        return JSONResponse({"data": out}, headers=headers)
    except Problem as exc:
        return exc.response({**headers, **exc.headers})


@router.get("/2/media/upload")
async def media_status(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        user, headers = await _begin(request, "media")
        if request.query_params.get("command") != "STATUS":
            raise _invalid("command: only STATUS is supported on GET")
        media = _owned_media(user, request.query_params.get("media_id") or "")
        return JSONResponse({"data": _media_view(media)}, headers=headers)
    except Problem as exc:
        return exc.response({**headers, **exc.headers})


@router.post("/2/media/upload/initialize")
async def initialize(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        user, headers = await _begin(request, "media")
        try:
            body = await request.json()
        except ValueError:
            raise _invalid("$: request body is not valid JSON") from None
        media_type = str(body.get("media_type") or "")
        total = body.get("total_bytes")
        category = str(
            body.get("media_category")
            or (
                "tweet_video"
                if media_type.startswith("video/")
                else "tweet_gif"
                if media_type == "image/gif"
                else "tweet_image"
            )
        )
        if media_type not in ("video/mp4", "image/gif", "image/jpeg", "image/png", "image/webp"):
            raise _invalid(f"media_type: {media_type or 'missing'} is not supported")
        if not isinstance(total, int) or total <= 0:
            raise _invalid("total_bytes: a positive integer is required")
        limit = (
            VIDEO_MAX
            if media_type.startswith("video/")
            else GIF_MAX
            if media_type == "image/gif"
            else IMAGE_MAX
        )
        if total > limit:
            raise _invalid(f"total_bytes: {total} is over the {limit} byte limit for {media_type}")
        media = _new_media(user, media_type, category, total)
        return JSONResponse(
            {"data": {"id": media["id"], "media_key": media["media_key"], "expires_after_secs": 86400}},
            headers=headers,
        )
    except Problem as exc:
        return exc.response({**headers, **exc.headers})


@router.post("/2/media/upload/{media_id}/append")
async def append(request: Request, media_id: str) -> Response:
    headers: dict[str, str] = {}
    try:
        user, headers = await _begin(request, "media")
        media = _owned_media(user, media_id)
        form = await request.form()
        upload = form.get("media")
        try:
            index = int(str(form.get("segment_index")))
        except ValueError:
            raise _invalid("segment_index: an integer from 0 to 999 is required") from None
        if upload is None or isinstance(upload, str) or not 0 <= index <= 999:
            raise _invalid("media and segment_index (0-999) are required")
        media["segments"][index] = await upload.read()
        return JSONResponse({"data": {"expires_at": int(time.time()) + 86400}}, headers=headers)
    except Problem as exc:
        return exc.response({**headers, **exc.headers})


@router.post("/2/media/upload/{media_id}/finalize")
async def finalize(request: Request, media_id: str) -> Response:
    headers: dict[str, str] = {}
    try:
        user, headers = await _begin(request, "media")
        media = _owned_media(user, media_id)
        data = b"".join(media["segments"][i] for i in sorted(media["segments"]))
        if len(data) != media["total_bytes"]:
            raise _invalid(f"File size mismatch: expected {media['total_bytes']} bytes, got {len(data)}")
        media.update(
            size=len(data),
            segments={},
            ready_at=time.time() + PROCESSING_SECONDS,
            failed=_sniff(data) != media["media_type"],
        )
        return JSONResponse({"data": _media_view(media)}, headers=headers)
    except Problem as exc:
        return exc.response({**headers, **exc.headers})
