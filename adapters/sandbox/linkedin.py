"""Sandbox LinkedIn: OAuth (www.linkedin.com/oauth/v2), OIDC userinfo and the versioned /rest APIs.

Served paths are LinkedIn's own: `/oauth/v2/authorization`, `/oauth/v2/accessToken`,
`/oauth/v2/revoke`, `/v2/userinfo`, `/rest/images`, `/rest/videos`, `/rest/posts`,
`/rest/socialActions/{urn}/comments`, plus `/dms-uploads/...` for the upload URLs it hands out.
"""

from __future__ import annotations

import hashlib
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
    apply_pre_faults,
    fresh_hidden,
    take_content_fault,
    take_drop_fault,
)

P = "linkedin"
router = APIRouter()
oauth = OAuthServer(OAuthSpec(
    platform=P,
    display_name="LinkedIn",
    scope_separator=" ",
    pkce="none",
    token_auth="client_secret_post",
    access_ttl=60 * 86400,
    refresh_ttl=365 * 86400,
    rotate_refresh=False,
    brand_color="#0a66c2",
    token_prefix="AQ",
))

# Versions live while these docs were current; older ones answer 426 NONEXISTENT_VERSION.
ACTIVE_VERSIONS = range(202601, 202613)
COMMENTARY_LIMIT = 3000
PART_SIZE = 4 * 1024 * 1024
PROCESSING_SECONDS = 0.3
_VERSION = re.compile(r"^(\d{6})(?:\.(\d{2}))?$")
_RESERVED = frozenset("\\|{}@[]()<>#*_~")
_VISIBILITY = {"PUBLIC", "CONNECTIONS", "LOGGED_IN"}


def error(status: int, code: str | None, message: str, *, service_code: int | None = None,
          headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"status": status}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    if code:
        body["code"] = code
    body["message"] = message
    return JSONResponse(body | extra, status_code=status, headers=headers)


def validation_error(message: str, field: str, *, status: int = 422, code: str = "INVALID_VALUE") -> JSONResponse:
    return error(status, None, message, errorDetailType="com.linkedin.common.error.BadRequest",
                 errorDetails={"inputErrors": [{"description": message, "code": code,
                                                "input": {"inputPath": {"fieldPath": field}}}]})


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return None


def _mount(request: Request, marker: str) -> str:
    """The absolute base this router is served at, for the upload URLs it hands out."""
    path = request.url.path
    return f"{request.url.scheme}://{request.url.netloc}{path[: path.index(marker)]}"


def _bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _auth_error(exc: SandboxError) -> JSONResponse:
    if exc.kind == "expired":
        # serviceErrorCode for expiry is unconfirmed; the code string is what clients match.
        return error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired", service_code=65602)
    if exc.kind == "revoked":
        return error(401, "REVOKED_ACCESS_TOKEN", "The token used in the request has been revoked by the user",
                     service_code=65601)
    return error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", service_code=65600)


async def guard(request: Request, *, rest: bool = True) -> SandboxUser | Response:
    """Faults, version headers and bearer check shared by every API handler."""
    token = _bearer_token(request)
    grant = WORLD.state(P).grants.get(token or "")
    fault = await apply_pre_faults(P, grant.user_id if grant else None, request)
    if fault and fault.kind == "rate_limit":
        # LinkedIn sends no Retry-After: quotas are daily and reset at midnight UTC.
        return error(429, "TOO_MANY_REQUESTS",
                     "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.")
    if fault:
        return error(fault.status, "INTERNAL_SERVER_ERROR", "Unable to obtain activity")
    try:
        user, _ = WORLD.bearer(P, token)
    except SandboxError as exc:
        return _auth_error(exc)
    if rest:
        version = request.headers.get("linkedin-version")
        if not version:
            # Exact status and code for a missing version are unconfirmed.
            return error(400, "VERSION_MISSING", "A version must be present. "
                         "Please specify a version by adding the LinkedIn-Version header.")
        match = _VERSION.match(version)
        if not match or int(match.group(1)) not in ACTIVE_VERSIONS:
            shown = f"{match.group(1)}{match.group(2) or '01'}" if match else version
            return error(426, "NONEXISTENT_VERSION", f"Requested version {shown} is not active")
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return error(400, None, "X-Restli-Protocol-Version 2.0.0 is required for this resource")
    return user


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def person(user: SandboxUser) -> str:
    return f"urn:li:person:{user.id}"


# --- OAuth ----------------------------------------------------------------


@router.get("/oauth/v2/authorization")
def authorize(request: Request) -> Response:
    return oauth.consent_page(request, action=request.url.path + "/decide")


@router.post("/oauth/v2/authorization/decide")
async def decide(request: Request) -> Response:
    return await oauth.decide(request)


