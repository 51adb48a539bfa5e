"""Sandbox Pinterest: OAuth (www.pinterest.com/oauth/, /v5/oauth/token) and the v5 API.

Served paths are Pinterest's own: `/oauth/`, `/v5/oauth/token`, `/v5/user_account`,
`/v5/boards`, `/v5/boards/{id}/pins`, `/v5/pins`, `/v5/media`, plus `/pinterest-media-upload/`
standing in for the S3 presigned-POST host that `POST /v5/media` hands out.
"""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
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

P = "pinterest"
router = APIRouter()
oauth = OAuthServer(OAuthSpec(
    platform=P,
    display_name="Pinterest",
    scope_separator=",",
    pkce="none",
    token_auth="client_secret_basic",
    access_ttl=30 * 86400,
    refresh_ttl=60 * 86400,
    rotate_refresh=True,
    brand_color="#e60023",
    token_prefix="pina_",
))

# Error `code` numbers: 2 (authentication) is seen in the wild, the others are unconfirmed.
INVALID, AUTH, FORBIDDEN, NOT_FOUND, RATE_LIMITED, SERVER = 1, 2, 3, 4, 29, 0
# Universal limit of the Standard tier: 100 calls per second per user per app.
RATE_LIMIT, RATE_WINDOW = 100, 1.0
PROCESSING_SECONDS = 0.3
UPLOAD_PATH = "/pinterest-media-upload/"
LIMITS = {"title": 100, "description": 800, "link": 2048, "alt_text": 500}
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _sniff(data: bytes) -> str | None:
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
    return None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _page(items: list[dict[str, Any]], bookmark: str | None, page_size: int) -> tuple[list, str | None]:
    """Pinterest's cursor paging: the bookmark is opaque to clients (here, an encoded offset)."""
    try:
        start = int(base64.urlsafe_b64decode(bookmark.encode()).decode()) if bookmark else 0
    except ValueError:
        start = 0
    end = start + page_size
    nxt = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], nxt


class Caller:
    """The authenticated user of one API request, and the rate-limit headers to answer with."""

    def __init__(self, user: SandboxUser, headers: dict[str, str]):
        self.user = user
        self.headers = headers

    def reply(self, body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=self.headers)

    def fail(self, status: int, code: int, message: str) -> JSONResponse:
        return error(status, code, message, self.headers)


