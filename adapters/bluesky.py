"""Bluesky (AT Protocol XRPC) with an app password session.

Posts are `app.bsky.feed.post` records created with a record key derived
from the draft's tag, so a repeated attempt can never create a second post:
the PDS refuses a create on an existing key, and reconcile is a plain
`getRecord` on that key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    AccountAuth,
    AccountProfile,
    MediaRef,
    MediaSource,
    PartDraft,
    PlatformAdapter,
    PostRef,
    Prepared,
    TokenSet,
)
from adapters.capabilities import Capabilities, Issue, MediaLimits
from adapters.catalogue import ProviderEntry
from adapters.errors import (
    AdapterError,
    AuthExpired,
    AuthRevoked,
    ContentRejected,
    MediaRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    Unverifiable,
)

PROVIDER = ProviderEntry(
    platform="bluesky",
    display_name="Bluesky",
    auth_kind="app_password",
    api_base="https://bsky.social",
    # Public web links to posts; not an API host.
    extra_urls={"web": "https://bsky.app"},
    refresh_rotates=True,
    has_refresh_token=True,
)

POST_COLLECTION = "app.bsky.feed.post"
MAX_IMAGE_BYTES = 2_000_000
# Simple-method videos go through uploadBlob, which the PDS caps at 50 MB.
MAX_VIDEO_BYTES = 50_000_000
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
VIDEO_TYPES = ("video/mp4",)


class BlueskyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    langs: list[str] | None = Field(default=None, max_length=3, description="BCP-47 languages, at most 3")
    tags: list[str] | None = Field(default=None, max_length=8, description="Extra hashtags not in the text")


CAPABILITIES = Capabilities(
    caption_limit=300,
    caption_unit="graphemes",
    caption_byte_limit=3000,
    media=MediaLimits(
        max_items=4,
        image_types=IMAGE_TYPES,
        video_types=VIDEO_TYPES,
        max_image_bytes=MAX_IMAGE_BYTES,
        max_video_bytes=MAX_VIDEO_BYTES,
    ),
    threads=True,
    first_comment=False,
    options_model=BlueskyOptions,
    notes=(
        "Links, #tags and @mentions become facets; unresolvable mentions stay plain text.",
        "Videos use the simple uploadBlob method and show as processing until Bluesky finishes.",
    ),
)

# Errors that mean the session is gone for good and the user must log in again.
_REVOKED = {
    "InvalidToken",
    "AuthMissing",
    "AuthenticationRequired",
    "AccountTakedown",
    "AccountDeactivated",
    "AuthFactorTokenRequired",
    "MissingTokenId",
}
_MEDIA_ERRORS = {"PayloadTooLarge", "InvalidMimeType", "InvalidSize", "BlobNotFound", "BlobTooLarge"}

# A record key must be a TID: 13 base32-sortable characters whose first one keeps the top bit clear.
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"

_LINK = re.compile(r"(?<![\w/@.])https?://[^\s<>\"]+")
_MENTION = re.compile(
    r"(?<![\w@.])@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
)
_TAG = re.compile(r"(?<![\w#&/])#(?!\d+(?!\w))(\w{1,64})")


def record_key(tag: str) -> str:
    """A valid TID derived from the tag: the same tag always names the same record."""
    n = int.from_bytes(hashlib.sha256(tag.encode()).digest()[:8], "big") >> 1
    return "".join(_TID_ALPHABET[(n >> (5 * (12 - i))) & 31] for i in range(13))


def _jwt_exp(token: str | None) -> float | None:
    """The `exp` claim of a session JWT (read, not verified: the PDS verifies it)."""
    if not token or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


def _pds_from_did_doc(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    for service in doc.get("service") or []:
        if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
            endpoint = service.get("serviceEndpoint")
            if isinstance(endpoint, str) and endpoint.startswith(("http://", "https://")):
                return endpoint.rstrip("/")
    return None


def _byte_span(text: str, start: int, end: int) -> dict[str, int]:
    return {"byteStart": len(text[:start].encode()), "byteEnd": len(text[:end].encode())}


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG, for the embed's aspectRatio."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


class BlueskyAdapter(PlatformAdapter):
    platform = "bluesky"
    provider = PROVIDER
    capabilities = CAPABILITIES

    # --- session (app password) ---

    def authorization_url(self, *, redirect_uri: str, state: str, code_verifier: str | None) -> str:
        raise AdapterError("Bluesky connects with a handle and an app password", code="unsupported")

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet:
        raise AdapterError("Bluesky connects with a handle and an app password", code="unsupported")

    async def login(self, identifier: str, app_password: str) -> TokenSet:
        """createSession. Call once per connection: the PDS allows 30 logins per 5 minutes."""
        resp = await self._send(
            "POST",
            self._xrpc(self.endpoints.api_base, "com.atproto.server.createSession"),
            json={"identifier": identifier.strip().lstrip("@"), "password": app_password},
        )
        if resp.status_code in (400, 401) and _error_name(resp) in (
            "AuthenticationRequired",
            "InvalidRequest",
        ):
            raise AuthRevoked(
                "Bluesky refused the handle or app password",
                code="invalid_credentials",
                status=resp.status_code,
            )
        data = self._json(resp, "createSession", session=True)
        return self._session(data)

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """refreshSession: the refresh JWT rotates; the old one dies after a grace period."""
        if not tokens.refresh_token:
            raise AuthRevoked("No refresh JWT: log in again with the app password", code="reauth_required")
        resp = await self._send(
            "POST",
            self._xrpc(self._pds(tokens), "com.atproto.server.refreshSession"),
            headers=_bearer(tokens.refresh_token),
        )
        data = self._json(resp, "refreshSession", session=True)
        return self._session(data, previous=tokens)

    async def revoke(self, tokens: TokenSet) -> None:
        if not tokens.refresh_token:
            return
        resp = await self._send(
            "POST",
            self._xrpc(self._pds(tokens), "com.atproto.server.deleteSession"),
            headers=_bearer(tokens.refresh_token),
        )
        try:
            self._json(resp, "deleteSession", session=True, expect_body=False)
        except (AuthRevoked, AuthExpired):
            return  # already dead: nothing left to revoke

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        did = tokens.extra.get("did")
        pds = self._pds(tokens)
        resp = await self._send(
            "GET",
            self._xrpc(pds, "app.bsky.actor.getProfile"),
            params={"actor": did or tokens.extra.get("handle")},
            headers=_bearer(tokens.access_token),
        )
        if _no_appview(resp):
            # A PDS without an AppView does not serve getProfile: read the profile record itself.
            return await self._profile_from_repo(tokens)
        data = self._json(resp, "getProfile")
        return AccountProfile(
            external_id=data["did"],
            username=data.get("handle"),
            display_name=data.get("displayName") or data.get("handle"),
            avatar_url=data.get("avatar"),
            extra={"pds": pds},
        )

    async def _profile_from_repo(self, tokens: TokenSet) -> AccountProfile:
        pds = self._pds(tokens)
        session = self._json(
            await self._send(
                "GET", self._xrpc(pds, "com.atproto.server.getSession"), headers=_bearer(tokens.access_token)
            ),
            "getSession",
        )
        did = session["did"]
        record = await self._get_record(tokens, did, "app.bsky.actor.profile", "self")
        value = (record or {}).get("value") or {}
        avatar = value.get("avatar") if isinstance(value.get("avatar"), dict) else None
        avatar_url = None
        if avatar and isinstance(avatar.get("ref"), dict):
            avatar_url = (
                self._xrpc(pds, "com.atproto.sync.getBlob")
                + f"?did={quote(did)}&cid={quote(avatar['ref'].get('$link', ''))}"
            )
        return AccountProfile(
            external_id=did,
            username=session.get("handle"),
            display_name=value.get("displayName") or session.get("handle"),
            avatar_url=avatar_url,
            extra={"pds": pds},
        )

    # --- publishing ---

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues = super().validate(draft, field_prefix=field_prefix, part_count=part_count)
        if draft.is_comment:
            p = f"{field_prefix}." if field_prefix else ""
            issues.append(
                Issue(
                    f"{p}first_comment",
                    "first_comment_unsupported",
                    "Bluesky has no first comments: use thread_position for a reply chain",
                )
            )
        return issues

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef:
        data = await self._download(media)
        is_video = media.content_type in VIDEO_TYPES
        if media.content_type not in IMAGE_TYPES + VIDEO_TYPES:
            raise MediaRejected(f"Bluesky does not accept {media.content_type}")
        limit = MAX_VIDEO_BYTES if is_video else MAX_IMAGE_BYTES
        if len(data) > limit:
            raise MediaRejected(f"{len(data)} bytes is over Bluesky's {limit} byte limit")
        resp = await self._send(
            "POST",
            self._xrpc(self._pds(auth.tokens), "com.atproto.repo.uploadBlob"),
            content=data,
            headers={**_bearer(auth.tokens.access_token), "Content-Type": media.content_type},
        )
        blob = self._json(resp, "uploadBlob").get("blob")
        if not isinstance(blob, dict) or not isinstance(blob.get("ref"), dict):
            raise TransientError("uploadBlob answered without a blob")
        detected = str(blob.get("mimeType", ""))
        # The PDS stores what it sniffs: a mislabelled file would fail the record's type check.
        if detected.split("/")[0] != media.content_type.split("/")[0]:
            raise MediaRejected(f"file declared {media.content_type} but Bluesky detected {detected}")
        extra: dict[str, Any] = {
            "blob": blob,
            "alt": media.alt_text or "",
            "kind": "video" if is_video else "image",
        }
        size = None if is_video else _image_size(data)
        if size and all(size):
            extra["aspect_ratio"] = {"width": size[0], "height": size[1]}
        return MediaRef(platform_media_id=str(blob["ref"].get("$link")), content_type=detected, data=extra)

    async def publish(self, auth: AccountAuth, prepared: Prepared) -> PostRef:
        draft = prepared.draft
        did = self._did(auth)
        record = await self._record(auth, draft)
        body: dict[str, Any] = {"repo": did, "collection": POST_COLLECTION, "record": record}
        rkey = record_key(draft.tag) if draft.tag else None
        if rkey:
            body["rkey"] = rkey
        url = self._xrpc(self._pds(auth.tokens), "com.atproto.repo.createRecord")
        resp = await self._send(
            "POST", url, json=body, headers=_bearer(auth.tokens.access_token), create=True
        )
        if rkey and (resp.status_code >= 500 or resp.status_code == 409):
            # The reference PDS answers a create on an existing key with a bare 500: look before blaming it.
            existing = await self._existing(auth, rkey)
            if existing is not None:
                return existing
        data = self._json(resp, "createRecord")
        return self._post_ref(auth, data["uri"], data["cid"], record)

    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        if not draft.tag:
            raise Unverifiable("This Bluesky attempt had no record key to look up")
        return await self._existing(auth, record_key(draft.tag))

    async def _existing(self, auth: AccountAuth, rkey: str) -> PostRef | None:
        found = await self._get_record(auth.tokens, self._did(auth), POST_COLLECTION, rkey)
        if found is None:
            return None
        return self._post_ref(auth, found["uri"], found["cid"], found.get("value") or {})

    async def _get_record(
        self, tokens: TokenSet, did: str, collection: str, rkey: str
    ) -> dict[str, Any] | None:
        resp = await self._send(
            "GET",
            self._xrpc(self._pds(tokens), "com.atproto.repo.getRecord"),
            params={"repo": did, "collection": collection, "rkey": rkey},
            headers=_bearer(tokens.access_token),
        )
        if resp.status_code == 400 and _error_name(resp) in ("RecordNotFound", None):
            return None
        return self._json(resp, "getRecord")

    def _post_ref(self, auth: AccountAuth, uri: str, cid: str, record: dict[str, Any]) -> PostRef:
        reply = record.get("reply") if isinstance(record.get("reply"), dict) else None
        root = reply["root"] if reply and isinstance(reply.get("root"), dict) else {"uri": uri, "cid": cid}
        rkey = uri.rsplit("/", 1)[-1]
        who = auth.username or self._did(auth)
        web = f"{self.endpoints.url('web')}/profile/{who}/post/{rkey}"
        return PostRef(external_id=uri, url=web, data={"uri": uri, "cid": cid, "root": root, "rkey": rkey})

    async def _record(self, auth: AccountAuth, draft: PartDraft) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": draft.text or "",
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        facets = await self._facets(auth, draft.text or "")
        if facets:
            record["facets"] = facets
        options = BlueskyOptions.model_validate(draft.options or {})
        if options.langs:
            record["langs"] = options.langs
        if options.tags:
            record["tags"] = options.tags
        if draft.reply_to is not None:
            record["reply"] = _reply_refs(draft.reply_to)
        embed = _embed(draft.media)
        if embed:
            record["embed"] = embed
        return record

    async def _facets(self, auth: AccountAuth, text: str) -> list[dict[str, Any]]:
        facets: list[dict[str, Any]] = []
        for m in _LINK.finditer(text):
            uri = m.group(0).rstrip(".,;:!?'\")]")
            facets.append(
                {
                    "index": _byte_span(text, m.start(), m.start() + len(uri)),
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
                }
            )
        for m in _TAG.finditer(text):
            facets.append(
                {
                    "index": _byte_span(text, m.start(), m.end()),
                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": m.group(1)}],
                }
            )
        for m in _MENTION.finditer(text):
            did = await self._resolve_handle(auth, m.group(1))
            if did:
                facets.append(
                    {
                        "index": _byte_span(text, m.start(), m.end()),
                        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                    }
                )
        return sorted(facets, key=lambda f: f["index"]["byteStart"])

    async def _resolve_handle(self, auth: AccountAuth, handle: str) -> str | None:
        resp = await self._send(
            "GET",
            self._xrpc(self._pds(auth.tokens), "com.atproto.identity.resolveHandle"),
            params={"handle": handle.lower()},
            headers=_bearer(auth.tokens.access_token),
        )
        if resp.status_code == 400 and _error_name(resp) not in {"ExpiredToken"} | _REVOKED:
            return None  # unknown handle: the mention stays plain text
        did = self._json(resp, "resolveHandle").get("did")
        return did if isinstance(did, str) and did.startswith("did:") else None

    # --- mechanics ---

    def _pds(self, tokens: TokenSet) -> str:
        # In test mode every call stays on the sandbox, whatever a session advertised.
        if self.endpoints.sandbox:
            return self.endpoints.api_base
        return str(tokens.extra.get("pds") or self.endpoints.api_base)

    @staticmethod
    def _did(auth: AccountAuth) -> str:
        return str(auth.tokens.extra.get("did") or auth.external_id)

    @staticmethod
    def _xrpc(base: str, nsid: str) -> str:
        return f"{base.rstrip('/')}/xrpc/{nsid}"

    def _session(self, data: dict[str, Any], previous: TokenSet | None = None) -> TokenSet:
        if not data.get("accessJwt") or not data.get("did"):
            raise TransientError("session response has no accessJwt")
        pds = _pds_from_did_doc(data.get("didDoc")) or (previous.extra.get("pds") if previous else None)
        extra = {
            **(previous.extra if previous else {}),
            "did": data["did"],
            "handle": data.get("handle"),
            "pds": pds or self.endpoints.api_base,
        }
        return TokenSet(
            access_token=data["accessJwt"],
            refresh_token=data.get("refreshJwt") or (previous.refresh_token if previous else None),
            expires_at=_jwt_exp(data["accessJwt"]),
            refresh_expires_at=_jwt_exp(data.get("refreshJwt")),
            extra=extra,
        )

    async def _download(self, media: MediaSource) -> bytes:
        try:
            resp = await self.http.get(media.url, follow_redirects=True)
        except httpx.TransportError as exc:
            raise TransientError(f"could not fetch media: {type(exc).__name__}") from None
        if resp.status_code >= 500:
            raise TransientError(f"media URL answered {resp.status_code}")
        if resp.status_code >= 400:
            raise MediaRejected(f"media URL answered {resp.status_code}", status=resp.status_code)
        return resp.content

    async def _send(self, method: str, url: str, *, create: bool = False, **kw: Any) -> httpx.Response:
        """One request. A create whose answer is lost may have landed: that is OutcomeUnknown."""
        try:
            return await self.http.request(method, url, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(f"Bluesky unreachable: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            if create:
                raise OutcomeUnknown(
                    f"connection lost after the create was sent: {type(exc).__name__}"
                ) from None
            raise TransientError(f"Bluesky request failed: {type(exc).__name__}") from None

    def _json(
        self, resp: httpx.Response, what: str, *, session: bool = False, expect_body: bool = True
    ) -> dict[str, Any]:
        if resp.status_code >= 400:
            _raise_for(resp, what, session=session)
        if not expect_body:
            return {}
        try:
            data = resp.json()
        except ValueError:
            raise TransientError(f"{what} answered {resp.status_code} without JSON") from None
        if not isinstance(data, dict):
            raise TransientError(f"{what} answered an unexpected body")
        return data


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _no_appview(resp: httpx.Response) -> bool:
    if resp.status_code in (404, 501):
        return True
    return resp.status_code == 400 and "No service configured" in resp.text


def _error_name(resp: httpx.Response) -> str | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    return data.get("error") if isinstance(data, dict) else None


def _raise_for(resp: httpx.Response, what: str, *, session: bool = False) -> None:
    """Map an XRPC error body onto Herald's error types."""
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    name = str(body.get("error") or f"HTTP{status}")
    message = f"Bluesky {what}: {status} {name}" + (f": {body['message']}" if body.get("message") else "")
    if status == 429 or name == "RateLimitExceeded":
        raise RateLimited(message, retry_after=_retry_after(resp), status=status)
    if status >= 500 or name == "UpstreamFailure":
        raise TransientError(message, status=status)
    if name == "ExpiredToken":
        # On refreshSession/deleteSession the refresh JWT itself is dead: only a new login helps.
        if session:
            raise AuthRevoked(message, code="reauth_required", status=status)
        raise AuthExpired(message, status=status)
    if name in _REVOKED or status == 401:
        raise AuthRevoked(message, code="reauth_required", status=status)
    if status == 413 or name in _MEDIA_ERRORS:
        raise MediaRejected(message, status=status)
    if name == "InvalidRequest" and "/embed" in str(body.get("message", "")):
        raise MediaRejected(message, status=status)
    if status == 400:
        raise ContentRejected(message, status=status)
    raise AdapterError(message, status=status)


