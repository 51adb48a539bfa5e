"""Sandbox Bluesky PDS: the XRPC methods Herald uses, as the reference PDS answers them.

Sessions are app-password logins (`createSession`) with JWT-shaped access
(120 min) and refresh (90 days) tokens; a refresh rotates the pair and the
old refresh JWT keeps working for a 2 hour grace period. A create on an
existing record key answers a bare 500, as the reference PDS does.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import time
from typing import Any, Literal

import regex
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from adapters.sandbox.core import (
    WORLD,
    DroppedConnection,
    Grant,
    SandboxError,
    SandboxUser,
    apply_pre_faults,
    take_content_fault,
    take_drop_fault,
)

PLATFORM = "bluesky"
ACCESS_TTL = 120 * 60
REFRESH_TTL = 90 * 86400
REFRESH_GRACE = 2 * 3600
BLOB_LIMIT = 50_000_000
IMAGE_MAX = 2_000_000
VIDEO_MAX = 100_000_000
POST = "app.bsky.feed.post"

APP_PASSWORD = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$")
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_GRAPHEME = regex.compile(r"\X")
_STATUS_NAMES = {
    500: "InternalServerError",
    501: "MethodNotImplemented",
    502: "UpstreamFailure",
    503: "NotEnoughResources",
    504: "UpstreamTimeout",
}
_STATUS_TEXT = {
    500: "Internal Server Error",
    501: "Method Not Implemented",
    502: "Upstream Failure",
    503: "Not Enough Resources",
    504: "Upstream Timeout",
}

# (limit, window seconds, points per call) per bucket, as the reference PDS reports them.
LIMITS = {
    "global": (3000, 300, 1),
    "createSession": (30, 300, 1),
    "repo-write-hour": (5000, 3600, 3),
}

router = APIRouter()


# --- helpers -----------------------------------------------------------------


class XrpcError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers or {}


def _answer(body: Any, headers: dict[str, str], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _error(exc: XrpcError, headers: dict[str, str]) -> JSONResponse:
    return _answer({"error": exc.error, "message": exc.message}, {**headers, **exc.headers}, exc.status)


def _count(key: str, bucket: str) -> tuple[dict[str, str], bool]:
    """Count one call against a bucket; returns the RateLimit-* headers and whether it is over."""
    limit, window, points = LIMITS[bucket]
    st = WORLD.state(PLATFORM)
    now = time.time()
    with WORLD.lock:
        hits = [t for t in st.request_counts.get((key, bucket), []) if t > now - window]
        hits.append(now)
        st.request_counts[(key, bucket)] = hits
    used = len(hits) * points
    headers = {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, limit - used)),
        "RateLimit-Reset": str(int(hits[0] + window)),
        "RateLimit-Policy": f"{limit};w={window}",
    }
    return headers, used > limit


def _rate_limited(headers: dict[str, str]) -> XrpcError:
    return XrpcError(429, "RateLimitExceeded", "Rate Limit Exceeded", {**headers, "RateLimit-Remaining": "0"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(secrets.token_bytes(32))}"


def _did_of(user: SandboxUser) -> str:
    return user.id


def _adopt_users() -> None:
    """Re-key users made by the control API onto DIDs: on Bluesky the account id is the DID."""
    st = WORLD.state(PLATFORM)
    with WORLD.lock:
        for key, user in list(st.users.items()):
            if not key.startswith("did:"):
                digest = hashlib.sha256(f"bluesky:{user.username}".encode()).digest()
                user.id = "did:plc:" + base64.b32encode(digest).decode().lower()[:24]
                st.users[user.id] = st.users.pop(key)


def _handle_of(user: SandboxUser) -> str:
    return user.username if "." in user.username else f"{user.username}.bsky.social"


def _find_user(identifier: str | None) -> SandboxUser | None:
    """A known account by DID or handle (with or without the default `.bsky.social` suffix)."""
    ident = (identifier or "").strip().lstrip("@").lower()
    if not ident:
        return None
    _adopt_users()
    with WORLD.lock:
        for user in WORLD.state(PLATFORM).users.values():
            names = {user.username.lower(), _handle_of(user).lower(), _did_of(user)}
            if ident in names:
                return user
    return None


def _create_user(handle: str) -> SandboxUser:
    username = WORLD.user_for(PLATFORM, handle).username
    _adopt_users()
    with WORLD.lock:
        return next(u for u in WORLD.state(PLATFORM).users.values() if u.username == username)


def _issue(user: SandboxUser, kind: Literal["access", "refresh"], ttl: float) -> Grant:
    now = int(time.time())
    scope = "com.atproto.appPass" if kind == "access" else "com.atproto.refresh"
    token = _jwt(
        {
            "scope": scope,
            "sub": _did_of(user),
            "aud": "did:web:sandbox.bsky.invalid",
            "iat": now,
            "exp": now + int(ttl),
            "jti": secrets.token_urlsafe(16),
        }
    )
    grant = Grant(token, kind, user.id, "app-password", (scope,), now + ttl)
    with WORLD.lock:
        WORLD.state(PLATFORM).grants[token] = grant
    return grant


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _account_hint(request: Request) -> str | None:
    """The DID behind the presented token, before validating it (faults are per account)."""
    with WORLD.lock:
        st = WORLD.state(PLATFORM)
        grant = st.grants.get(_token(request) or "")
        user = st.users.get(grant.user_id) if grant else None
    return _did_of(user) if user else None


def _authed(request: Request, *, kind: str = "access") -> tuple[SandboxUser, Grant]:
    token = _token(request)
    if not token:
        raise XrpcError(401, "AuthMissing", "Authentication Required")
    try:
        return WORLD.bearer(PLATFORM, token, kind=kind, grace=REFRESH_GRACE if kind == "refresh" else 0.0)
    except SandboxError as exc:
        if exc.kind == "expired":
            raise XrpcError(400, "ExpiredToken", "Token has expired") from None
        if exc.kind == "revoked":
            # The reference PDS reports a dead refresh token as ExpiredToken "Token has been revoked".
            name = "ExpiredToken" if kind == "refresh" else "InvalidToken"
            raise XrpcError(400, name, "Token has been revoked") from None
        if kind == "refresh" and token in WORLD.state(PLATFORM).grants:
            raise XrpcError(400, "InvalidToken", "Invalid token type") from None
        raise XrpcError(400, "InvalidToken", "Token could not be verified") from None


async def _begin(
    request: Request, bucket: str = "global", key: str | None = None, account: str | None = None
) -> dict[str, str]:
    """Faults and rate-limit headers shared by every method; raises XrpcError to answer at once."""
    account = account or _account_hint(request)
    headers, over = _count(key or account or (request.client.host if request.client else "ip"), bucket)
    fault = await apply_pre_faults(PLATFORM, account, request)
    if fault and fault.kind == "rate_limit":
        headers["RateLimit-Reset"] = str(int(time.time() + fault.retry_after))
        raise _rate_limited(headers)
    if fault:
        raise XrpcError(
            fault.status,
            _STATUS_NAMES.get(fault.status, "InternalServerError"),
            _STATUS_TEXT.get(fault.status, "Internal Server Error"),
        )
    if over:
        raise _rate_limited(headers)
    return headers


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise XrpcError(400, "InvalidRequest", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise XrpcError(400, "InvalidRequest", "Input must be an object")
    return body


def _session_body(request: Request, user: SandboxUser, tokens: tuple[Grant, Grant] | None) -> dict[str, Any]:
    did = _did_of(user)
    pds = str(request.url).split("/xrpc/")[0]
    jwts = {"accessJwt": tokens[0].token, "refreshJwt": tokens[1].token} if tokens else {}
    return {
        **jwts,
        "handle": _handle_of(user),
        "did": did,
        "didDoc": {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "alsoKnownAs": [f"at://{_handle_of(user)}"],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
        },
        "email": f"{user.username}@sandbox.invalid",
        "emailConfirmed": True,
        "active": True,
    }


def _new_tid() -> str:
    n = (int(time.time() * 1_000_000) << 10) | secrets.randbelow(1024)
    return "".join(_TID_ALPHABET[(n >> (5 * (12 - i))) & 31] for i in range(13))


def _cid(data: bytes, prefix: str) -> str:
    return prefix + base64.b32encode(hashlib.sha256(data).digest()).decode().lower().rstrip("=")


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


def _records() -> dict[str, Any]:
    return WORLD.state(PLATFORM).table("records")


# --- session ---------------------------------------------------------------


@router.post("/xrpc/com.atproto.server.createSession")
async def create_session(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        body = await _json_body(request)
        identifier = str(body.get("identifier") or "").strip().lstrip("@").lower()
        password = body.get("password")
        if not identifier or not isinstance(password, str):
            raise XrpcError(400, "InvalidRequest", 'Input must have the property "identifier" and "password"')
        user = _find_user(identifier)
        headers = await _begin(
            request, "createSession", key=f"{identifier}-ip", account=_did_of(user) if user else None
        )
        if user is None or user.password is None:
            if not APP_PASSWORD.match(password):
                raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
            user = user or _create_user(identifier)
            user.password = password  # the first successful login fixes the app password
        elif password != user.password:
            raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
        access = _issue(user, "access", ACCESS_TTL)
        refresh = _issue(user, "refresh", REFRESH_TTL)
        return _answer(_session_body(request, user, (access, refresh)), headers)
    except XrpcError as exc:
        return _error(exc, headers)


@router.post("/xrpc/com.atproto.server.refreshSession")
async def refresh_session(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        user, grant = _authed(request, kind="refresh")
        access = _issue(user, "access", ACCESS_TTL)
        refresh = _issue(user, "refresh", REFRESH_TTL)
        with WORLD.lock:
            if grant.replaced_at is None:
                grant.replaced_at = time.time()
        return _answer(_session_body(request, user, (access, refresh)), headers)
    except XrpcError as exc:
        return _error(exc, headers)


@router.post("/xrpc/com.atproto.server.deleteSession")
async def delete_session(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        token = _token(request)
        with WORLD.lock:
            grant = WORLD.state(PLATFORM).grants.get(token or "")
        if grant is None or grant.kind != "refresh":
            raise XrpcError(400, "InvalidToken", "Token could not be verified")
        with WORLD.lock:
            grant.revoked = True
        return Response(status_code=200, headers=headers)
    except XrpcError as exc:
        return _error(exc, headers)


@router.get("/xrpc/com.atproto.server.getSession")
async def get_session(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        user, _ = _authed(request)
        return _answer(_session_body(request, user, None), headers)
    except XrpcError as exc:
        return _error(exc, headers)


# --- identity and profile ----------------------------------------------------


@router.get("/xrpc/com.atproto.identity.resolveHandle")
async def resolve_handle(request: Request, handle: str = "") -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        user = _find_user(handle)
        if user is None:
            raise XrpcError(400, "InvalidRequest", "Unable to resolve handle")
        return _answer({"did": _did_of(user)}, headers)
    except XrpcError as exc:
        return _error(exc, headers)


@router.get("/xrpc/app.bsky.actor.getProfile")
async def get_profile(request: Request, actor: str = "") -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        _authed(request)
        user = _find_user(actor)
        if user is None:
            raise XrpcError(400, "InvalidRequest", "Profile not found")
        did = _did_of(user)
        posts = sum(1 for r in _records().values() if r["did"] == did)
        return _answer(
            {
                "did": did,
                "handle": _handle_of(user),
                "displayName": user.display_name,
                "avatar": user.avatar_url,
                "followersCount": 0,
                "followsCount": 0,
                "postsCount": posts,
                "indexedAt": "2024-01-01T00:00:00.000Z",
            },
            headers,
        )
    except XrpcError as exc:
        return _error(exc, headers)


# --- blobs and records -------------------------------------------------------


@router.post("/xrpc/com.atproto.repo.uploadBlob")
async def upload_blob(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        user, _ = _authed(request)
        data = await request.body()
        if len(data) > BLOB_LIMIT:
            raise XrpcError(413, "PayloadTooLarge", "request entity too large")
        if not data:
            raise XrpcError(400, "InvalidRequest", "Request body is empty")
        mime = _sniff(data)
        cid = _cid(data, "bafkrei")
        with WORLD.lock:
            WORLD.state(PLATFORM).media[cid] = {"did": _did_of(user), "mimeType": mime, "size": len(data)}
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(data)}
        return _answer({"blob": blob}, headers)
    except XrpcError as exc:
        return _error(exc, headers)


def _invalid(path: str, problem: str) -> XrpcError:
    return XrpcError(400, "InvalidRequest", f"Invalid {POST} record: {path} {problem}")


def _check_blob(did: str, blob: Any, path: str, accept: str, max_size: int) -> str:
    if not isinstance(blob, dict) or blob.get("$type") != "blob" or not isinstance(blob.get("ref"), dict):
        raise _invalid(path, "should be a blob ref")
    cid = str(blob["ref"].get("$link", ""))
    stored = WORLD.state(PLATFORM).media.get(cid)
    if stored is None or stored["did"] != did:
        raise XrpcError(400, "BlobNotFound", f"Could not find blob: {cid}")
    if blob.get("mimeType") != stored["mimeType"]:
        raise XrpcError(
            400,
            "InvalidMimeType",
            "Referenced Mimetype does not match stored blob. "
            f"Expected: {stored['mimeType']}, Got: {blob.get('mimeType')}",
        )
    if blob.get("size") != stored["size"]:
        raise XrpcError(
            400,
            "InvalidSize",
            "Referenced Size does not match stored blob. "
            f"Expected: {stored['size']}, Got: {blob.get('size')}",
        )
    if not stored["mimeType"].startswith(accept):
        raise _invalid(path, f"mime type {stored['mimeType']} is not accepted")
    if stored["size"] > max_size:
        raise _invalid(path, f"file too big (max {max_size} bytes)")
    return cid


def _check_strong_ref(ref: Any, path: str) -> None:
    if not isinstance(ref, dict) or not str(ref.get("uri", "")).startswith("at://") or not ref.get("cid"):
        raise _invalid(path, "must be a strong ref with uri and cid")


def _validate_post(did: str, record: Any) -> list[str]:
    """The app.bsky.feed.post lexicon checks the reference PDS applies; returns referenced blobs."""
    if not isinstance(record, dict):
        raise XrpcError(400, "InvalidRequest", "Invalid record: must be an object")
    if record.get("$type") != POST:
        raise XrpcError(400, "InvalidRequest", f"Invalid $type: expected {POST}, got {record.get('$type')}")
    text = record.get("text")
    if not isinstance(text, str):
        raise _invalid("Record/text", "must be a string")
    if len(text.encode()) > 3000:
        raise _invalid("Record/text", "must not be longer than 3000 characters")
    if len(_GRAPHEME.findall(text)) > 300:
        raise _invalid("Record/text", "must not be longer than 300 graphemes")
    if not isinstance(record.get("createdAt"), str) or "T" not in record["createdAt"]:
        raise _invalid("Record/createdAt", "must be a valid datetime")
    size = len(text.encode())
    for i, facet in enumerate(record.get("facets") or []):
        index = facet.get("index") if isinstance(facet, dict) else None
        if not isinstance(index, dict) or not all(
            isinstance(index.get(k), int) for k in ("byteStart", "byteEnd")
        ):
            raise _invalid(f"Record/facets/{i}/index", "must have byteStart and byteEnd")
        if not 0 <= index["byteStart"] <= index["byteEnd"] <= size:
            raise _invalid(f"Record/facets/{i}/index", "is out of the text's byte range")
        for feature in facet.get("features") or []:
            kind = feature.get("$type") if isinstance(feature, dict) else None
            if kind == "app.bsky.richtext.facet#mention" and not str(feature.get("did", "")).startswith(
                "did:"
            ):
                raise _invalid(f"Record/facets/{i}/features", "mention must have a did")
    if len(record.get("langs") or []) > 3:
        raise _invalid("Record/langs", "must not have more than 3 elements")
    if len(record.get("tags") or []) > 8:
        raise _invalid("Record/tags", "must not have more than 8 elements")
    if "reply" in record:
        reply = record["reply"]
        if not isinstance(reply, dict):
            raise _invalid("Record/reply", "must be an object")
        _check_strong_ref(reply.get("root"), "Record/reply/root")
        _check_strong_ref(reply.get("parent"), "Record/reply/parent")
    return _validate_embed(did, record.get("embed"))


def _validate_embed(did: str, embed: Any) -> list[str]:
    if embed is None:
        return []
    kind = embed.get("$type") if isinstance(embed, dict) else None
    if kind == "app.bsky.embed.images":
        images = embed.get("images")
        if not isinstance(images, list) or not 1 <= len(images) <= 4:
            raise _invalid("Record/embed/images", "must have between 1 and 4 elements")
        cids = []
        for i, item in enumerate(images):
            if not isinstance(item, dict) or not isinstance(item.get("alt"), str):
                raise _invalid(f"Record/embed/images/{i}", 'must have the property "alt"')
            cids.append(
                _check_blob(did, item.get("image"), f"Record/embed/images/{i}/image", "image/", IMAGE_MAX)
            )
        return cids
    if kind == "app.bsky.embed.video":
        return [_check_blob(did, embed.get("video"), "Record/embed/video", "video/mp4", VIDEO_MAX)]
    raise _invalid("Record/embed", f"has an unsupported $type {kind!r}")


def _repo_user(repo: str | None) -> SandboxUser:
    user = _find_user(repo)
    if user is None:
        raise XrpcError(400, "InvalidRequest", f"Could not find repo: {repo}")
    return user


@router.post("/xrpc/com.atproto.repo.createRecord")
async def create_record(request: Request) -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        user, _ = _authed(request)
        did = _did_of(user)
        write_headers, over = _count(did, "repo-write-hour")
        headers.update(write_headers)
        if over:
            raise _rate_limited(headers)
        body = await _json_body(request)
        for key in ("repo", "collection", "record"):
            if key not in body:
                raise XrpcError(400, "InvalidRequest", f'Input must have the property "{key}"')
        if _repo_user(body["repo"]).id != user.id:
            raise XrpcError(401, "AuthenticationRequired", "Authentication Required")
        if body["collection"] != POST:
            raise XrpcError(400, "InvalidRequest", f"The sandbox PDS only stores {POST} records")
        rkey = body.get("rkey")
        if rkey is not None and not TID.match(str(rkey)):
            raise XrpcError(400, "InvalidRequest", f"Invalid record key for {POST}: must be a valid TID")
        blobs = _validate_post(did, body["record"])
        if take_content_fault(PLATFORM, did, request):
            raise _invalid("Record", "was refused by the sandbox content filter")
        rkey = str(rkey or _new_tid())
        uri = f"at://{did}/{POST}/{rkey}"
        record = body["record"]
        cid = _cid(json.dumps(record, sort_keys=True).encode(), "bafyrei")
        with WORLD.lock:
            if uri in _records():
                # The reference PDS's repository tree throws on an existing key: a bare 500.
                raise XrpcError(500, "InternalServerError", "Internal Server Error")
            _records()[uri] = {"uri": uri, "cid": cid, "value": record, "did": did, "rkey": rkey}
        parent = (record.get("reply") or {}).get("parent") or {}
        WORLD.record_post(
            PLATFORM,
            did,
            id=uri,
            cid=cid,
            text=record.get("text"),
            media=blobs,
            reply_to=parent.get("uri"),
            raw=body,
        )
        if take_drop_fault(PLATFORM, did, request):
            return DroppedConnection()
        commit = {"cid": _cid(f"commit:{uri}".encode(), "bafyrei"), "rev": _new_tid()}
        return _answer({"uri": uri, "cid": cid, "commit": commit, "validationStatus": "valid"}, headers)
    except XrpcError as exc:
        return _error(exc, headers)


@router.get("/xrpc/com.atproto.repo.getRecord")
async def get_record(request: Request, repo: str = "", collection: str = "", rkey: str = "") -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        did = _did_of(_repo_user(repo))
        uri = f"at://{did}/{collection}/{rkey}"
        found = _records().get(uri)
        if found is None:
            raise XrpcError(400, "RecordNotFound", f"Could not locate record: {uri}")
        return _answer({"uri": uri, "cid": found["cid"], "value": found["value"]}, headers)
    except XrpcError as exc:
        return _error(exc, headers)


@router.get("/xrpc/com.atproto.repo.listRecords")
async def list_records(
    request: Request,
    repo: str = "",
    collection: str = "",
    limit: int = 50,
    cursor: str | None = None,
    reverse: bool = False,
) -> Response:
    headers: dict[str, str] = {}
    try:
        headers = await _begin(request)
        did = _did_of(_repo_user(repo))
        rows = sorted(
            (r for r in _records().values() if r["did"] == did and r["uri"].split("/")[3] == collection),
            key=lambda r: r["rkey"],
            reverse=not reverse,
        )
        if cursor:
            rows = [r for r in rows if (r["rkey"] > cursor if reverse else r["rkey"] < cursor)]
        page = rows[: max(1, min(limit, 100))]
        out: dict[str, Any] = {
            "records": [{"uri": r["uri"], "cid": r["cid"], "value": r["value"]} for r in page]
        }
        if len(rows) > len(page):
            out["cursor"] = page[-1]["rkey"]
        return _answer(out, headers)
    except XrpcError as exc:
        return _error(exc, headers)


@router.get("/profile/{handle}/post/{rkey}")
def web_post(handle: str, rkey: str) -> Response:
    """The sandbox stand-in for the bsky.app post page that PostRef.url points to."""
    user = _find_user(handle)
    found = _records().get(f"at://{_did_of(user)}/{POST}/{rkey}") if user else None
    if found is None:
        return HTMLResponse("<h1>Post not found</h1>", status_code=404)
    text = html.escape(found["value"].get("text", ""))
    return HTMLResponse(
        f"<!doctype html><title>@{html.escape(handle)} on Bluesky sandbox</title>"
        f"<p><b>@{html.escape(handle)}</b></p><p>{text}</p>"
    )


@router.api_route("/xrpc/{nsid}", methods=["GET", "POST"])
def not_implemented(nsid: str) -> Response:
    return JSONResponse(
        {"error": "MethodNotImplemented", "message": "Method Not Implemented"}, status_code=501
    )