async def guard(request: Request) -> Caller | Response:
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    grant = WORLD.state(P).grants.get(token or "")
    fault = await apply_pre_faults(P, grant.user_id if grant else None, request)
    if fault and fault.kind == "rate_limit":
        # Rate-limit header names are unconfirmed; Pinterest documents limits, not headers.
        return error(429, RATE_LIMITED, "You have exceeded your rate limit. Try again later.", {
            "retry-after": str(int(fault.retry_after)), "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(fault.retry_after))})
    if fault:
        return error(fault.status, SERVER, "Something went wrong on our end. Sorry about that.")
    try:
        user, _ = WORLD.bearer(P, token)
    except SandboxError:
        return error(401, AUTH, "Authentication failed.")
    limit, remaining, reset = rate_window(P, user.id, "universal", limit=RATE_LIMIT, window=RATE_WINDOW)
    return Caller(user, {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining),
                         "x-ratelimit-reset": str(max(0, int(reset - time.time())))})


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# --- OAuth ----------------------------------------------------------------


@router.get("/oauth/")
def authorize(request: Request) -> Response:
    return oauth.consent_page(request, action=request.url.path + "decide")


@router.post("/oauth/decide")
async def decide(request: Request) -> Response:
    return await oauth.decide(request)


@router.post("/v5/oauth/token")
async def token(request: Request) -> Response:
    body = {k: str(v) for k, v in (await request.form()).items()}
    try:
        out = await oauth.token(request, body)
    except SandboxError as exc:
        return error(exc.status, AUTH if exc.status == 401 else INVALID, f"{exc.kind}: {exc.message}")
    out["response_type"] = body.get("grant_type")
    if "refresh_token_expires_in" in out:
        out["refresh_token_expires_at"] = int(time.time()) + out["refresh_token_expires_in"]
    return JSONResponse(out)


# --- account and boards -----------------------------------------------------


@router.get("/v5/user_account")
async def user_account(request: Request) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    u = who.user
    return who.reply({"account_type": "BUSINESS", "id": u.id, "username": u.username,
                      "business_name": u.display_name,
                      "profile_image": u.avatar_url, "website_url": None, "board_count": len(_boards(u)),
                      "pin_count": len(WORLD.posts(P, u.id)), "follower_count": 0, "following_count": 0,
                      "monthly_views": 0})


def _boards(user: SandboxUser) -> list[dict[str, Any]]:
    return [b for b in WORLD.state(P).table("boards").values() if b["owner"]["username"] == user.username]


@router.get("/v5/boards")
async def list_boards(request: Request, page_size: int = 25, bookmark: str | None = None) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    if not 1 <= page_size <= 250:
        return who.fail(400, INVALID, "page_size must be between 1 and 250")
    items, nxt = _page(_boards(who.user), bookmark, page_size)
    return who.reply({"items": items, "bookmark": nxt})


@router.post("/v5/boards")
async def create_board(request: Request) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    body = await _json(request) or {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return who.fail(400, INVALID, "Invalid request: 'name' is a required property")
    privacy = body.get("privacy", "PUBLIC")
    if privacy not in ("PUBLIC", "PROTECTED", "SECRET"):
        return who.fail(400, INVALID,
                        f"Invalid request: '{privacy}' is not one of ['PUBLIC', 'PROTECTED', 'SECRET']")
    board_id = str(900_000_000_000_000_000 + WORLD.next_id())
    board = {"id": board_id, "name": name, "description": body.get("description") or "", "privacy": privacy,
             "owner": {"username": who.user.username}, "created_at": _iso(time.time()), "pin_count": 0,
             "follower_count": 0, "collaborator_count": 0}
    WORLD.state(P).table("boards")[board_id] = board
    return who.reply(board, 201)


def _own_board(who: Caller, board_id: str) -> dict[str, Any] | None:
    board = WORLD.state(P).table("boards").get(board_id)
    return board if board and board["owner"]["username"] == who.user.username else None


def _pin_view(post: dict[str, Any]) -> dict[str, Any]:
    raw = post["raw"]
    return {"id": post["id"], "created_at": _iso(post["created_at"]), "board_id": raw["board_id"],
            "board_section_id": raw.get("board_section_id"), "title": raw.get("title"),
            "description": raw.get("description"), "link": raw.get("link"), "alt_text": raw.get("alt_text"),
            "board_owner": {"username": post["username"]}, "media": {"media_type": post["media_type"]},
            "is_owner": True, "creative_type": "VIDEO" if post["media_type"] == "video" else "REGULAR"}


@router.get("/v5/boards/{board_id}/pins")
async def board_pins(request: Request, board_id: str, page_size: int = 25,
                     bookmark: str | None = None) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    if _own_board(who, board_id) is None:
        return who.fail(404, NOT_FOUND, "Board not found.")
    if not 1 <= page_size <= 250:
        return who.fail(400, INVALID, "page_size must be between 1 and 250")
    pins = sorted((p for p in WORLD.posts(P, who.user.id) if p["raw"]["board_id"] == board_id),
                  key=lambda p: p["created_at"], reverse=True)
    items, nxt = _page([_pin_view(p) for p in pins], bookmark, page_size)
    return who.reply({"items": items, "bookmark": nxt})


# --- media ----------------------------------------------------------------


@router.post("/v5/media")
async def register_media(request: Request) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    body = await _json(request) or {}
    if body.get("media_type") != "video":
        return who.fail(400, INVALID, "Invalid request: 'media_type' must be 'video'")
    media_id = str(5_000_000_000_000_000_000 + WORLD.next_id())
    path = request.url.path
    upload_url = f"{request.url.scheme}://{request.url.netloc}{path[: path.index('/v5/')]}{UPLOAD_PATH}"
    params = {
        "x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "x-amz-signature": secrets.token_hex(32),
        "x-amz-security-token": secrets.token_urlsafe(24),
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "key": f"uploads/{who.user.id}/{media_id}",
        "policy": base64.b64encode(secrets.token_bytes(48)).decode(),
        "x-amz-credential": "ASIA000SANDBOX/20260101/us-east-1/s3/aws4_request",
        "Content-Type": "multipart/form-data",
    }
    WORLD.state(P).table("media")[media_id] = {"owner": who.user.id, "status": "registered", "params": params}
    return who.reply({"media_id": media_id, "media_type": "video", "upload_url": upload_url,
                      "upload_parameters": params}, 201)


def _s3_error(status: int, code: str, message: str) -> Response:
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f"<Error><Code>{code}</Code><Message>{message}</Message></Error>")
    return Response(xml, status_code=status, media_type="application/xml")


@router.post(UPLOAD_PATH)
async def s3_upload(request: Request) -> Response:
    form = await request.form()
    key = str(form.get("key") or "")
    entry = next((m for m in WORLD.state(P).table("media").values() if m["params"]["key"] == key), None)
    if entry is None:
        return _s3_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: key")
    for name, value in entry["params"].items():
        if str(form.get(name) or "") != value:
            return _s3_error(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {name}")
    file = form.get("file")
    if not isinstance(file, UploadFile):
        return _s3_error(400, "InvalidArgument", "POST requires exactly one file upload per request.")
    data = await file.read()
    entry.update(status="processing", ready_at=time.time() + PROCESSING_SECONDS,
                 failed=_sniff(data) != "video/mp4")
    return Response(status_code=204)


def _media_status(entry: dict[str, Any]) -> str:
    if entry["status"] == "processing" and time.time() >= entry["ready_at"]:
        entry["status"] = "failed" if entry["failed"] else "succeeded"
    return entry["status"]


@router.get("/v5/media/{media_id}")
async def media_status(request: Request, media_id: str) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    entry = WORLD.state(P).table("media").get(media_id)
    if entry is None or entry["owner"] != who.user.id:
        return who.fail(404, NOT_FOUND, "Media not found.")
    return who.reply({"media_id": media_id, "media_type": "video", "status": _media_status(entry)})


# --- pins -------------------------------------------------------------------


async def _fetch_image(url: Any) -> str | None:
    """Fetch a source URL as Pinterest does; returns an error message, or None when it is an image."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return "Invalid request: source url must be an http(s) URL"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.get(url)
    except httpx.HTTPError:
        return f"Sorry we could not fetch the image. Pinterest was unable to reach the URL {url}"
    if resp.status_code >= 400:
        return f"Sorry we could not fetch the image. Pinterest was unable to reach the URL {url}"
    if _sniff(resp.content) not in _IMAGE_TYPES:
        return f"Invalid image: the file at {url} is not a valid image"
    return None


async def _check_source(who: Caller, source: Any) -> tuple[str, list[str], JSONResponse | None]:
    """Validate `media_source`; returns (media type, media refs, error response)."""
    if not isinstance(source, dict):
        return "", [], who.fail(400, INVALID, "Invalid request: 'media_source' is a required property")
    kind = source.get("source_type")
    if kind == "image_url":
        problem = await _fetch_image(source.get("url"))
        return "image", [source.get("url")], who.fail(400, INVALID, problem) if problem else None
    if kind == "multiple_image_urls":
        items = source.get("items") or []
        if not 2 <= len(items) <= 5:
            return "", [], who.fail(400, INVALID, "Invalid request: a carousel holds 2 to 5 items")
        for item in items:
            problem = await _fetch_image((item or {}).get("url"))
            if problem:
                return "", [], who.fail(400, INVALID, problem)
        return "image", [i["url"] for i in items], None
    if kind == "video_id":
        media_id = str(source.get("media_id") or "")
        entry = WORLD.state(P).table("media").get(media_id)
        if entry is None or entry["owner"] != who.user.id:
            return "", [], who.fail(400, INVALID, f"Media upload {media_id} not found.")
        if _media_status(entry) != "succeeded":
            return "", [], who.fail(400, INVALID, f"Media upload {media_id} is not ready: {entry['status']}")
        has_cover = source.get("cover_image_url") or source.get("cover_image_key_frame_time") is not None \
            or (source.get("cover_image_data") and source.get("cover_image_content_type"))
        if not has_cover:
            return "", [], who.fail(400, INVALID, "Invalid request: cover_image_url or cover_image_content_type "
                                    "and cover_image_data or cover_image_key_frame_time is required")
        if source.get("cover_image_url"):
            problem = await _fetch_image(source["cover_image_url"])
            if problem:
                return "", [], who.fail(400, INVALID, problem)
        return "video", [media_id], None
    return "", [], who.fail(400, INVALID, f"Invalid request: unsupported source_type {kind!r}")


@router.post("/v5/pins")
async def create_pin(request: Request) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    body = await _json(request)
    if body is None:
        return who.fail(400, INVALID, "Invalid request: body must be a JSON object")
    board_id = body.get("board_id")
    if not board_id:
        return who.fail(400, INVALID, "Invalid request: 'board_id' is a required property")
    if not str(board_id).isdigit():
        return who.fail(400, INVALID, f"Invalid request: '{board_id}' does not match '^\\d+$' - 'board_id'")
    if _own_board(who, str(board_id)) is None:
        return who.fail(404, NOT_FOUND, "Board not found.")
    for field, limit in LIMITS.items():
        value = body.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            return who.fail(400, INVALID, f"Invalid request: '{field}' is longer than {limit} characters")
    media_type, media, problem = await _check_source(who, body.get("media_source"))
    if problem:
        return problem
    if take_content_fault(P, who.user.id, request):
        return who.fail(400, INVALID, "Your Pin was blocked because it violates Pinterest's Community Guidelines.")
    pin_id = str(800_000_000_000_000_000 + WORLD.next_id())
    post = WORLD.record_post(P, who.user.id, id=pin_id, text=body.get("description") or "", media=media,
                             reply_to=None, raw=body, media_type=media_type, username=who.user.username)
    if take_drop_fault(P, who.user.id, request):
        return DroppedConnection()
    return who.reply(_pin_view(post), 201)
