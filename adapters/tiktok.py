"""TikTok (Content Posting API v2, Direct Post): one video, or 1–35 photos, per post.

Every v2 answer is `{"data": {...}, "error": {"code": "ok" | "<code>", "message", "log_id"}}`,
so success is `error.code == "ok"`, not only a 2xx status. Publishing is
asynchronous: `publish` initialises the post (and, for FILE_UPLOAD, sends the
bytes to the returned `upload_url`), then returns Pending with the
`publish_id`; `poll_publish` calls `status/fetch` until PUBLISH_COMPLETE or
FAILED. TikTok cannot list a creator's posts by content, so `reconcile` can
only answer from a `publish_id` an earlier attempt received.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

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
from adapters.oauth import OAuth2Mixin

PROVIDER = ProviderEntry(
    platform="tiktok",
    display_name="TikTok",
    auth_kind="oauth2",
    api_base="https://open.tiktokapis.com/v2",
    authorize_url="https://www.tiktok.com/v2/auth/authorize/",
    token_url="https://open.tiktokapis.com/v2/oauth/token/",
    revoke_url="https://open.tiktokapis.com/v2/oauth/revoke/",
    scopes=("user.info.basic", "user.info.profile", "video.publish", "video.upload"),
    scope_separator=",",
    pkce=None,  # web apps send no PKCE challenge; only mobile/desktop apps do
    token_auth_method="client_secret_post",
    token_body="form",
    client_id_param="client_key",
    # Refresh tokens rotate: the old one stops working once a new one is issued.
    refresh_rotates=True,
)

PRIVACY_LEVELS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY")
VIDEO_TYPES = ("video/mp4", "video/webm", "video/quicktime")
IMAGE_TYPES = ("image/jpeg", "image/webp")
MB = 1024 * 1024
SINGLE_CHUNK_MAX = 5 * MB  # below this the whole video is one chunk
CHUNK_SIZE = 10 * MB  # within TikTok's 5–64 MB; the last chunk absorbs the remainder (≤ 2 chunks' worth)
POST_URL = "https://www.tiktok.com/@{username}/video/{id}"


class TikTokOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    privacy_level: (
        Literal["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"] | None
    ) = None
    disable_comment: bool = False
    disable_duet: bool = False
    disable_stitch: bool = False
    video_cover_timestamp_ms: int | None = Field(default=None, ge=0)
    brand_content_toggle: bool = False
    brand_organic_toggle: bool = False
    is_aigc: bool = False
    # FILE_UPLOAD sends the bytes; PULL_FROM_URL needs the media URL prefix verified with TikTok.
    source: Literal["FILE_UPLOAD", "PULL_FROM_URL"] = "FILE_UPLOAD"
    # Photo posts only: a short title (the caption becomes the description) and the cover image.
    title: str | None = Field(default=None, max_length=90)
    photo_cover_index: int = Field(default=0, ge=0)
    auto_add_music: bool = False


CAPABILITIES = Capabilities(
    caption_limit=2200,
    caption_unit="utf16",
    media=MediaLimits(
        max_items=35,
        image_types=IMAGE_TYPES,
        video_types=VIDEO_TYPES,
        max_video_bytes=4 * 1024 * MB,
        max_videos=1,
        allow_mixed=False,
        required=True,
    ),
    threads=False,
    first_comment=False,
    options_model=TikTokOptions,
    notes=(
        "platform_options.privacy_level is required and must be one the creator allows.",
        "Photos are pulled from their URLs, whose prefix must be verified with TikTok; PNG is not accepted.",
        "Posts from unaudited apps are private (SELF_ONLY); TikTok gives no post id for SELF_ONLY posts.",
    ),
)

_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.ProxyError,
)
# Error codes (and status/fetch fail reasons) by the error they become.
_AUTH_EXPIRED = {"access_token_invalid"}
_AUTH_REVOKED = {"scope_not_authorized", "scope_permission_missed"}
_LONG_LIMITS = {  # seconds to wait: these are daily or pending-queue caps, not per-minute windows
    "spam_risk_too_many_posts": 24 * 3600.0,
    "reached_active_user_cap": 24 * 3600.0,
    "spam_risk_too_many_pending_share": 3600.0,
}
_CONTENT = {
    "spam_risk_user_banned_from_posting",
    "spam_risk_text",
    "unaudited_client_can_only_post_to_private_accounts",
    "privacy_level_option_mismatch",
    "url_ownership_unverified",
    "invalid_params",
}
_MEDIA = {
    "invalid_file_upload",
    "file_format_check_failed",
    "duration_check_failed",
    "frame_rate_check_failed",
    "picture_size_check_failed",
    "video_resolution_check_failed",
}
_TRANSIENT = {"internal_error", "video_pull_failed", "photo_pull_failed"}
RATE_WINDOW = 60.0  # TikTok's per-token limits are per minute


def classify(
    code: str, message: str, *, status: int | None = None, retry_after: float | None = None
) -> AdapterError:
    """The typed error for a TikTok error code or status/fetch `fail_reason`."""
    text = f"{code}: {message}" if message else code
    if code in _AUTH_EXPIRED:
        return AuthExpired(text, status=status)
    if code in _AUTH_REVOKED:
        return AuthRevoked(text, code="reauth_required", status=status)
    if code == "rate_limit_exceeded" or status == 429:
        return RateLimited(text, retry_after=retry_after or RATE_WINDOW, status=status)
    if code in _LONG_LIMITS:
        return RateLimited(text, retry_after=_LONG_LIMITS[code], status=status)
    if code in _MEDIA:
        return MediaRejected(text, status=status)
    if code in _CONTENT:
        return ContentRejected(text, status=status)
    if code in _TRANSIENT or (status or 0) >= 500:
        return TransientError(text, status=status)
    return AdapterError(text, status=status)


def check(resp: httpx.Response, what: str) -> dict[str, Any]:
    """The `data` of a v2 answer, or the typed error its `error.code` (or status) means."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code")) if isinstance(err, dict) else ""
    if resp.status_code < 400 and code == "ok":
        return body.get("data") or {}
    message = str(err.get("message") or "") if isinstance(err, dict) else resp.text[:200]
    raise classify(
        code or f"http_{resp.status_code}",
        f"{what}: {message}",
        status=resp.status_code,
        retry_after=_retry_after(resp),
    )