@router.post("/oauth/v2/accessToken")
async def access_token(request: Request) -> Response:
    body = {k: str(v) for k, v in (await request.form()).items()}
    try:
        out = await oauth.token(request, body)
    except SandboxError as exc:
        return JSONResponse({"error": exc.kind, "error_description": exc.message}, status_code=exc.status)
    if body.get("grant_type") == "refresh_token":
        # LinkedIn answers a refresh with the same refresh token and its remaining lifetime.
        grant = WORLD.state(P).grants[body["refresh_token"]]
        out["refresh_token"] = grant.token
        out["refresh_token_expires_in"] = max(0, int(grant.expires_at - time.time()))
    return JSONResponse(out)


@router.post("/oauth/v2/revoke")
async def revoke(request: Request) -> Response:
    body = {k: str(v) for k, v in (await request.form()).items()}
    try:
        WORLD.check_client(P, body.get("client_id"), body.get("client_secret"), secret_required=True)
    except SandboxError as exc:
        return JSONResponse({"error": exc.kind, "error_description": exc.message}, status_code=exc.status)
    oauth.revoke(body.get("token"))
    return Response(status_code=200)


@router.get("/v2/userinfo")
async def userinfo(request: Request) -> Response:
    who = await guard(request, rest=False)
    if isinstance(who, Response):
        return who
    given, _, family = who.display_name.partition(" ")
    return JSONResponse({
        "sub": who.id, "email_verified": True, "name": who.display_name, "locale": {"country": "US",
                                                                                  "language": "en"},
        "given_name": given, "family_name": family, "email": f"{who.username}@sandbox.invalid",
        "picture": who.avatar_url,
    })


# --- media ----------------------------------------------------------------


def _asset(kind: str) -> str:
    return f"urn:li:{kind}:C{secrets.token_hex(8).upper()}"


@router.post("/rest/images")
async def images_action(request: Request, action: str | None = None) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    body = await _json(request)
    if action != "initializeUpload":
        return error(400, None, f"Unsupported action {action!r}")
    owner = ((body or {}).get("initializeUploadRequest") or {}).get("owner")
    if owner != person(who):
        return error(403, "ACCESS_DENIED", f"Not enough permissions to upload for owner {owner}")
    urn = _asset("image")
    WORLD.state(P).table("assets")[urn] = {"kind": "image", "owner": owner, "status": "WAITING_UPLOAD", "parts": 1}
    upload = f"{_mount(request, '/rest/')}/dms-uploads/{urn}/0"
    return JSONResponse({"value": {"uploadUrlExpiresAt": int((time.time() + 86400) * 1000),
                                   "uploadUrl": upload, "image": urn}})


@router.post("/rest/videos")
async def videos_action(request: Request, action: str | None = None) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    body = await _json(request) or {}
    assets = WORLD.state(P).table("assets")
    if action == "initializeUpload":
        init = body.get("initializeUploadRequest") or {}
        if init.get("owner") != person(who):
            return error(403, "ACCESS_DENIED", f"Not enough permissions to upload for owner {init.get('owner')}")
        size = init.get("fileSizeBytes")
        if not isinstance(size, int) or size <= 0:
            return validation_error("fileSizeBytes is required", "/initializeUploadRequest/fileSizeBytes",
                                    status=400)
        urn = _asset("video")
        base = _mount(request, "/rest/")
        parts = [(i, start, min(start + PART_SIZE, size) - 1) for i, start in enumerate(range(0, size, PART_SIZE))]
        assets[urn] = {"kind": "video", "owner": person(who), "status": "WAITING_UPLOAD", "size": size,
                       "parts": len(parts), "chunks": {}, "etags": {}, "token": secrets.token_hex(8)}
        return JSONResponse({"value": {
            "uploadUrlsExpireAt": int((time.time() + 86400) * 1000),
            "video": urn,
            "uploadInstructions": [{"uploadUrl": f"{base}/dms-uploads/{urn}/{i}", "firstByte": first,
                                    "lastByte": last} for i, first, last in parts],
            "uploadToken": assets[urn]["token"],
        }})
    if action == "finalizeUpload":
        fin = body.get("finalizeUploadRequest") or {}
        asset = assets.get(fin.get("video") or "")
        if asset is None or asset["owner"] != person(who):
            return error(404, None, f"Video {fin.get('video')} not found")
        expected = [asset["etags"].get(i) for i in range(asset["parts"])]
        if fin.get("uploadToken") != asset["token"] or fin.get("uploadedPartIds") != expected:
            return validation_error("uploadedPartIds do not match the uploaded parts",
                                    "/finalizeUploadRequest/uploadedPartIds", status=400)
        data = b"".join(asset["chunks"][i] for i in range(asset["parts"]))
        asset.update(status="PROCESSING", ready_at=time.time() + PROCESSING_SECONDS,
                     failed=_sniff(data) != "video/mp4" or len(data) != asset["size"], chunks={})
        return Response(status_code=200)
    return error(400, None, f"Unsupported action {action!r}")


