"""Sandbox YouTube: Google OAuth plus the YouTube Data API v3 paths Herald uses.

Paths are the real ones after each host: `/o/oauth2/v2/auth` (accounts.google.com),
`/token` and `/revoke` (oauth2.googleapis.com), `/youtube/v3/...` and
`/upload/youtube/v3/videos` (www.googleapis.com).

Faithful parts: Google's error envelope and reasons; a refresh token only for
`access_type=offline`, never rotated; 401 `authError` for any bad access token;
scope checks; the resumable upload protocol (Location session URI, 256 KiB
chunks, 308 + Range, `bytes */total` status queries); processing that finishes
after a moment, failing for bytes that are not a video and rejecting an
identical re-upload as a duplicate; comments disabled on made-for-kids videos.

Sandbox conventions: a consent-screen username starting with `no_channel` has
no YouTube channel. Rate-limit faults answer 403 `quotaExceeded` (YouTube's
daily project quota, the limit integrators hit). Uploads are resumable only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from adapters.sandbox.core import (
    WORLD,
    DroppedConnection,
    Grant,
    OAuthServer,
    OAuthSpec,
    SandboxError,
    SandboxUser,
    apply_pre_faults,
    take_content_fault,
    take_drop_fault,
)

PLATFORM = "youtube"
router = APIRouter()

OAUTH = OAuthServer(
    OAuthSpec(
        platform=PLATFORM,
        display_name="YouTube",
        pkce="optional",
        token_auth="either",
        access_ttl=3599,
        rotate_refresh=False,
        brand_color="#cc0000",
        token_prefix="ya29.",
    )
)

_SCOPE = "https://www.googleapis.com/auth/"
READ_SCOPES = (_SCOPE + "youtube", _SCOPE + "youtube.readonly", _SCOPE + "youtube.force-ssl")
UPLOAD_SCOPES = (_SCOPE + "youtube", _SCOPE + "youtube.upload", _SCOPE + "youtube.force-ssl")
COMMENT_SCOPES = (_SCOPE + "youtube", _SCOPE + "youtube.force-ssl")

CHUNK_UNIT = 256 * 1024
PROCESSING_SECONDS = 0.4
CATEGORIES = {"1", "2", "10", "15", "17", "19", "20", "22", "23", "24", "25", "26", "27", "28", "29"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(
    status: int,
    reason: str,
    message: str,
    *,
    domain: str = "global",
    headers: dict[str, str] | None = None,
    **detail: str,
) -> JSONResponse:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason, **detail}],
            "status": _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _bad(reason: str, message: str, domain: str = "youtube.video") -> JSONResponse:
    return google_error(400, reason, message, domain=domain)


def _now_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_id(n: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(n)).decode().rstrip("=")[:n]


def channel_id(user: SandboxUser) -> str:
    digest = hashlib.sha256(f"yt-channel:{user.id}".encode()).digest()
    return "UC" + base64.urlsafe_b64encode(digest).decode()[:22]


def _has_channel(user: SandboxUser) -> bool:
    return not user.username.startswith("no_channel")


def _table(name: str) -> dict[str, Any]:
    return WORLD.state(PLATFORM).table(name)


# --- OAuth -------------------------------------------------------------------


@router.get("/o/oauth2/v2/auth")
def authorize(request: Request) -> Response:
    if not request.query_params.get("scope"):
        return HTMLResponse(
            "<h1>Error 400: invalid_request</h1><p>Missing required parameter: scope</p>", status_code=400
        )
    return OAUTH.consent_page(request, str(request.url_for("youtube_consent")))


@router.post("/o/oauth2/v2/auth/decide", name="youtube_consent")
async def consent(request: Request) -> Response:
    resp = await OAUTH.decide(request)
    form = await request.form()
    code = parse_qs(urlsplit(resp.headers.get("location", "")).query).get("code", [None])[0]
    if code and form.get("access_type") != "offline":
        # Online access: Google issues no refresh token for this code.
        _table("online_codes")[code] = True
    return resp


@router.post("/token")
async def token(request: Request) -> Response:
    fault = await apply_pre_faults(PLATFORM, None, request)
    if fault:
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": "Try again later"},
            status_code=fault.status if fault.kind == "http_5xx" else 429,
        )
    body = {k: str(v) for k, v in (await request.form()).items()}
    try:
        out = await OAUTH.token(request, body)
    except SandboxError as exc:
        description = {
            "invalid_grant": "Token has been expired or revoked."
            if "refresh" in exc.message
            else exc.message,
            "invalid_client": "Unauthorized",
        }.get(exc.kind, exc.message)
        return JSONResponse({"error": exc.kind, "error_description": description}, status_code=exc.status)
    if body.get("grant_type") == "authorization_code" and _table("online_codes").pop(
        body.get("code", ""), None
    ):
        with WORLD.lock:
            WORLD.state(PLATFORM).grants.pop(out.pop("refresh_token", ""), None)
        out.pop("refresh_token_expires_in", None)
    out["token_type"] = "Bearer"
    return JSONResponse(out)


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    value = request.query_params.get("token") or str((await request.form()).get("token") or "")
    grant = WORLD.state(PLATFORM).grants.get(value)
    if grant is None or grant.revoked:
        return JSONResponse(
            {"error": "invalid_token", "error_description": "Token expired or revoked"}, status_code=400
        )
    OAUTH.revoke(value)
    return JSONResponse({})


# --- API plumbing --------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _fault_response(fault: Any) -> JSONResponse:
    if fault.kind == "rate_limit":
        return google_error(
            403,
            "quotaExceeded",
            "The request cannot be completed because you have exceeded your "
            '<a href="/youtube/v3/getting-started#quota">quota</a>.',
            domain="youtube.quota",
        )
    return google_error(fault.status, "backendError", "Backend Error")


async def _enter(request: Request, scopes: tuple[str, ...]) -> tuple[SandboxUser | None, Response | None]:
    """Faults, then the bearer token, then its scopes: what every API handler does first."""
    token_value = _bearer(request)
    grant = WORLD.state(PLATFORM).grants.get(token_value or "")
    fault = await apply_pre_faults(PLATFORM, grant.user_id if grant else None, request)
    if fault:
        return None, _fault_response(fault)
    try:
        user, grant = WORLD.bearer(PLATFORM, token_value)
    except SandboxError:
        return None, google_error(
            401,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
            "or other valid authentication credential.",
            location="Authorization",
            locationType="header",
        )
    if not _scoped(grant, scopes):
        return None, google_error(
            403, "insufficientPermissions", "Request had insufficient authentication scopes."
        )
    return user, None


def _scoped(grant: Grant, scopes: tuple[str, ...]) -> bool:
    return any(s in grant.scopes for s in scopes)


def _sniff_video(data: bytes) -> bool:
    return (
        data[4:8] == b"ftyp"
        or data[:4] == b"\x1a\x45\xdf\xa3"
        or data[:4] == b"RIFF"
        and data[8:12] == b"AVI "
    )


def _paged(
    q: Any, items: list[dict[str, Any]], *, default: int, lowest: int, highest: int
) -> tuple[list[dict[str, Any]], dict[str, Any]] | Response:
    """One page of `items` as YouTube pages a list: `maxResults` a page (the method's own default and range),
    an opaque `pageToken`, and `nextPageToken` only while more items remain."""
    try:
        limit = int(q.get("maxResults") or default)
    except ValueError:
        limit = -1
    if not lowest <= limit <= highest:
        return _bad("invalidValue", "Invalid value for maxResults", "global")
    try:
        start = int(base64.urlsafe_b64decode(q["pageToken"]).decode()) if q.get("pageToken") else 0
    except ValueError:
        start = -1
    if start < 0:
        return google_error(
            400,
            "invalidPageToken",
            "The request specifies an invalid page token.",
            domain="youtube.parameter",
        )
    end = start + limit
    paging: dict[str, Any] = {"pageInfo": {"totalResults": len(items), "resultsPerPage": limit}}
    if limit and end < len(items):
        paging["nextPageToken"] = base64.urlsafe_b64encode(str(end).encode()).decode()
    return items[start:end], paging


# --- channels ------------------------------------------------------------------


@router.get("/youtube/v3/channels")
async def channels(request: Request) -> Response:
    user, err = await _enter(request, READ_SCOPES)
    if err:
        return err
    if not request.query_params.get("part"):
        return _bad("required", "No filter selected. Expected one of: mine, id, forUsername", "global")
    items = []
    if request.query_params.get("mine") == "true" and _has_channel(user):
        items.append(
            {
                "kind": "youtube#channel",
                "etag": _random_id(27),
                "id": channel_id(user),
                "snippet": {
                    "title": user.display_name,
                    "description": "",
                    "customUrl": "@" + user.username.lower(),
                    "publishedAt": "2020-01-01T00:00:00Z",
                    "thumbnails": {"default": {"url": user.avatar_url, "width": 88, "height": 88}},
                },
            }
        )
    return JSONResponse(
        {
            "kind": "youtube#channelListResponse",
            "etag": _random_id(27),
            "pageInfo": {"totalResults": len(items), "resultsPerPage": 5},
            "items": items,
        }
    )


# --- videos.insert (resumable) -------------------------------------------------


def _check_metadata(resource: dict[str, Any]) -> JSONResponse | None:
    snippet = resource.get("snippet") or {}
    title = snippet.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 100 or "<" in title or ">" in title:
        return _bad("invalidTitle", "The request metadata specifies an invalid or empty video title.")
    description = snippet.get("description") or ""
    if len(description.encode()) > 5000 or "<" in description or ">" in description:
        return _bad("invalidDescription", "The request metadata specifies an invalid video description.")
    tags = snippet.get("tags") or []
    if sum(len(t) + (2 if " " in t else 0) for t in tags) + max(0, len(tags) - 1) > 500:
        return _bad("invalidTags", "The request metadata specifies invalid video keywords.")
    if str(snippet.get("categoryId") or "22") not in CATEGORIES:
        return _bad("invalidCategoryId", "The snippet.categoryId property specifies an invalid category ID.")
    status = resource.get("status") or {}
    if status.get("privacyStatus", "public") not in ("public", "unlisted", "private"):
        return _bad("invalidValue", "Invalid value for status.privacyStatus", "global")
    return None


@router.post("/upload/youtube/v3/videos")
async def start_upload(request: Request) -> Response:
    user, err = await _enter(request, UPLOAD_SCOPES)
    if err:
        return err
    q = request.query_params
    if q.get("uploadType") != "resumable":
        return _bad(
            "badRequest", "The sandbox serves resumable uploads only (uploadType=resumable).", "global"
        )
    if "snippet" not in (q.get("part") or "").split(","):
        return _bad("required", "Required parameter: part", "global")
    if not _has_channel(user):
        return google_error(401, "youtubeSignupRequired", "Unauthorized", domain="youtube.header")
    content_type = request.headers.get("x-upload-content-type", "application/octet-stream")
    if not (content_type.startswith("video/") or content_type == "application/octet-stream"):
        return _bad("badContent", f"Media type '{content_type}' is not supported.", "global")
    try:
        resource = json.loads(await request.body() or b"{}")
    except ValueError:
        return _bad("parseError", "Parse Error", "global")
    problem = _check_metadata(resource)
    if problem:
        return problem
    if take_content_fault(PLATFORM, user.id, request):
        return _bad("invalidVideoMetadata", "The request metadata is invalid.")
    upload_id = _random_id(40)
    total = request.headers.get("x-upload-content-length")
    _table("sessions")[upload_id] = {
        "user_id": user.id,
        "resource": resource,
        "content_type": content_type,
        "total": int(total) if total and total.isdigit() else None,
        "received": bytearray(),
        "video": None,
    }
    location = str(request.url.include_query_params(upload_id=upload_id))
    return Response(status_code=200, headers={"Location": location, "X-GUploader-UploadID": upload_id})


def _parse_range(value: str) -> tuple[int | None, int | None, int | None]:
    """`bytes a-b/total` or `bytes */total` → (a, b, total); total may be `*`."""
    if not value.startswith("bytes "):
        return None, None, None
    span, _, total = value[6:].partition("/")
    size = int(total) if total.isdigit() else None
    if span == "*":
        return None, None, size
    a, _, b = span.partition("-")
    return (int(a), int(b), size) if a.isdigit() and b.isdigit() else (None, None, None)


def _incomplete(received: int) -> Response:
    headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
    return Response(status_code=308, headers=headers)


@router.put("/upload/youtube/v3/videos")
async def upload_chunk(request: Request) -> Response:
    session = _table("sessions").get(request.query_params.get("upload_id", ""))
    if session is None:
        return google_error(404, "notFound", "Upload session not found or expired.")
    fault = await apply_pre_faults(PLATFORM, session["user_id"], request)
    if fault:
        return _fault_response(fault)
    if session["video"] is not None:  # already complete: answer the video again
        return JSONResponse(_video_resource(session["video"], ("snippet", "status")))
    start, end, total = _parse_range(request.headers.get("content-range", ""))
    body = await request.body()
    received = session["received"]
    if total is not None and session["total"] not in (None, total):
        return _bad("badRequest", "Content-Range total does not match X-Upload-Content-Length.", "global")
    if start is None:  # status query: `bytes */total`
        return _incomplete(len(received))
    if start != len(received) or end - start + 1 != len(body):
        return _bad(
            "badRequest", f"Content-Range {start}-{end} does not continue at byte {len(received)}.", "global"
        )
    final = total is not None and end + 1 == total
    if not final and len(body) % CHUNK_UNIT:
        return _bad(
            "badRequest", "Chunk sizes must be multiples of 262144 bytes, except the last chunk.", "global"
        )
    received.extend(body)
    if not final:
        return _incomplete(len(received))
    video = _create_video(session, bytes(received))
    if take_drop_fault(PLATFORM, session["user_id"], request):
        return DroppedConnection()
    return JSONResponse(_video_resource(video, ("snippet", "status")))


def _create_video(session: dict[str, Any], data: bytes) -> dict[str, Any]:
    user = WORLD.state(PLATFORM).users[session["user_id"]]
    snippet = session["resource"].get("snippet") or {}
    status = session["resource"].get("status") or {}
    digest = hashlib.sha256(data).hexdigest()
    videos = _table("videos")
    fail = None
    if not _sniff_video(data):
        fail = ("failed", "invalidFile")
    elif any(
        v["sha256"] == digest and v["user_id"] == user.id and v["fail"] is None for v in videos.values()
    ):
        fail = ("rejected", "duplicate")
    now = time.time()
    video = {
        "id": _random_id(11),
        "user_id": user.id,
        "channel_id": channel_id(user),
        "channel_title": user.display_name,
        "title": snippet.get("title"),
        "description": snippet.get("description") or "",
        "tags": snippet.get("tags") or [],
        "category_id": str(snippet.get("categoryId") or "22"),
        "privacy": status.get("privacyStatus", "public"),
        "made_for_kids": bool(status.get("selfDeclaredMadeForKids")),
        "created_at": now,
        "ready_at": now + PROCESSING_SECONDS,
        "fail": fail,
        "sha256": digest,
        "size": len(data),
    }
    videos[video["id"]] = video
    session["video"] = video
    if fail is None:
        WORLD.record_post(
            PLATFORM,
            user.id,
            id=video["id"],
            text=video["description"],
            title=video["title"],
            media=[{"type": session["content_type"], "bytes": len(data)}],
            reply_to=None,
            raw=session["resource"],
        )
    return video


def _video_resource(video: dict[str, Any], parts: tuple[str, ...]) -> dict[str, Any]:
    now = time.time()
    out: dict[str, Any] = {"kind": "youtube#video", "etag": _random_id(27), "id": video["id"]}
    if "snippet" in parts:
        out["snippet"] = {
            "publishedAt": _now_iso(video["created_at"]),
            "channelId": video["channel_id"],
            "title": video["title"],
            "description": video["description"],
            "tags": video["tags"],
            "categoryId": video["category_id"],
            "channelTitle": video["channel_title"],
            "liveBroadcastContent": "none",
        }
    ready = now >= video["ready_at"]
    if "status" in parts:
        status: dict[str, Any] = {
            "uploadStatus": "uploaded",
            "privacyStatus": video["privacy"],
            "license": "youtube",
            "embeddable": True,
            "publicStatsViewable": True,
            "madeForKids": video["made_for_kids"],
            "selfDeclaredMadeForKids": video["made_for_kids"],
        }
        if ready and video["fail"]:
            kind, reason = video["fail"]
            status["uploadStatus"] = kind
            status["failureReason" if kind == "failed" else "rejectionReason"] = reason
        elif ready:
            status["uploadStatus"] = "processed"
        out["status"] = status
    if "processingDetails" in parts:
        details: dict[str, Any] = {"processingStatus": "succeeded" if ready else "processing"}
        if not ready:
            left = int((video["ready_at"] - now) * 1000)
            details["processingProgress"] = {
                "partsTotal": 100,
                "partsProcessed": 100 - min(99, left // 10),
                "timeLeftMs": str(left),
            }
        elif video["fail"]:
            details["processingStatus"] = "failed" if video["fail"][0] == "failed" else "terminated"
            details["processingFailureReason"] = "other"
        out["processingDetails"] = details
    return out


@router.get("/youtube/v3/videos")
async def list_videos(request: Request) -> Response:
    user, err = await _enter(request, READ_SCOPES)
    if err:
        return err
    parts = tuple(p for p in (request.query_params.get("part") or "").split(",") if p)
    if not parts:
        return _bad("required", "Required parameter: part", "global")
    ids = [i for i in (request.query_params.get("id") or "").split(",") if i]
    videos = _table("videos")
    # Private and still-processing videos are visible to their owner only.
    items = [
        _video_resource(videos[i], parts) for i in ids if i in videos and videos[i]["user_id"] == user.id
    ]
    return JSONResponse(
        {
            "kind": "youtube#videoListResponse",
            "etag": _random_id(27),
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
            "items": items,
        }
    )


@router.get("/youtube/v3/search")
async def search(request: Request) -> Response:
    user, err = await _enter(request, READ_SCOPES)
    if err:
        return err
    q = request.query_params
    if not q.get("part"):
        return _bad("required", "Required parameter: part", "global")
    if q.get("forMine") == "true" and q.get("type") != "video":
        return _bad(
            "invalidSearchFilter",
            "The request contains an invalid combination of search filters and/or restrictions. "
            "You must set the type parameter to video if you set forMine.",
            "youtube.search",
        )
    mine = [v for v in _table("videos").values() if v["user_id"] == user.id and v["fail"] is None]
    mine.sort(key=lambda v: v["created_at"], reverse=True)
    paged = _paged(q, mine, default=5, lowest=0, highest=50)
    if isinstance(paged, Response):
        return paged
    page, paging = paged
    items = [
        {
            "kind": "youtube#searchResult",
            "etag": _random_id(27),
            "id": {"kind": "youtube#video", "videoId": v["id"]},
            "snippet": {
                "publishedAt": _now_iso(v["created_at"]),
                "channelId": v["channel_id"],
                "title": v["title"],
                "description": v["description"][:160],
                "channelTitle": v["channel_title"],
                "liveBroadcastContent": "none",
                "publishTime": _now_iso(v["created_at"]),
            },
        }
        for v in page
    ]
    return JSONResponse(
        {
            "kind": "youtube#searchListResponse",
            "etag": _random_id(27),
            **paging,
            "regionCode": "US",
            "items": items,
        }
    )


# --- comments ------------------------------------------------------------------


def _thread_resource(thread: dict[str, Any]) -> dict[str, Any]:
    ts = _now_iso(thread["created_at"])
    return {
        "kind": "youtube#commentThread",
        "etag": _random_id(27),
        "id": thread["id"],
        "snippet": {
            "channelId": thread["video_channel"],
            "videoId": thread["video_id"],
            "canReply": True,
            "totalReplyCount": 0,
            "isPublic": True,
            "topLevelComment": {
                "kind": "youtube#comment",
                "etag": _random_id(27),
                "id": thread["id"],
                "snippet": {
                    "channelId": thread["video_channel"],
                    "videoId": thread["video_id"],
                    "textDisplay": thread["text"],
                    "textOriginal": thread["text"],
                    "authorDisplayName": thread["author_name"],
                    "authorChannelId": {"value": thread["author_channel"]},
                    "canRate": True,
                    "viewerRating": "none",
                    "likeCount": 0,
                    "publishedAt": ts,
                    "updatedAt": ts,
                },
            },
        },
    }


@router.post("/youtube/v3/commentThreads")
async def insert_comment(request: Request) -> Response:
    user, err = await _enter(request, COMMENT_SCOPES)
    if err:
        return err
    if "snippet" not in (request.query_params.get("part") or ""):
        return _bad("required", "Required parameter: part", "global")
    try:
        body = json.loads(await request.body() or b"{}")
        snippet = body["snippet"]
        video_id = snippet["videoId"]
        text = snippet["topLevelComment"]["snippet"]["textOriginal"]
    except (ValueError, KeyError, TypeError):
        return _bad("invalidCommentMetadata", "The request metadata is invalid.", "youtube.commentThread")
    video = _table("videos").get(video_id)
    if video is None or video["fail"] is not None:
        return google_error(
            404,
            "videoNotFound",
            "The video identified by the videoId parameter could not be found.",
            domain="youtube.commentThread",
        )
    if video["made_for_kids"]:
        return google_error(
            403,
            "commentsDisabled",
            "The video identified by the videoId parameter has disabled comments.",
            domain="youtube.commentThread",
        )
    if not text or not text.strip():
        return _bad(
            "commentTextRequired",
            "The comment resource must contain a textOriginal value.",
            "youtube.commentThread",
        )
    if len(text) > 10_000:
        return _bad(
            "commentTextTooLong",
            "The comment resource contains too many characters.",
            "youtube.commentThread",
        )
    if take_content_fault(PLATFORM, user.id, request):
        return _bad("invalidCommentMetadata", "The request metadata is invalid.", "youtube.commentThread")
    thread = {
        "id": "Ug" + _random_id(24),
        "video_id": video_id,
        "video_channel": video["channel_id"],
        "text": text,
        "author_name": user.display_name,
        "author_channel": channel_id(user),
        "user_id": user.id,
        "created_at": time.time(),
    }
    _table("comments")[thread["id"]] = thread
    WORLD.record_post(
        PLATFORM, user.id, id=thread["id"], text=text, media=[], reply_to=video_id, kind="comment", raw=body
    )
    if take_drop_fault(PLATFORM, user.id, request):
        return DroppedConnection()
    return JSONResponse(_thread_resource(thread))


@router.get("/youtube/v3/commentThreads")
async def list_comments(request: Request) -> Response:
    _, err = await _enter(request, READ_SCOPES)
    if err:
        return err
    video_id = request.query_params.get("videoId")
    if not video_id:
        return _bad(
            "missingRequiredParameter",
            "No filter selected. Expected one of: videoId, id, allThreadsRelatedToChannelId",
            "youtube.parameter",
        )
    if video_id not in _table("videos"):
        return google_error(
            404,
            "videoNotFound",
            "The video identified by the videoId parameter could not be found.",
            domain="youtube.commentThread",
        )
    threads = sorted(
        (t for t in _table("comments").values() if t["video_id"] == video_id),
        key=lambda t: t["created_at"],
        reverse=True,
    )
    paged = _paged(request.query_params, threads, default=20, lowest=1, highest=100)
    if isinstance(paged, Response):
        return paged
    page, paging = paged
    return JSONResponse(
        {
            "kind": "youtube#commentThreadListResponse",
            "etag": _random_id(27),
            **paging,
            "items": [_thread_resource(t) for t in page],
        }
    )
