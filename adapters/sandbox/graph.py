"""Graph API conventions shared by the Instagram, Threads and Facebook sandboxes.

- The error envelope `{"error": {"message", "type", "code", "error_subcode", "is_transient",
  "error_user_title", "error_user_msg", "fbtrace_id"}}`, answered with HTTP 400 for
  OAuthException-type errors (expired tokens, throttling, bad parameters) and 5xx for outages.
- Usage headers on every answer: `X-App-Usage` (percent of the app budget) and
  `X-Business-Use-Case-Usage` (per business object, with `estimated_time_to_regain_access`
  in minutes once throttled).
- Parameters from the query string, a form body or a JSON body alike; the token from
  `Authorization: Bearer|OAuth` or the `access_token` parameter.
- The media container state machine of Instagram and Threads:
  IN_PROGRESS → FINISHED | ERROR, FINISHED → PUBLISHED, anything unpublished → EXPIRED after 24 h.
- Cursor pagination of edges: `limit` (a default when absent, capped), an opaque `after` cursor,
  `paging.cursors.before/after`, and `paging.next` only while more items follow.
- Pulling media from a public URL and sniffing its bytes, as Meta's fetchers do.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import Request
from starlette.responses import JSONResponse, Response

from adapters.sandbox.core import (
    WORLD,
    Fault,
    Grant,
    SandboxError,
    SandboxUser,
    apply_pre_faults,
    rate_window,
)

CONTAINER_TTL = 24 * 3600.0
# How long the sandbox "processes" media before a container is FINISHED.
PROCESSING_SECONDS = {"TEXT": 0.1, "IMAGE": 0.2, "CAROUSEL": 0.2, "VIDEO": 0.6, "REELS": 0.6}
# Calls per hour per account before usage headers reach 100 %.
CALL_BUDGET = 200
LONG_LIVED_TTL = 5_184_000.0  # 60 days


class GraphFail(Exception):
    """Raised inside a handler; `guarded` turns it into the Graph error response."""

    def __init__(self, status: int, error: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(error.get("message"))
        self.status = status
        self.error = error
        self.headers = headers or {}


def fail(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    transient: bool = False,
    user_title: str | None = None,
    user_msg: str | None = None,
    headers: dict[str, str] | None = None,
    kind: str = "OAuthException",
) -> GraphFail:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = transient
    if user_title:
        error["error_user_title"] = user_title
    if user_msg:
        error["error_user_msg"] = user_msg
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    return GraphFail(status, error, headers)


def invalid_param(message: str, **kw: Any) -> GraphFail:
    return fail(400, 100, f"(#100) {message}", **kw)


async def guarded(handler) -> Response:
    try:
        return await handler
    except GraphFail as exc:
        return JSONResponse({"error": exc.error}, status_code=exc.status, headers=exc.headers)


async def params_of(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method in ("POST", "DELETE"):
        ctype = request.headers.get("content-type", "")
        if "json" in ctype:
            try:
                body = await request.json()
            except ValueError:
                raise invalid_param("Invalid JSON body") from None
            if isinstance(body, dict):
                params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
        elif "form" in ctype:
            params.update({k: str(v) for k, v in (await request.form()).items()})
    return params


def token_of(request: Request, params: dict[str, str]) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value:
        return value.strip()
    return params.get("access_token")


def _grant(platform: str, token: str | None) -> Grant | None:
    with WORLD.lock:
        return WORLD.state(platform).grants.get(token or "")


async def authenticate(
    platform: str, request: Request, params: dict[str, str], *, rate_code: int
) -> tuple[SandboxUser, Grant]:
    """Pre-request faults, then the token check, answering like Graph does."""
    token = token_of(request, params)
    grant = _grant(platform, token)
    fault = await apply_pre_faults(platform, grant.user_id if grant else None, request)
    if fault:
        raise fault_fail(platform, grant.user_id if grant else "app", fault, rate_code=rate_code)
    try:
        return WORLD.bearer(platform, token)
    except SandboxError as exc:
        raise auth_fail(exc, grant) from None


def auth_fail(exc: SandboxError, grant: Grant | None) -> GraphFail:
    if exc.kind == "missing":
        return fail(400, 104, "An access token is required to request this resource.")
    if exc.kind == "expired":
        when = datetime.fromtimestamp(grant.expires_at if grant and grant.expires_at else time.time(), UTC)
        return fail(
            400,
            190,
            f"Error validating access token: Session has expired on "
            f"{when:%A, %d-%b-%y %H:%M:%S} UTC. The current time is "
            f"{datetime.now(UTC):%A, %d-%b-%y %H:%M:%S} UTC.",
            subcode=463,
        )
    if exc.kind == "revoked":
        app = grant.client_id if grant else "unknown"
        return fail(
            400,
            190,
            f"Error validating access token: The user has not authorized application {app}.",
            subcode=458,
        )
    return fail(400, 190, "Invalid OAuth access token - Cannot parse access token")


def fault_fail(platform: str, account: str, fault: Fault, *, rate_code: int) -> GraphFail:
    if fault.kind == "rate_limit":
        minutes = max(1, math.ceil(fault.retry_after / 60))
        headers = usage_headers(platform, account, regain_minutes=minutes)
        messages = {
            80001: "There have been too many calls to this Page account. Wait a bit and try again.",
            80002: "There have been too many calls to this Instagram account. Wait a bit and try again.",
        }
        return fail(
            400,
            rate_code,
            f"(#{rate_code}) " + messages.get(rate_code, "Application request limit reached"),
            transient=True,
            headers=headers,
        )
    return fail(
        fault.status, 2, "An unexpected error has occurred. Please retry your request later.", transient=True
    )


def usage_headers(platform: str, account: str, *, regain_minutes: int = 0) -> dict[str, str]:
    """The app-level and business-use-case usage reports Graph adds to each answer.

    Throttled answers (`regain_minutes` > 0) report 100 %; others count this call in the hour's budget.
    """
    if regain_minutes:
        pct = 100
    else:
        _, remaining, _ = rate_window(platform, account, "calls", limit=CALL_BUDGET, window=3600)
        pct = min(100, round(100 * (CALL_BUDGET - remaining) / CALL_BUDGET))
    usage = {"call_count": pct, "total_cputime": max(1, pct // 4), "total_time": max(1, pct // 3)}
    buc = {
        account: [{"type": _buc_type(platform), **usage, "estimated_time_to_regain_access": regain_minutes}]
    }
    return {"X-App-Usage": json.dumps(usage), "X-Business-Use-Case-Usage": json.dumps(buc)}


def _buc_type(platform: str) -> str:
    return {"facebook": "pages", "instagram": "instagram", "threads": "threads"}[platform]


def ok(platform: str, account: str, body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=usage_headers(platform, account))


def graph_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def check_version(version: str) -> None:
    head, _, minor = version.partition(".")
    if not (head.startswith("v") and head[1:].isdigit() and minor.isdigit()):
        raise fail(400, 2635, f"({version}) is not a valid Graph API version.", kind="GraphMethodException")


def unknown_path() -> GraphFail:
    return fail(
        400,
        100,
        "Unsupported request - method type or path not supported",
        subcode=33,
        kind="GraphMethodException",
    )


def new_id() -> str:
    return str(17_840_000_000_000_000 + WORLD.next_id())


# --- cursor pagination ------------------------------------------------------------


def edge_page(
    request: Request,
    params: dict[str, str],
    items: list[dict[str, Any]],
    view: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    default_limit: int = 25,
    max_limit: int = 100,
) -> dict[str, Any]:
    """One page of an edge's `items` (already in the edge's order), shown through `view`.

    A cursor names an item, as Graph's do, so a page read later continues after that item even
    when newer items have arrived at the head of the listing."""
    try:
        limit = int(params.get("limit") or default_limit)
    except ValueError:
        raise invalid_param("Param limit must be a non-negative integer") from None
    if limit < 0:
        raise invalid_param("Param limit must be a non-negative integer")
    limit = max(1, min(limit, max_limit))
    start = 0
    if params.get("after"):
        ids = [str(item["id"]) for item in items]
        wanted = _uncursor(params["after"])
        if wanted not in ids:
            raise invalid_param("Invalid pagination cursor: the item it points to is gone")
        start = ids.index(wanted) + 1
    page = items[start : start + limit]
    if not page:
        return {"data": []}
    after = _cursor(page[-1])
    paging: dict[str, Any] = {"cursors": {"before": _cursor(page[0]), "after": after}}
    if start + limit < len(items):
        paging["next"] = str(request.url.include_query_params(limit=limit, after=after))
    return {"data": [view(item) for item in page], "paging": paging}


def _cursor(item: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(str(item["id"]).encode()).decode()


def _uncursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_param("Invalid pagination cursor") from None


# --- media pulled from URLs -----------------------------------------------------


def sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:10] == b"qt" else "video/mp4"
    return None


async def fetch_media(url: str) -> tuple[bytes | None, str | None]:
    """(bytes, sniffed type), or (None, None) when the URL cannot be fetched."""
    if not url.startswith(("http://", "https://")):
        return None, None
    try:
        async with httpx.AsyncClient(timeout=5.0, follow_redirects=True) as client:
            resp = await client.get(url)
    except httpx.HTTPError:
        return None, None
    if resp.status_code != 200:
        return None, None
    return resp.content, sniff(resp.content)


# --- containers -----------------------------------------------------------------


def new_container(
    platform: str,
    owner: str,
    media_type: str,
    params: dict[str, str],
    *,
    error: dict[str, Any] | None = None,
    children: list[str] | None = None,
) -> dict[str, Any]:
    now = time.time()
    container = {
        "id": new_id(),
        "owner": owner,
        "media_type": media_type,
        "params": params,
        "children": children or [],
        "created_at": now,
        "ready_at": now + PROCESSING_SECONDS.get(media_type, 0.2),
        "error": error,
        "published_id": None,
    }
    with WORLD.lock:
        WORLD.state(platform).table("containers")[container["id"]] = container
    return container


def container(platform: str, container_id: str) -> dict[str, Any] | None:
    with WORLD.lock:
        return WORLD.state(platform).table("containers").get(container_id)


def container_status(c: dict[str, Any]) -> str:
    now = time.time()
    if c["published_id"]:
        return "PUBLISHED"
    if now > c["created_at"] + CONTAINER_TTL:
        return "EXPIRED"
    if now < c["ready_at"]:
        return "IN_PROGRESS"
    return "ERROR" if c["error"] else "FINISHED"


# --- long-lived user tokens (Instagram, Threads) -------------------------------------


def exchange_long_lived(
    platform: str, params: dict[str, str], *, grant_type: str, prefix: str
) -> dict[str, Any]:
    """`GET /access_token?grant_type=<x>_exchange_token&client_secret&access_token`."""
    if params.get("grant_type") != grant_type:
        raise invalid_param(f"grant_type must be {grant_type}")
    user, grant = _token_check(platform, params.get("access_token"))
    with WORLD.lock:
        secret = WORLD.state(platform).apps.get(grant.client_id)
    if not params.get("client_secret") or params.get("client_secret") != secret:
        raise fail(400, 101, "Error validating application. Invalid application secret.")
    return _issue_long(platform, user, grant, prefix)


def refresh_long_lived(
    platform: str, params: dict[str, str], *, grant_type: str, prefix: str
) -> dict[str, Any]:
    """`GET /refresh_access_token?grant_type=<x>_refresh_token&access_token` (a valid token only)."""
    if params.get("grant_type") != grant_type:
        raise invalid_param(f"grant_type must be {grant_type}")
    user, grant = _token_check(platform, params.get("access_token"))
    return _issue_long(platform, user, grant, prefix)


def _token_check(platform: str, token: str | None) -> tuple[SandboxUser, Grant]:
    try:
        return WORLD.bearer(platform, token)
    except SandboxError as exc:
        raise auth_fail(exc, _grant(platform, token)) from None


def _issue_long(platform: str, user: SandboxUser, grant: Grant, prefix: str) -> dict[str, Any]:
    fresh = WORLD.issue_grant(
        platform,
        kind="access",
        user_id=user.id,
        client_id=grant.client_id,
        scopes=grant.scopes,
        ttl=LONG_LIVED_TTL,
        prefix=prefix,
    )
    return {"access_token": fresh.token, "token_type": "bearer", "expires_in": int(LONG_LIVED_TTL)}


def with_fragment(response: Response, fragment: str) -> Response:
    """Instagram appends `#_` to the redirect after consent."""
    location = response.headers.get("location")
    if location and "code=" in location:
        response.headers["location"] = location + fragment
    return response