def _retry_after(resp: httpx.Response) -> float | None:
    reset = resp.headers.get("ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    value = resp.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _reply_refs(parent: PostRef) -> dict[str, Any]:
    uri = parent.data.get("uri") or parent.external_id
    cid = parent.data.get("cid")
    if not cid:
        raise ContentRejected("the post to reply to has no cid")
    root = parent.data.get("root") or {"uri": uri, "cid": cid}
    return {"root": {"uri": root["uri"], "cid": root["cid"]}, "parent": {"uri": uri, "cid": cid}}


def _embed(media: list[MediaRef]) -> dict[str, Any] | None:
    if not media:
        return None
    videos = [m for m in media if m.data.get("kind") == "video" or m.content_type in VIDEO_TYPES]
    if videos:
        v = videos[0]
        embed: dict[str, Any] = {"$type": "app.bsky.embed.video", "video": v.data["blob"]}
        if v.data.get("alt"):
            embed["alt"] = v.data["alt"]
        if v.data.get("aspect_ratio"):
            embed["aspectRatio"] = v.data["aspect_ratio"]
        return embed
    images = []
    for m in media:
        image: dict[str, Any] = {"image": m.data["blob"], "alt": m.data.get("alt") or ""}
        if m.data.get("aspect_ratio"):
            image["aspectRatio"] = m.data["aspect_ratio"]
        images.append(image)
    return {"$type": "app.bsky.embed.images", "images": images}