@router.put("/dms-uploads/{urn}/{part}")
async def upload(request: Request, urn: str, part: int) -> Response:
    who = await guard(request, rest=False)
    if isinstance(who, Response):
        return who
    asset = WORLD.state(P).table("assets").get(urn)
    if asset is None or asset["owner"] != person(who) or part >= asset["parts"]:
        return error(404, None, "Upload URL not found or expired")
    data = await request.body()
    etag = '"' + hashlib.md5(data).hexdigest() + '"'
    if asset["kind"] == "image":
        asset.update(status="PROCESSING", ready_at=time.time() + PROCESSING_SECONDS,
                     failed=_sniff(data) not in ("image/png", "image/jpeg", "image/gif"))
    else:
        asset["chunks"][part] = data
        asset["etags"][part] = etag
    return Response(status_code=201, headers={"etag": etag})


def _asset_view(urn: str, asset: dict[str, Any]) -> dict[str, Any]:
    if asset["status"] == "PROCESSING" and time.time() >= asset["ready_at"]:
        asset["status"] = "PROCESSING_FAILED" if asset["failed"] else "AVAILABLE"
    return {"owner": asset["owner"], "id": urn, "status": asset["status"]}


@router.get("/rest/images/{urn}")
@router.get("/rest/videos/{urn}")
async def asset_status(request: Request, urn: str) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    asset = WORLD.state(P).table("assets").get(urn)
    if asset is None or not request.url.path.split("/rest/")[1].startswith(asset["kind"]):
        return error(404, None, f"{urn} not found")
    return JSONResponse(_asset_view(urn, asset))


# --- posts and comments -----------------------------------------------------


def _unescape(commentary: str) -> str:
    """What LinkedIn shows: escapes resolved, and the text cut at the first unescaped reserved character."""
    out, i = [], 0
    while i < len(commentary):
        ch = commentary[i]
        if ch == "\\" and i + 1 < len(commentary) and commentary[i + 1] in _RESERVED:
            out.append(commentary[i + 1])
            i += 2
            continue
        if ch in _RESERVED:
            break
        out.append(ch)
        i += 1
    return "".join(out)


def _check_content(content: Any, who: SandboxUser) -> tuple[list[str], JSONResponse | None]:
    if content is None:
        return [], None
    if not isinstance(content, dict):
        return [], validation_error("content must be an object", "/content")
    if "media" in content:
        ids = [(content["media"] or {}).get("id")]
    elif "multiImage" in content:
        ids = [i.get("id") for i in (content["multiImage"] or {}).get("images") or []]
        if not 2 <= len(ids) <= 20:
            return [], validation_error("multiImage needs 2 to 20 images", "/content/multiImage/images")
        if any(not str(i).startswith("urn:li:image:") for i in ids):
            return [], validation_error("multiImage only holds images", "/content/multiImage/images")
    else:
        return [], validation_error("Unsupported content type", "/content")
    assets = WORLD.state(P).table("assets")
    for urn in ids:
        asset = assets.get(urn or "")
        if asset is None or asset["owner"] != person(who):
            return [], validation_error(f"Media {urn} does not exist", "/content")
        if _asset_view(urn, asset)["status"] != "AVAILABLE":
            return [], validation_error(f"Media {urn} is not AVAILABLE", "/content")
    return [str(i) for i in ids], None


@router.post("/rest/posts")
async def create_post(request: Request) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    body = await _json(request)
    if body is None:
        return error(400, None, "Request body is not valid JSON")
    for field in ("author", "lifecycleState", "visibility", "distribution"):
        if field not in body:
            return validation_error(f"Field /{field} is required", f"/{field}", status=400, code="MISSING_FIELD")
    if body["author"] != person(who):
        return error(403, "ACCESS_DENIED", f"Not enough permissions to post as {body['author']}")
    if body["visibility"] not in _VISIBILITY:
        return validation_error(f"Invalid visibility {body['visibility']}", "/visibility", status=400)
    if body["lifecycleState"] not in ("PUBLISHED", "DRAFT"):
        return validation_error("Invalid lifecycleState", "/lifecycleState", status=400)
    if (body["distribution"] or {}).get("feedDistribution") not in ("MAIN_FEED", "NONE"):
        return validation_error("Invalid feedDistribution", "/distribution/feedDistribution", status=400)
    commentary = body.get("commentary") or ""
    if not isinstance(commentary, str) or len(_unescape(commentary)) > COMMENTARY_LIMIT:
        return validation_error(f"commentary is longer than {COMMENTARY_LIMIT} characters", "/commentary")
    media, problem = _check_content(body.get("content"), who)
    if problem:
        return problem
    if not commentary and not media:
        return validation_error("A post needs commentary or content", "/commentary")
    if take_content_fault(P, who.id, request):
        return error(422, "CONTENT_POLICY_VIOLATION",
                     "Content is not allowed by LinkedIn's Professional Community Policies")
    for post in WORLD.posts(P, who.id):
        if post.get("kind") == "post" and post["raw"].get("commentary") == commentary \
                and post["raw"].get("content") == body.get("content"):
            return validation_error(
                "com.linkedin.content.common.exception.BadRequestResponseException: Content is a duplicate of "
                + post["id"], "", code="DUPLICATE_POST")
    urn = f"urn:li:share:{7_000_000_000_000_000_000 + WORLD.next_id()}"
    WORLD.record_post(P, who.id, id=urn, kind="post", text=_unescape(commentary), media=media, reply_to=None,
                      raw=body)
    if take_drop_fault(P, who.id, request):
        return DroppedConnection()
    return Response(status_code=201, headers={"x-restli-id": urn, "x-linkedin-id": urn})