def _unknown(message: str, handle: dict[str, Any], *, status: int | None = None) -> OutcomeUnknown:
    """OutcomeUnknown carrying the publish handle, so reconcile (or a poll) can ask status/fetch."""
    err = OutcomeUnknown(f"{message} (publish_id {handle['publish_id']})", status=status)
    err.handle = dict(handle)
    return err


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers["retry-after"])
    except (KeyError, ValueError):
        return None


class TikTokAdapter(OAuth2Mixin, PlatformAdapter):
    platform = "tiktok"
    provider = PROVIDER
    capabilities = CAPABILITIES

    status_check_after = 3.0
    moderation_check_after = 30.0  # a public post's id only arrives after moderation, often minutes

    # --- OAuth departures ---

    async def revoke(self, tokens: TokenSet) -> None:
        """TikTok revokes the access token (the grant goes with it), not the refresh token."""
        await self.token_request(self.endpoints.revoke_url, {"token": tokens.access_token}, expect_json=False)

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        data = await self._call(
            "GET",
            "/user/info/",
            tokens.access_token,
            what="user/info",
            params={"fields": "open_id,union_id,avatar_url,display_name,username"},
        )
        user = data.get("user") or {}
        return AccountProfile(
            external_id=str(user.get("open_id") or tokens.extra.get("open_id")),
            username=user.get("username"),
            display_name=user.get("display_name"),
            avatar_url=user.get("avatar_url"),
            extra={"union_id": user.get("union_id")},
        )

    # --- publishing ---

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues = super().validate(draft, field_prefix=field_prefix, part_count=part_count)
        p = f"{field_prefix}." if field_prefix else ""
        if draft.is_comment:
            issues.append(
                Issue(f"{p}first_comment", "first_comment_unsupported", "TikTok's API cannot post comments")
            )
        if part_count > 1:
            issues.append(Issue(f"{p}thread_position", "threads_unsupported", "TikTok has no threads"))
        if not (draft.options or {}).get("privacy_level"):
            issues.append(
                Issue(
                    f"{p}platform_options.privacy_level",
                    "option_required",
                    f"TikTok needs a privacy_level chosen by the user: one of {', '.join(PRIVACY_LEVELS)}",
                )
            )
        return issues

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef:
        """Nothing to send yet: TikTok takes the media with the post's init call."""
        if not self.capabilities.media.accepts(media.content_type):
            raise MediaRejected(f"TikTok does not accept {media.content_type}")
        return MediaRef(
            platform_media_id=media.url,
            content_type=media.content_type,
            data={"url": media.url, "size_bytes": media.size_bytes},
        )

    async def prepare(self, auth: AccountAuth, draft: PartDraft) -> Prepared:
        """Ask TikTok what this creator may post now; refuse a privacy level they cannot use."""
        info = await self._call(
            "POST",
            "/post/publish/creator_info/query/",
            auth.tokens.access_token,
            what="creator_info/query",
            json={},
        )
        allowed = info.get("privacy_level_options") or []
        level = (draft.options or {}).get("privacy_level")
        if level not in allowed:
            raise ContentRejected(
                f"privacy_level_option_mismatch: {level} is not allowed for this creator "
                f"(allowed: {', '.join(allowed)})"
            )
        return Prepared(
            draft=draft,
            handle={
                "privacy_level_options": allowed,
                "comment_disabled": bool(info.get("comment_disabled")),
                "duet_disabled": bool(info.get("duet_disabled")),
                "stitch_disabled": bool(info.get("stitch_disabled")),
                "max_video_post_duration_sec": info.get("max_video_post_duration_sec"),
            },
        )

    async def publish(self, auth: AccountAuth, prepared: Prepared) -> Pending:
        draft = prepared.draft
        opts = TikTokOptions.model_validate(draft.options or {})
        if not opts.privacy_level:
            raise ContentRejected("invalid_params: privacy_level is required")
        if not draft.media:
            raise ContentRejected("invalid_params: a TikTok post needs a video or photos")
        videos = [m for m in draft.media if m.content_type in VIDEO_TYPES]
        if videos:
            publish_id = await self._publish_video(auth, draft, opts, prepared.handle)
        else:
            publish_id = await self._publish_photos(auth, draft, opts, prepared.handle)
        return Pending(
            check_after=self.status_check_after,
            handle={"publish_id": publish_id, "privacy_level": opts.privacy_level},
        )

    async def poll_publish(self, auth: AccountAuth, handle: dict[str, Any]) -> PostRef | Pending:
        data = await self._status(auth, handle["publish_id"])
        status = data.get("status")
        if status == "PUBLISH_COMPLETE":
            ref = self._post_ref(auth, handle, data)
            if ref is not None:
                return ref
            return Pending(check_after=self.moderation_check_after, handle=handle, state="moderation")
        if status == "FAILED":
            reason = str(data.get("fail_reason") or "unknown")
            raise classify(reason, f"TikTok could not publish {handle['publish_id']}")
        if status in ("PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD"):
            return Pending(check_after=self.status_check_after, handle=handle, state=status.lower())
        raise AdapterError(f"unexpected publish status {status!r} for {handle['publish_id']}")

    async def reconcile(
        self, auth: AccountAuth, draft: PartDraft, *, since: float, handle: dict[str, Any] | None = None
    ) -> PostRef | None:
        """Ask status/fetch about the `publish_id` an earlier attempt got (in `handle`).

        Without one TikTok cannot tell: its API does not list a creator's posts by content.
        A post still processing exists (its id may come later): the ref says `pending`.
        """
        publish_id = (handle or {}).get("publish_id")
        if not publish_id:
            raise Unverifiable("TikTok cannot list posts by content and no publish_id was recorded")
        data = await self._status(auth, publish_id)
        status = data.get("status")
        if status == "FAILED":
            return None
        ref = self._post_ref(auth, handle, data) if status == "PUBLISH_COMPLETE" else None
        return ref or PostRef(
            external_id=publish_id, data={"publish_id": publish_id, "pending": True, "status": status}
        )

    # --- internals ---

    def _post_ref(self, auth: AccountAuth, handle: dict[str, Any], data: dict[str, Any]) -> PostRef | None:
        publish_id = handle["publish_id"]
        ids = data.get("publicaly_available_post_id") or []  # (sic) TikTok's spelling
        if ids:
            post_id = str(ids[0])
            url = POST_URL.format(username=auth.username, id=post_id) if auth.username else None
            return PostRef(external_id=post_id, url=url, data={"publish_id": publish_id})
        if handle.get("privacy_level") == "SELF_ONLY":
            return PostRef(
                external_id=publish_id,
                data={
                    "publish_id": publish_id,
                    "private": True,
                    "note": "TikTok gives no post id for SELF_ONLY posts: external_id is the publish_id",
                },
            )
        return None

    def _post_info(self, draft: PartDraft, opts: TikTokOptions, creator: dict[str, Any]) -> dict[str, Any]:
        # A creator who disabled comments/duets/stitches everywhere cannot enable them per post.
        return {
            "title": draft.text or "",
            "privacy_level": opts.privacy_level,
            "disable_comment": opts.disable_comment or bool(creator.get("comment_disabled")),
            "disable_duet": opts.disable_duet or bool(creator.get("duet_disabled")),
            "disable_stitch": opts.disable_stitch or bool(creator.get("stitch_disabled")),
            "brand_content_toggle": opts.brand_content_toggle,
            "brand_organic_toggle": opts.brand_organic_toggle,
            "is_aigc": opts.is_aigc,
            **(
                {"video_cover_timestamp_ms": opts.video_cover_timestamp_ms}
                if opts.video_cover_timestamp_ms is not None
                else {}
            ),
        }

    async def _publish_video(
        self, auth: AccountAuth, draft: PartDraft, opts: TikTokOptions, creator: dict[str, Any]
    ) -> str:
        media = draft.media[0]
        url = media.data.get("url") or media.platform_media_id
        post_info = self._post_info(draft, opts, creator)
        if opts.source == "PULL_FROM_URL":
            # TikTok starts pulling as soon as it answers: a lost answer may still become a post.
            data = await self._call(
                "POST",
                "/post/publish/video/init/",
                auth.tokens.access_token,
                what="video/init",
                create=True,
                json={"post_info": post_info, "source_info": {"source": "PULL_FROM_URL", "video_url": url}},
            )
            return str(data["publish_id"])
        try:
            async with self.http.stream("GET", url) as source:
                if source.status_code >= 400:
                    raise (TransientError if source.status_code >= 500 else MediaRejected)(
                        f"media download answered {source.status_code}", status=source.status_code
                    )
                size = int(source.headers.get("content-length") or media.data.get("size_bytes") or 0)
                if size <= 0:
                    raise MediaRejected("media has no known size")
                return await self._upload_file(auth, post_info, source, size, media.content_type)
        except httpx.TransportError as exc:
            # The media host failed mid-way: the last chunk was never sent, so nothing can publish.
            raise TransientError(f"media download failed: {type(exc).__name__}") from None

    async def _upload_file(
        self,
        auth: AccountAuth,
        post_info: dict[str, Any],
        source: httpx.Response,
        size: int,
        content_type: str,
    ) -> str:
        chunk = size if size < SINGLE_CHUNK_MAX else CHUNK_SIZE
        count = max(1, size // chunk)
        # Without its bytes an initialised upload never becomes a post, so init is safe to retry.
        data = await self._call(
            "POST",
            "/post/publish/video/init/",
            auth.tokens.access_token,
            what="video/init",
            json={
                "post_info": post_info,
                "source_info": {
                    "source": "FILE_UPLOAD",
                    "video_size": size,
                    "chunk_size": chunk,
                    "total_chunk_count": count,
                },
            },
        )
        publish_id = str(data["publish_id"])
        handle = {"publish_id": publish_id, "privacy_level": post_info["privacy_level"]}
        sent, index = 0, 0
        buffer = bytearray()
        async for piece in source.aiter_bytes():
            buffer.extend(piece)
            while index < count - 1 and len(buffer) >= chunk:
                await self._put_chunk(
                    data["upload_url"],
                    bytes(buffer[:chunk]),
                    sent,
                    size,
                    content_type,
                    handle=handle,
                    last=False,
                )
                del buffer[:chunk]
                sent += chunk
                index += 1
        if sent + len(buffer) != size:
            raise TransientError(f"media ended after {sent + len(buffer)} of {size} bytes")
        await self._put_chunk(
            data["upload_url"], bytes(buffer), sent, size, content_type, handle=handle, last=True
        )
        return publish_id

    async def _publish_photos(
        self, auth: AccountAuth, draft: PartDraft, opts: TikTokOptions, creator: dict[str, Any]
    ) -> str:
        body = {
            "media_type": "PHOTO",
            "post_mode": "DIRECT_POST",
            "post_info": {
                "title": opts.title or "",
                "description": draft.text or "",
                "privacy_level": opts.privacy_level,
                "disable_comment": opts.disable_comment or bool(creator.get("comment_disabled")),
                "auto_add_music": opts.auto_add_music,
                "brand_content_toggle": opts.brand_content_toggle,
                "brand_organic_toggle": opts.brand_organic_toggle,
            },
            "source_info": {
                "source": "PULL_FROM_URL",
                "photo_cover_index": min(opts.photo_cover_index, len(draft.media) - 1),
                "photo_images": [m.data.get("url") or m.platform_media_id for m in draft.media],
            },
        }
        data = await self._call(
            "POST",
            "/post/publish/content/init/",
            auth.tokens.access_token,
            what="content/init",
            create=True,
            json=body,
        )
        return str(data["publish_id"])

    async def _put_chunk(
        self,
        upload_url: str,
        chunk: bytes,
        start: int,
        total: int,
        content_type: str,
        *,
        handle: dict[str, Any],
        last: bool,
    ) -> None:
        headers = {
            "Content-Type": content_type,
            "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{total}",
        }
        try:
            resp = await self.http.put(upload_url, content=chunk, headers=headers)
        except _NOT_SENT as exc:
            raise TransientError(f"upload unreachable: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            if not last:  # an incomplete upload never publishes
                raise TransientError(f"upload chunk lost: {type(exc).__name__}") from None
            raise _unknown(f"last chunk sent, no answer: {type(exc).__name__}", handle) from None
        if resp.status_code in (200, 201, 206):
            return
        if last and resp.status_code >= 500:
            raise _unknown(f"last chunk answered {resp.status_code}", handle, status=resp.status_code)
        check(resp, "upload")

    async def _status(self, auth: AccountAuth, publish_id: str) -> dict[str, Any]:
        return await self._call(
            "POST",
            "/post/publish/status/fetch/",
            auth.tokens.access_token,
            what="status/fetch",
            json={"publish_id": publish_id},
        )

    async def _call(
        self, method: str, path: str, token: str, *, what: str, create: bool = False, **kw: Any
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if "json" in kw:
            headers["Content-Type"] = "application/json; charset=UTF-8"
        try:
            resp = await self.http.request(method, self.endpoints.api_base + path, headers=headers, **kw)
        except _NOT_SENT as exc:
            raise TransientError(f"{what}: TikTok unreachable: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            if create:
                raise OutcomeUnknown(f"{what}: no answer after sending: {type(exc).__name__}") from None
            raise TransientError(f"{what}: no answer: {type(exc).__name__}") from None
        return check(resp, what)
