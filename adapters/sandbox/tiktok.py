"""Sandbox TikTok: Login Kit v2 OAuth and the Content Posting API (Direct Post).

Paths are the real ones after each host: `/v2/auth/authorize/` (www.tiktok.com),
`/v2/...` (open.tiktokapis.com) and `/video/` (the open-upload host behind the
`upload_url` that video/init returns).

Faithful parts: `client_key` and comma-separated scopes; a token response with
`open_id` and `refresh_expires_in`; refresh tokens that rotate (the old one dies
at once); OAuth errors as `{"error", "error_description", "log_id"}`; every v2
answer as `{"data", "error": {"code", "message", "log_id"}}` with TikTok's codes
and statuses; per-token minute limits (creator_info 20, video/init 6,
status/fetch 30); privacy levels checked against `creator_info`; the FILE_UPLOAD
chunk rules and 206/201 answers; PULL_FROM_URL refused with
`url_ownership_unverified` unless the URL prefix was verified; asynchronous
status (PROCESSING_* then PUBLISH_COMPLETE or FAILED with a `fail_reason` from
sniffing the bytes); no post id for SELF_ONLY posts.

Sandbox conventions: a consent-screen username starting with `private` is a
private account (no PUBLIC_TO_EVERYONE). URL prefixes are verified with
`POST /_sandbox/verified_url_prefixes {"prefix": ...}` (the developer portal's
job on the real platform). Processing takes ~0.3 s; moderation is instant.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from adapters.sandbox.core import (
    WORLD,
    DroppedConnection,
    OAuthServer,
    OAuthSpec,
    SandboxError,
    SandboxUser,
    apply_pre_faults,
    rate_window,
    take_content_fault,
    take_drop_fault,
)

PLATFORM = "tiktok"
router = APIRouter()

OAUTH = OAuthServer(
    OAuthSpec(
        platform=PLATFORM,
        display_name="TikTok",
        client_id_param="client_key",
        scope_separator=",",
        pkce="optional",  # web apps send none; mobile and desktop apps must
        token_auth="client_secret_post",
        access_ttl=7200,
        refresh_ttl=180 * 86400,
        rotate_refresh=True,
        brand_color="#fe2c55",
        token_prefix="act.",
    )
)

MB = 1024 * 1024
PROCESSING_SECONDS = 0.3
PUBLIC_LEVELS = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
PRIVATE_LEVELS = ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
LIMITS = {"creator_info": 20, "video_init": 6, "status_fetch": 30, "content_init": 6}


def _log_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


def v2(
    data: dict[str, Any] | None = None,
    *,
    code: str = "ok",
    message: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"data": data or {}, "error": {"code": code, "message": message, "log_id": _log_id()}},
        status_code=status,
        headers=headers,
    )


def _table(name: str) -> dict[str, Any]:
    return WORLD.state(PLATFORM).table(name)


# --- OAuth -------------------------------------------------------------------


@router.get("/v2/auth/authorize/")
def authorize(request: Request) -> Response:
    return OAUTH.consent_page(request, str(request.url_for("tiktok_consent")))


@router.post("/v2/auth/authorize/decide", name="tiktok_consent")
async def consent(request: Request) -> Response:
    return await OAUTH.decide(request)


def _oauth_error(exc: SandboxError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.kind, "error_description": exc.message, "log_id": _log_id()}, status_code=exc.status
    )


@router.post("/v2/oauth/token/")
async def token(request: Request) -> Response:
    fault = await apply_pre_faults(PLATFORM, None, request)
    if fault:
        return _oauth_error(
            SandboxError(
                fault.status if fault.kind == "http_5xx" else 429, "server_error", "Temporarily unavailable"
            )
        )
    body = {k: str(v) for k, v in (await request.form()).items()}
    try:
        out = await OAUTH.token(request, body)
    except SandboxError as exc:
        return _oauth_error(exc)
    grant = WORLD.state(PLATFORM).grants[out["access_token"]]
    out["open_id"] = grant.user_id
    out["token_type"] = "Bearer"
    if "refresh_token_expires_in" in out:
        out["refresh_expires_in"] = out.pop("refresh_token_expires_in")
    return JSONResponse(out)


@router.post("/v2/oauth/revoke/")
async def revoke(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        WORLD.check_client(PLATFORM, form.get("client_key"), form.get("client_secret"), secret_required=True)
    except SandboxError as exc:
        return _oauth_error(exc)
    OAUTH.revoke(form.get("token"))
    return Response(status_code=200)


@router.post("/_sandbox/verified_url_prefixes", status_code=201)
async def verify_prefix(request: Request) -> dict[str, Any]:
    prefix = str((await request.json()).get("prefix") or "")
    if prefix:
        _table("verified_prefixes")[prefix] = True
    return {"verified_url_prefixes": list(_table("verified_prefixes"))}


# --- API plumbing --------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _fault_response(fault: Any) -> JSONResponse:
    if fault.kind == "rate_limit":
        return v2(
            code="rate_limit_exceeded",
            message="The API rate limit was exceeded. Please try again later.",
            status=429,
        )
    return v2(
        code="internal_error", message="Something went wrong. Please try again later.", status=fault.status
    )


def _over_limit(user: SandboxUser, bucket: str) -> bool:
    limit = LIMITS[bucket]
    rate_window(PLATFORM, user.id, bucket, limit=limit, window=60)
    with WORLD.lock:
        return len(WORLD.state(PLATFORM).request_counts[(user.id, bucket)]) > limit


async def _enter(
    request: Request, scope: str, bucket: str | None = None
) -> tuple[SandboxUser | None, Response | None]:
    """Faults, the bearer token, its scope and the per-minute limit: what every API handler does first."""
    token_value = _bearer(request)
    grant = WORLD.state(PLATFORM).grants.get(token_value or "")
    fault = await apply_pre_faults(PLATFORM, grant.user_id if grant else None, request)
    if fault:
        return None, _fault_response(fault)
    try:
        user, grant = WORLD.bearer(PLATFORM, token_value)
    except SandboxError:
        return None, v2(
            code="access_token_invalid",
            status=401,
            message="The access token is invalid or not found in the request.",
        )
    if scope not in grant.scopes:
        return None, v2(
            code="scope_not_authorized",
            status=401,
            message=f"The user did not authorize the scope required for completing this request: {scope}",
        )
    if bucket and _over_limit(user, bucket):
        return None, v2(
            code="rate_limit_exceeded",
            status=429,
            message="The API rate limit was exceeded. Please try again later.",
        )
    return user, None


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _invalid(message: str) -> JSONResponse:
    return v2(code="invalid_params", message=message, status=400)


def _privacy_options(user: SandboxUser) -> list[str]:
    return PRIVATE_LEVELS if user.username.startswith("private") else PUBLIC_LEVELS


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _sniff(data: bytes) -> str | None:
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return None


def _verified(url: str) -> bool:
    return any(url.startswith(prefix) for prefix in _table("verified_prefixes"))


# --- user and creator info -------------------------------------------------------


@router.get("/v2/user/info/")
async def user_info(request: Request) -> Response:
    user, err = await _enter(request, "user.info.basic")
    if err:
        return err
    fields = [f for f in (request.query_params.get("fields") or "").split(",") if f]
    if not fields:
        return _invalid("fields is required")
    grant = WORLD.state(PLATFORM).grants[_bearer(request)]
    if "username" in fields and "user.info.profile" not in grant.scopes:
        return v2(
            code="scope_permission_missed",
            status=401,
            message="Some fields need additional scopes: username needs user.info.profile",
        )
    everything = {
        "open_id": user.id,
        "union_id": "u" + user.id,
        "avatar_url": user.avatar_url,
        "display_name": user.display_name,
        "username": user.username,
    }
    return v2({"user": {k: v for k, v in everything.items() if k in fields}})


@router.post("/v2/post/publish/creator_info/query/")
async def creator_info(request: Request) -> Response:
    user, err = await _enter(request, "video.publish", "creator_info")
    if err:
        return err
    return v2(
        {
            "creator_avatar_url": user.avatar_url,
            "creator_username": user.username,
            "creator_nickname": user.display_name,
            "privacy_level_options": _privacy_options(user),
            "comment_disabled": False,
            "duet_disabled": False,
            "stitch_disabled": False,
            "max_video_post_duration_sec": 600,
        }
    )


# --- publishing ----------------------------------------------------------------


def _new_task(user: SandboxUser, kind: str, source: str, body: dict[str, Any]) -> dict[str, Any]:
    prefix = "v_pub_file" if source == "FILE_UPLOAD" else "v_pub_url" if kind == "video" else "p_pub_url"
    task = {
        "publish_id": f"{prefix}~v2-1.{secrets.randbelow(10**19):019d}",
        "user_id": user.id,
        "kind": kind,
        "source": source,
        "body": body,
        "privacy": body["post_info"]["privacy_level"],
        "received": bytearray(),
        "complete": False,
        "ready_at": None,
        "fail": None,
        "post_id": None,
        "size": 0,
    }
    _table("tasks")[task["publish_id"]] = task
    return task


def _check_post_info(user: SandboxUser, info: Any, *, title_max: int) -> JSONResponse | None:
    if not isinstance(info, dict):
        return _invalid("post_info is required")
    level = info.get("privacy_level")
    if not level:
        return _invalid("post_info.privacy_level is required")
    if level not in _privacy_options(user):
        return v2(
            code="privacy_level_option_mismatch",
            status=400,
            message=f"privacy_level {level} is not in the creator's privacy_level_options",
        )
    if _utf16_len(str(info.get("title") or "")) > title_max:
        return _invalid(f"post_info.title is longer than {title_max} characters")
    return None


def _finish(task: dict[str, Any], media: list[dict[str, Any]], fail: str | None, text: str) -> None:
    """The upload or pull is complete: processing starts, and a good post is recorded at once."""
    task["complete"] = True
    task["ready_at"] = time.time() + PROCESSING_SECONDS
    task["fail"] = fail
    if fail is None:
        task["post_id"] = int(f"7{secrets.randbelow(10**18):018d}")
        WORLD.record_post(
            PLATFORM,
            task["user_id"],
            id=str(task["post_id"]),
            publish_id=task["publish_id"],
            text=text,
            media=media,
            reply_to=None,
            privacy_level=task["privacy"],
            raw=task["body"],
        )


async def _pull(urls: list[str]) -> list[tuple[str, bytes | None]]:
    out: list[tuple[str, bytes | None]] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for url in urls:
            try:
                resp = await client.get(url)
                out.append((url, resp.content if resp.status_code == 200 else None))
            except httpx.HTTPError:
                out.append((url, None))
    return out


@router.post("/v2/post/publish/video/init/")
async def video_init(request: Request) -> Response:
    user, err = await _enter(request, "video.publish", "video_init")
    if err:
        return err
    body = await _json(request)
    if body is None:
        return _invalid("The request body is not valid JSON")
    problem = _check_post_info(user, body.get("post_info"), title_max=2200)
    if problem:
        return problem
    source_info = body.get("source_info") or {}
    source = source_info.get("source")
    if take_content_fault(PLATFORM, user.id, request):
        return v2(code="spam_risk_text", status=403, message="The post text was flagged as spam risk.")
    if source == "FILE_UPLOAD":
        size, chunk, count = (source_info.get(k) for k in ("video_size", "chunk_size", "total_chunk_count"))
        if not all(isinstance(v, int) and v > 0 for v in (size, chunk, count)):
            return _invalid("source_info needs video_size, chunk_size and total_chunk_count")
        if size < 5 * MB:
            if chunk != size or count != 1:
                return _invalid("A video under 5 MB must be uploaded as one chunk of video_size bytes")
        elif not (5 * MB <= chunk <= 64 * MB) or count != size // chunk or not 1 <= count <= 1000:
            return _invalid(
                "chunk_size must be 5-64 MB and total_chunk_count = floor(video_size / chunk_size)"
            )
        task = _new_task(user, "video", source, body)
        task.update(size=size, chunk=chunk, count=count)
        upload_url = str(
            request.url_for("tiktok_upload").include_query_params(
                upload_id=task["publish_id"].split(".")[-1], upload_token=secrets.token_urlsafe(16)
            )
        )
        _table("uploads")[task["publish_id"].split(".")[-1]] = task["publish_id"]
        return v2({"publish_id": task["publish_id"], "upload_url": upload_url})
    if source == "PULL_FROM_URL":
        url = str(source_info.get("video_url") or "")
        if not _verified(url):
            return v2(
                code="url_ownership_unverified",
                status=403,
                message="Please verify the ownership of the domain or URL prefix of video_url.",
            )
        task = _new_task(user, "video", source, body)
        [(_, data)] = await _pull([url])
        if data is None:
            fail = "video_pull_failed"
        else:
            fail = None if _sniff(data) in ("video/mp4", "video/webm") else "file_format_check_failed"
            task["size"] = len(data)
        _finish(task, [{"type": "video", "url": url}], fail, body["post_info"].get("title") or "")
        if take_drop_fault(PLATFORM, user.id, request):
            return DroppedConnection()
        return v2({"publish_id": task["publish_id"]})
    return _invalid("source_info.source must be FILE_UPLOAD or PULL_FROM_URL")


@router.put("/video/", name="tiktok_upload")
async def upload(request: Request) -> Response:
    publish_id = _table("uploads").get(request.query_params.get("upload_id", ""))
    task = _table("tasks").get(publish_id or "")
    if task is None:
        return v2(code="invalid_params", status=404, message="upload_id not found or expired")
    fault = await apply_pre_faults(PLATFORM, task["user_id"], request)
    if fault:
        return _fault_response(fault)
    if task["complete"]:
        return v2(code="invalid_params", status=400, message="The upload is already complete")
    body = await request.body()
    try:
        span, _, total = request.headers["content-range"].removeprefix("bytes ").partition("/")
        first, last = (int(x) for x in span.split("-"))
        total_size = int(total)
    except (KeyError, ValueError):
        return _invalid("Content-Range must be bytes first-last/total")
    received = task["received"]
    index = len(received) // task["chunk"]
    final = index == task["count"] - 1
    expected = task["size"] - index * task["chunk"] if final else task["chunk"]
    if (
        total_size != task["size"]
        or first != len(received)
        or last - first + 1 != len(body)
        or len(body) != expected
    ):
        return _invalid(f"Expected bytes {len(received)}-{len(received) + expected - 1}/{task['size']}")
    received.extend(body)
    if not final:
        return Response(status_code=206)
    data = bytes(received)
    fail = None if _sniff(data) in ("video/mp4", "video/webm") else "file_format_check_failed"
    _finish(
        task,
        [{"type": request.headers.get("content-type"), "bytes": len(data)}],
        fail,
        task["body"]["post_info"].get("title") or "",
    )
    if take_drop_fault(PLATFORM, task["user_id"], request):
        return DroppedConnection()
    return Response(status_code=201)


@router.post("/v2/post/publish/content/init/")
async def content_init(request: Request) -> Response:
    user, err = await _enter(request, "video.publish", "content_init")
    if err:
        return err
    body = await _json(request)
    if body is None:
        return _invalid("The request body is not valid JSON")
    if body.get("media_type") != "PHOTO" or body.get("post_mode") not in ("DIRECT_POST", "MEDIA_UPLOAD"):
        return _invalid("media_type must be PHOTO and post_mode DIRECT_POST or MEDIA_UPLOAD")
    problem = _check_post_info(user, body.get("post_info"), title_max=90)
    if problem:
        return problem
    if _utf16_len(str(body["post_info"].get("description") or "")) > 4000:
        return _invalid("post_info.description is longer than 4000 characters")
    source_info = body.get("source_info") or {}
    images = source_info.get("photo_images") or []
    if source_info.get("source") != "PULL_FROM_URL" or not 1 <= len(images) <= 35:
        return _invalid("Photos need source PULL_FROM_URL and 1-35 photo_images")
    if not 0 <= int(source_info.get("photo_cover_index") or 0) < len(images):
        return _invalid("photo_cover_index is out of range")
    if not all(_verified(str(u)) for u in images):
        return v2(
            code="url_ownership_unverified",
            status=403,
            message="Please verify the ownership of the domain or URL prefix of photo_images.",
        )
    if take_content_fault(PLATFORM, user.id, request):
        return v2(code="spam_risk_text", status=403, message="The post text was flagged as spam risk.")
    task = _new_task(user, "photo", "PULL_FROM_URL", body)
    pulled = await _pull([str(u) for u in images])
    fail = None
    if any(data is None for _, data in pulled):
        fail = "photo_pull_failed"
    elif any(_sniff(data) not in ("image/jpeg", "image/webp") for _, data in pulled):
        fail = "file_format_check_failed"
    _finish(
        task,
        [{"type": "photo", "url": u} for u, _ in pulled],
        fail,
        str(body["post_info"].get("description") or ""),
    )
    if take_drop_fault(PLATFORM, user.id, request):
        return DroppedConnection()
    return v2({"publish_id": task["publish_id"]})


@router.post("/v2/post/publish/status/fetch/")
async def status_fetch(request: Request) -> Response:
    user, err = await _enter(request, "video.publish", "status_fetch")
    if err:
        return err
    body = await _json(request) or {}
    task = _table("tasks").get(str(body.get("publish_id") or ""))
    if task is None or task["user_id"] != user.id:
        return _invalid("publish_id is invalid or does not belong to this user")
    data: dict[str, Any] = {}
    pulling = task["source"] == "PULL_FROM_URL"
    if not task["complete"] or time.time() < task["ready_at"]:
        data["status"] = "PROCESSING_DOWNLOAD" if pulling else "PROCESSING_UPLOAD"
        data["uploaded_bytes" if not pulling else "downloaded_bytes"] = len(task["received"]) or task["size"]
    elif task["fail"]:
        data.update(status="FAILED", fail_reason=task["fail"])
    else:
        data["status"] = "PUBLISH_COMPLETE"
        # Only posts others can see get an id; SELF_ONLY posts never do.
        data["publicaly_available_post_id"] = [] if task["privacy"] == "SELF_ONLY" else [task["post_id"]]
        data["uploaded_bytes" if not pulling else "downloaded_bytes"] = task["size"]
    return v2(data)
