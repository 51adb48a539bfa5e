"""LinkedIn: member posts through the versioned REST Posts, Images and Videos APIs.

OAuth is the standard 3-legged flow without PKCE; refresh tokens (approved apps only)
are not rotated and keep the expiry of the original grant. Posts answer 201 with an
empty body and the URN in `x-restli-id`. `commentary` is "little text", so reserved
characters are backslash-escaped or LinkedIn truncates the post.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from adapters.base import (
    AccountAuth,
    AccountProfile,
    MediaRef,
    MediaSource,
    PartDraft,
    Pending,
    PlatformAdapter,
    PostRef,
    Prepared,
    TokenSet,
)
from adapters.capabilities import Capabilities, MediaLimits
from adapters.catalogue import ProviderEntry
from adapters.errors import (
    AdapterError,
    AuthExpired,
    AuthRevoked,
    ContentRejected,
    DuplicateContent,
    MediaRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    Unverifiable,
)
from adapters.listing import Page, find_since
from adapters.oauth import OAuth2Mixin

# Versions sunset about a year after release; bump this with the API's migration notes.
LINKEDIN_VERSION = "202605"
MEDIA_CHECK_AFTER = 0.5
RECONCILE_PAGE = 50

PROVIDER = ProviderEntry(
    platform="linkedin",
    display_name="LinkedIn",
    auth_kind="oauth2",
    api_base="https://api.linkedin.com/rest",
    authorize_url="https://www.linkedin.com/oauth/v2/authorization",
    token_url="https://www.linkedin.com/oauth/v2/accessToken",
    revoke_url="https://www.linkedin.com/oauth/v2/revoke",
    extra_urls={"userinfo": "https://api.linkedin.com/v2/userinfo"},
    scopes=("openid", "profile", "email", "w_member_social"),
    scope_separator=" ",
    pkce=None,
    token_auth_method="client_secret_post",
    token_body="form",
    refresh_rotates=False,
    has_refresh_token=True,
)


class LinkedInOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visibility: Literal["PUBLIC", "CONNECTIONS", "LOGGED_IN"] = "PUBLIC"
    disable_reshare: bool = False


CAPABILITIES = Capabilities(
    caption_limit=3000,
    caption_unit="characters",
    media=MediaLimits(
        max_items=20,
        image_types=("image/jpeg", "image/png", "image/gif"),
        video_types=("video/mp4",),
        max_video_bytes=500 * 1024 * 1024,
        max_video_seconds=30 * 60,
        max_videos=1,
        allow_mixed=False,
    ),
    threads=False,
    first_comment=True,
    options_model=LinkedInOptions,
    notes=(
        "2-20 images become a multi-image post; one video per post.",
        "The caption limit counts the text before LinkedIn's little-text escaping.",
    ),
)

_LITTLE_TEXT_RESERVED = frozenset("\\|{}@[]()<>#*_~")
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def escape_little_text(text: str) -> str:
    """Backslash-escape every reserved little-text character so LinkedIn shows the text verbatim."""
    return "".join("\\" + ch if ch in _LITTLE_TEXT_RESERVED else ch for ch in text)


def author_urn(auth: AccountAuth) -> str:
    return f"urn:li:person:{auth.external_id}"


def post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}"


class LinkedInAdapter(OAuth2Mixin, PlatformAdapter):
    platform = "linkedin"
    provider = PROVIDER
    capabilities = CAPABILITIES

    # --- account ---

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        resp = await self._send("GET", self.endpoints.url("userinfo"), tokens.access_token, rest=False)
        data = resp.json()
        sub = str(data["sub"])
        return AccountProfile(
            external_id=sub,
            username=data.get("email"),
            display_name=data.get("name"),
            avatar_url=data.get("picture"),
            extra={"author_urn": f"urn:li:person:{sub}"},
        )

    # --- media ---

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef | Pending:
        kind = "video" if media.content_type.startswith("video/") else "image"
        payload = await self._fetch_media(media)
        token = auth.tokens.access_token
        init: dict[str, Any] = {"owner": author_urn(auth)}
        if kind == "video":
            init |= {"fileSizeBytes": len(payload), "uploadCaptions": False, "uploadThumbnail": False}
        resp = await self._send(
            "POST", f"{self._rest}/{kind}s", token, params={"action": "initializeUpload"},
            json={"initializeUploadRequest": init},
        )
        value = resp.json()["value"]
        handle = {"kind": kind, "content_type": media.content_type, "alt_text": media.alt_text}
        if kind == "image":
            await self._put_bytes(value["uploadUrl"], payload, token)
            handle["urn"] = value["image"]
        else:
            etags = []
            for part in value["uploadInstructions"]:
                chunk = payload[part["firstByte"] : part["lastByte"] + 1]
                etags.append(await self._put_bytes(part["uploadUrl"], chunk, token))
            await self._send(
                "POST", f"{self._rest}/videos", token, params={"action": "finalizeUpload"},
                json={"finalizeUploadRequest": {
                    "video": value["video"], "uploadToken": value.get("uploadToken", ""),
                    "uploadedPartIds": etags,
                }},
            )
            handle["urn"] = value["video"]
        return Pending(check_after=MEDIA_CHECK_AFTER, handle=handle)

    async def poll_media(self, auth: AccountAuth, handle: dict[str, Any]) -> MediaRef | Pending:
        urn = handle["urn"]
        resp = await self._send("GET", f"{self._rest}/{handle['kind']}s/{quote(urn, safe='')}",
                                auth.tokens.access_token)
        status = resp.json().get("status")
        if status == "AVAILABLE":
            return MediaRef(platform_media_id=urn, content_type=handle["content_type"],
                            data={"kind": handle["kind"], "alt_text": handle.get("alt_text")})
        if status in ("PROCESSING_FAILED", "FAILED"):
            raise MediaRejected(f"LinkedIn could not process {handle['kind']} {urn}")
        return Pending(check_after=MEDIA_CHECK_AFTER, handle=handle, state=str(status or "processing").lower())

    # --- publishing ---

    async def publish(self, auth: AccountAuth, prepared: Prepared) -> PostRef:
        draft = prepared.draft
        if draft.is_comment and draft.reply_to:
            return await self.comment(auth, draft.reply_to, draft.text, tag=draft.tag)
        options = LinkedInOptions.model_validate(draft.options or {})
        body: dict[str, Any] = {
            "author": author_urn(auth),
            "commentary": escape_little_text(draft.text or ""),
            "visibility": options.visibility,
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": options.disable_reshare,
        }
        content = _content(draft.media)
        if content:
            body["content"] = content
        resp = await self._send("POST", f"{self._rest}/posts", auth.tokens.access_token, json=body, create=True)
        urn = resp.headers.get("x-restli-id")
        if not urn:
            raise OutcomeUnknown("LinkedIn accepted the post but sent no x-restli-id")
        return PostRef(external_id=urn, url=post_url(urn))

    async def comment(self, auth: AccountAuth, parent: PostRef, text: str, *, tag: str) -> PostRef:
        # Comment text is plain text, not little text: it is sent as written.
        body = {"actor": author_urn(auth), "object": parent.external_id, "message": {"text": text}}
        resp = await self._send("POST", self._comments_url(parent.external_id), auth.tokens.access_token,
                                json=body, create=True)
        data = resp.json() if resp.content else {}
        urn = resp.headers.get("x-restli-id") or data.get("commentUrn")
        if not urn:
            raise OutcomeUnknown("LinkedIn accepted the comment but sent no id")
        return PostRef(external_id=urn, url=post_url(parent.external_id), data={"parent": parent.external_id})

    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        token = auth.tokens.access_token
        # createdAt is in milliseconds; allow one second for its truncation.
        since_ms = (since - 1) * 1000
        if draft.is_comment and draft.reply_to:
            parent = draft.reply_to.external_id
            found = await find_since(
                self._pages(self._comments_url(parent), token, {}),
                match=lambda el: el.get("actor") == author_urn(auth)
                and (el.get("message") or {}).get("text") == draft.text,
                created=lambda el: (el.get("created") or {}).get("time"), since=since_ms,
                newest_first=False, what="the post's LinkedIn comments")
            if found is None:
                return None
            return PostRef(external_id=found.get("commentUrn") or found.get("id"), url=post_url(parent),
                           data={"parent": parent})
        wanted = escape_little_text(draft.text or "")
        found = await find_since(
            self._pages(f"{self._rest}/posts", token,
                        {"author": author_urn(auth), "q": "author", "sortBy": "LAST_MODIFIED"}),
            match=lambda el: el.get("commentary") == wanted, created=lambda el: el.get("createdAt"),
            since=since_ms, newest_first=True, what="the member's LinkedIn posts")
        return None if found is None else PostRef(external_id=found["id"], url=post_url(found["id"]))

    def _pages(self, url: str, token: str, params: dict[str, Any]):
        """A Rest.li collection read `RECONCILE_PAGE` elements at a time (start/count paging)."""
        async def fetch(start: int | None) -> Page:
            start = start or 0
            resp = await self._send("GET", url, token, reading=True,
                                    params={**params, "start": start, "count": RECONCILE_PAGE})
            body = resp.json()
            elements = body.get("elements", [])
            total = (body.get("paging") or {}).get("total")
            more = len(elements) == RECONCILE_PAGE and (total is None or start + len(elements) < total)
            return elements, start + len(elements) if more else None
        return fetch

    # --- HTTP ---

    @property
    def _rest(self) -> str:
        return self.endpoints.api_base.rstrip("/")

    def _comments_url(self, post_urn: str) -> str:
        return f"{self._rest}/socialActions/{quote(post_urn, safe='')}/comments"

    async def _send(self, method: str, url: str, token: str, *, rest: bool = True, create: bool = False,
                    reading: bool = False, **kw: Any) -> httpx.Response:
        """One API call, classified. `create` marks irreversible calls; `reading` marks reconcile lookups."""
        headers = {"Authorization": f"Bearer {token}"}
        if rest:
            headers |= {"LinkedIn-Version": LINKEDIN_VERSION, "X-Restli-Protocol-Version": "2.0.0"}
        try:
            resp = await self.http.request(method, url, headers=headers, **kw)
        except _NOT_SENT as exc:
            raise TransientError(f"LinkedIn unreachable: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            if create:
                raise OutcomeUnknown(
                    f"LinkedIn connection lost after the request was sent ({type(exc).__name__})"
                ) from None
            raise TransientError(f"LinkedIn connection failed: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            if reading and resp.status_code == 403:
                raise Unverifiable("LinkedIn does not let this app list the member's posts (403)", status=403)
            _raise_for(resp)
        return resp

    async def _put_bytes(self, upload_url: str, payload: bytes, token: str) -> str:
        """PUT one file or part to the URL LinkedIn issued; returns its ETag."""
        try:
            resp = await self.http.put(upload_url, content=payload, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"})
        except httpx.TransportError as exc:
            raise TransientError(f"LinkedIn upload failed: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            _raise_for(resp)
        return resp.headers.get("etag", "")

    async def _fetch_media(self, media: MediaSource) -> bytes:
        try:
            resp = await self.http.get(media.url)
        except httpx.TransportError as exc:
            raise TransientError(f"media URL unreachable: {type(exc).__name__}") from None
        if resp.status_code >= 500:
            raise TransientError(f"media URL answered {resp.status_code}")
        if resp.status_code >= 400:
            raise MediaRejected(f"media URL answered {resp.status_code}")
        return resp.content


def _content(media: list[MediaRef]) -> dict[str, Any] | None:
    if not media:
        return None
    if len(media) == 1:
        item: dict[str, Any] = {"id": media[0].platform_media_id}
        if media[0].data.get("alt_text") and media[0].data.get("kind") == "image":
            item["altText"] = media[0].data["alt_text"]
        return {"media": item}
    images = []
    for m in media:
        image = {"id": m.platform_media_id}
        if m.data.get("alt_text"):
            image["altText"] = m.data["alt_text"]
        images.append(image)
    return {"multiImage": {"images": images}}


def _raise_for(resp: httpx.Response) -> None:
    """Map LinkedIn's `{status, serviceErrorCode, code, message}` errors onto adapter errors."""
    try:
        data = resp.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    status = resp.status_code
    code = str(data.get("code") or "")
    message = str(data.get("message") or resp.reason_phrase or "")
    detail_codes = {
        str(e.get("code")) for e in ((data.get("errorDetails") or {}).get("inputErrors") or [])
        if isinstance(e, dict)
    }
    text = f"LinkedIn {status}{' ' + code if code else ''}: {message}"
    if status == 429:
        raise RateLimited(text, retry_after=_retry_after(resp), status=status)
    if status >= 500:
        raise TransientError(text, status=status)
    if status == 401:
        if code == "EXPIRED_ACCESS_TOKEN" or "expired" in message.lower():
            raise AuthExpired(text, status=status)
        raise AuthRevoked(text, status=status)
    if "DUPLICATE_POST" in detail_codes or code == "DUPLICATE_POST":
        raise DuplicateContent(text, status=status)
    if status == 426 or code in ("VERSION_MISSING", "NONEXISTENT_VERSION"):
        raise AdapterError(text, code="platform_version", status=status)
    if status == 403:
        raise AuthRevoked(text, code="permission_denied", status=status)
    if status in (400, 404, 409, 413, 415, 422):
        raise ContentRejected(text, status=status)
    raise AdapterError(text, status=status)


def _retry_after(resp: httpx.Response) -> float:
    """Retry-After when sent; otherwise LinkedIn's daily quotas reset at midnight UTC (unconfirmed)."""
    value = resp.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    now = datetime.fromtimestamp(time.time(), UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()