def _post_view(post: dict[str, Any]) -> dict[str, Any]:
    created = int(post["created_at"] * 1000)
    return {"id": post["id"], "createdAt": created, "lastModifiedAt": created, "publishedAt": created,
            **{k: v for k, v in post["raw"].items() if k != "id"}}


@router.get("/rest/posts")
async def list_posts(request: Request, q: str | None = None, author: str | None = None,
                     count: int = 10, start: int = 0) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    if q != "author" or not author:
        return error(400, None, "Finder 'author' with an author URN is required")
    if author != person(who):
        return error(403, "ACCESS_DENIED", f"Not enough permissions to read posts of {author}")
    count = max(1, min(count, 100))
    posts = sorted((p for p in fresh_hidden(P, who.id, request, WORLD.posts(P, who.id)) if p.get("kind") == "post"),
                   key=lambda p: p["created_at"], reverse=True)
    page = posts[start : start + count]
    return JSONResponse({"paging": {"start": start, "count": count, "links": [], "total": len(posts)},
                         "elements": [_post_view(p) for p in page]})


def _find_post(urn: str) -> dict[str, Any] | None:
    return next((p for p in WORLD.posts(P) if p["id"] == urn and p.get("kind") == "post"), None)


@router.post("/rest/socialActions/{urn}/comments")
async def create_comment(request: Request, urn: str) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    body = await _json(request) or {}
    if _find_post(urn) is None:
        return error(404, None, f"Post {urn} not found")
    if body.get("actor") != person(who):
        return error(403, "ACCESS_DENIED", f"Not enough permissions to comment as {body.get('actor')}")
    if body.get("object") != urn:
        return validation_error("object must be the post the comment is on", "/object", status=400)
    text = (body.get("message") or {}).get("text")
    if not isinstance(text, str) or not text:
        return validation_error("message.text is required", "/message/text", status=400)
    if len(text) > 1250:
        return validation_error("message.text is longer than 1250 characters", "/message/text")
    if take_content_fault(P, who.id, request):
        return error(422, "CONTENT_POLICY_VIOLATION", "Comment is not allowed by LinkedIn's policies")
    cid = WORLD.next_id()
    comment_urn = f"urn:li:comment:({urn},{cid})"
    post = WORLD.record_post(P, who.id, id=comment_urn, kind="comment", text=text, media=[], reply_to=urn,
                             raw=body)
    if take_drop_fault(P, who.id, request):
        return DroppedConnection()
    return JSONResponse(_comment_view(post), status_code=201, headers={"x-restli-id": comment_urn})


def _comment_view(post: dict[str, Any]) -> dict[str, Any]:
    created = int(post["created_at"] * 1000)
    return {"id": post["id"].rsplit(",", 1)[1].rstrip(")"), "commentUrn": post["id"], "object": post["reply_to"],
            "actor": post["raw"]["actor"], "message": post["raw"]["message"],
            "created": {"actor": post["raw"]["actor"], "time": created},
            "lastModified": {"actor": post["raw"]["actor"], "time": created}}


@router.get("/rest/socialActions/{urn}/comments")
async def list_comments(request: Request, urn: str, count: int = 10, start: int = 0) -> Response:
    who = await guard(request)
    if isinstance(who, Response):
        return who
    if _find_post(urn) is None:
        return error(404, None, f"Post {urn} not found")
    comments = [p for p in WORLD.posts(P) if p.get("kind") == "comment" and p["reply_to"] == urn]
    page = comments[start : start + max(1, min(count, 100))]
    return JSONResponse({"paging": {"start": start, "count": count, "total": len(comments)},
                         "elements": [_comment_view(p) for p in page]})
