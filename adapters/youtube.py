"""YouTube (Data API v3): one video per post, uploaded through a resumable session.

`publish` does the whole upload in one logical call: it opens the resumable
session, then streams the media from its URL into the session in chunks of
256 KiB multiples. The video then processes on YouTube's side, so `publish`
returns Pending and `poll_publish` watches `videos.list` until the video is
processed or refused. The caption is the video description; the title is the
required `title` option. Google answers errors in its own envelope
`{"error": {"code", "message", "errors": [{"domain", "reason"}], "status"}}`
and the reason, not the HTTP status, says what went wrong.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    DuplicateContent,
    MediaRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from adapters.listing import Page, find_since
from adapters.oauth import OAuth2Mixin

PROVIDER = ProviderEntry(
    platform="youtube",
    display_name="YouTube",
    auth_kind="oauth2",
    api_base="https://www.googleapis.com/youtube/v3",
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    revoke_url="https://oauth2.googleapis.com/revoke",
    extra_urls={"upload": "https://www.googleapis.com/upload/youtube/v3"},
    scopes=(
        "https://www.googleapis.com/auth/youtube.upload",
        "https://www.googleapis.com/auth/youtube.force-ssl",
        "https://www.googleapis.com/auth/youtube.readonly",
    ),
    scope_separator=" ",
    pkce="S256",
    token_auth_method="client_secret_post",
    token_body="form",
    # Google issues a refresh token only for offline access, and again only when consent is re-shown.
    authorize_params={"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
    refresh_rotates=False,
)

VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm", "video/x-msvideo", "video/mpeg", "video/3gpp")
TITLE_MAX = 100
TAGS_MAX_CHARS = 500
CHUNK_UNIT = 256 * 1024
WATCH_URL = "https://www.youtube.com/watch?v={id}"


class YouTubeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    privacy_status: Literal["public", "unlisted", "private"] = "public"
    tags: list[str] = Field(default_factory=list)
    category_id: str = Field(default="22", pattern=r"^\d{1,3}$")  # 22 = People & Blogs
    made_for_kids: bool = False

    @field_validator("title")
    @classmethod
    def _no_angle_brackets(cls, v: str | None) -> str | None:
        if v is not None and ("<" in v or ">" in v):
            raise ValueError("YouTube titles cannot contain < or >")
        return v

    @field_validator("tags")
    @classmethod
    def _tags_budget(cls, v: list[str]) -> list[str]:
        # YouTube counts a tag with a space as if quoted (+2) and a comma between tags.
        total = sum(len(t) + (2 if " " in t else 0) for t in v) + max(0, len(v) - 1)
        if total > TAGS_MAX_CHARS:
            raise ValueError(f"tags take {total} characters, max is {TAGS_MAX_CHARS}")
        return v


CAPABILITIES = Capabilities(
    caption_limit=5000,
    caption_unit="utf8_bytes",
    media=MediaLimits(
        max_items=1,
        video_types=VIDEO_TYPES,
        max_video_bytes=256 * 1024**3,
        max_videos=1,
        required=True,
    ),
    threads=False,
    first_comment=True,
    options_model=YouTubeOptions,
    notes=(
        "The caption is the video description (5,000 bytes); platform_options.title is required.",
        "Projects that have not passed YouTube's API audit can only upload private videos.",
    ),
)

# Errors where the request never reached YouTube, so nothing can have been created.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.ProxyError,
)
_CONTENT_REASONS = {
    "invalidTitle",
    "invalidDescription",
    "invalidTags",
    "invalidCategoryId",
    "invalidPublishAt",
    "invalidVideoMetadata",
    "invalidRecordingDetails",
    "badRequest",
    "invalidValue",
    "commentsDisabled",
    "invalidCommentMetadata",
    "commentTextTooLong",
    "commentTextRequired",
    "videoNotFound",
    "processingFailure",
    "forbidden",
}
_MEDIA_REASONS = {"badContent", "mediaBodyRequired", "invalidFile"}
_SCOPE_REASONS = {"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "youtubeSignupRequired"}
_CLOCK_SKEW = 30.0  # publishedAt has one-second resolution and clocks differ
# search.list draws on its own small allowance (100 calls a day per project by default), so reconcile reads
# its largest pages and only a few: more uploads than a channel makes between an attempt and its retry.
RECONCILE_PAGE = 50
RECONCILE_PAGES = 3
COMMENT_PAGE = 100  # commentThreads.list's largest page; each costs one unit of the ordinary quota


def seconds_until_pacific_midnight(now: dt.datetime | None = None) -> float:
    """YouTube's daily quota resets at midnight Pacific time."""
    try:
        tz: dt.tzinfo = ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:  # no tz database: PST is close enough for a retry delay
        tz = dt.timezone(dt.timedelta(hours=-8))
    now = (now or dt.datetime.now(dt.UTC)).astimezone(tz)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return max(1.0, (midnight - now).total_seconds())


def _google_error(resp: httpx.Response) -> tuple[str, str]:
    """(reason, message) from Google's error envelope; tolerant of non-JSON bodies."""
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:200]
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "", str(body)[:200]
    errors = err.get("errors") or [{}]
    return str(errors[0].get("reason") or err.get("status") or ""), str(err.get("message") or "")


def raise_for(resp: httpx.Response, what: str) -> None:
    """Map a YouTube error response onto the typed adapter errors."""
    if resp.status_code < 400:
        return
    status = resp.status_code
    reason, message = _google_error(resp)
    text = f"{what}: {status} {reason or 'error'}: {message}"
    if reason == "youtubeSignupRequired":
        raise AdapterError(text, code="no_channel", status=status)
    if reason == "quotaExceeded" or reason == "uploadLimitExceeded":
        raise RateLimited(text, retry_after=seconds_until_pacific_midnight(), status=status)
    if status == 429 or reason in ("rateLimitExceeded", "userRateLimitExceeded"):
        raise RateLimited(text, retry_after=_retry_after(resp), status=status)
    if status >= 500:
        raise TransientError(text, status=status)
    if status == 401:
        raise AuthExpired(text, status=status)
    if reason in _SCOPE_REASONS:
        raise AuthRevoked(text, code="reauth_required", status=status)
    if reason in _MEDIA_REASONS:
        raise MediaRejected(text, status=status)
    if reason in _CONTENT_REASONS or status in (400, 403, 404):
        raise ContentRejected(text, status=status)
    raise AdapterError(text, status=status)


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _published(snippet: dict[str, Any] | None) -> float | None:
    """A snippet's publishedAt, or None when it is missing or unreadable (the item's age is then unknown)."""
    try:
        return dt.datetime.fromisoformat((snippet or {})["publishedAt"].replace("Z", "+00:00")).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _top_comment(thread: dict[str, Any]) -> dict[str, Any]:
    return ((thread.get("snippet") or {}).get("topLevelComment") or {}).get("snippet") or {}


def _comment_text(comment: dict[str, Any]) -> str | None:
    return comment.get("textOriginal", comment.get("textDisplay"))


class YouTubeAdapter(OAuth2Mixin, PlatformAdapter):
    platform = "youtube"
    provider = PROVIDER
    capabilities = CAPABILITIES

    # Bytes per PUT into the upload session; YouTube needs a multiple of 256 KiB except for the last.
    chunk_size = 32 * CHUNK_UNIT
    processing_check_after = 5.0

    # --- OAuth departures ---

    async def revoke(self, tokens: TokenSet) -> None:
        """Google revokes with `?token=`; revoking the refresh token ends the whole grant."""
        token = tokens.refresh_token or tokens.access_token
        try:
            resp = await self.http.post(
                self.endpoints.revoke_url,
                params={"token": token},
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except httpx.TransportError as exc:
            raise TransientError(f"revoke failed: {type(exc).__name__}") from None
        # An already revoked or expired token answers invalid_token: the grant is gone either way.
        if resp.status_code == 400 and "invalid_token" in resp.text:
            return
        self.parse_token_response(resp, expect_json=False)

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        resp = await self._call(
            "GET",
            f"{self.endpoints.api_base}/channels",
            tokens.access_token,
            what="channels.list",
            params={"part": "snippet", "mine": "true"},
        )
        items = resp.json().get("items") or []
        if not items:
            raise AdapterError("This Google account has no YouTube channel", code="no_channel")
        channel = items[0]
        snippet = channel.get("snippet") or {}
        thumbs = snippet.get("thumbnails") or {}
        avatar = (thumbs.get("default") or thumbs.get("medium") or {}).get("url")
        return AccountProfile(
            external_id=channel["id"],
            username=snippet.get("customUrl"),
            display_name=snippet.get("title"),
            avatar_url=avatar,
        )

    # --- publishing ---

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues = super().validate(draft, field_prefix=field_prefix, part_count=part_count)
        p = f"{field_prefix}." if field_prefix else ""
        if part_count > 1 and not draft.is_comment:
            issues.append(Issue(f"{p}thread_position", "threads_unsupported", "YouTube has no threads"))
        if not draft.is_comment and not self._title(draft):
            issues.append(
                Issue(
                    f"{p}platform_options.title",
                    "option_required",
                    "YouTube needs a video title (platform_options.title)",
                )
            )
        if "<" in (draft.text or "") or ">" in (draft.text or ""):
            issues.append(
                Issue(f"{p}caption", "invalid_character", "YouTube descriptions cannot contain < or >")
            )
        return issues

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef:
        """Nothing to do yet: the bytes go into the upload session that `publish` opens."""
        if not self.capabilities.media.accepts(media.content_type):
            raise MediaRejected(f"YouTube uploads videos only, not {media.content_type}")
        return MediaRef(
            platform_media_id=media.url,
            content_type=media.content_type,
            data={"url": media.url, "size_bytes": media.size_bytes},
        )

    async def publish(self, auth: AccountAuth, prepared: Prepared) -> Pending:
        draft = prepared.draft
        if len(draft.media) != 1:
            raise ContentRejected("A YouTube post is exactly one video")
        media = draft.media[0]
        opts = YouTubeOptions.model_validate(draft.options or {})
        resource = {
            "snippet": {
                "title": self._title(draft),
                "description": draft.text or "",
                "tags": opts.tags,
                "categoryId": opts.category_id,
            },
            "status": {"privacyStatus": opts.privacy_status, "selfDeclaredMadeForKids": opts.made_for_kids},
        }
        url = media.data.get("url") or media.platform_media_id
        try:
            async with self.http.stream("GET", url) as source:
                if source.status_code >= 400:
                    raise (TransientError if source.status_code >= 500 else MediaRejected)(
                        f"media download answered {source.status_code}", status=source.status_code
                    )
                total = int(source.headers.get("content-length") or media.data.get("size_bytes") or 0)
                if total <= 0:
                    raise MediaRejected("media has no known size")
                session = await self._start_session(auth, resource, total, media.content_type)
                video = await self._upload(session, source, total)
        except httpx.TransportError as exc:
            # Only the media host failed (the upload itself classifies its own errors).
            raise TransientError(f"media download failed: {type(exc).__name__}") from None
        return Pending(
            check_after=self.processing_check_after,
            handle={"video_id": video["id"], "title": resource["snippet"]["title"]},
            state="processing",
        )

    async def poll_publish(self, auth: AccountAuth, handle: dict[str, Any]) -> PostRef | Pending:
        video_id = handle["video_id"]
        resp = await self._call(
            "GET",
            f"{self.endpoints.api_base}/videos",
            auth.tokens.access_token,
            what="videos.list",
            params={"part": "status,processingDetails", "id": video_id},
        )
        items = resp.json().get("items") or []
        if not items:
            raise MediaRejected(f"video {video_id} no longer exists")
        status = items[0].get("status") or {}
        upload_status = status.get("uploadStatus")
        if upload_status == "processed":
            return PostRef(
                external_id=video_id,
                url=WATCH_URL.format(id=video_id),
                data={"privacy_status": status.get("privacyStatus")},
            )
        if upload_status == "rejected":
            reason = status.get("rejectionReason") or "rejected"
            cls = DuplicateContent if reason == "duplicate" else MediaRejected
            raise cls(f"YouTube rejected video {video_id}: {reason}")
        if upload_status in ("failed", "deleted"):
            reason = status.get("failureReason") or upload_status
            raise MediaRejected(f"YouTube could not process video {video_id}: {reason}")
        details = items[0].get("processingDetails") or {}
        left_ms = (details.get("processingProgress") or {}).get("timeLeftMs")
        check_after = min(60.0, max(1.0, float(left_ms) / 1000)) if left_ms else self.processing_check_after
        return Pending(
            check_after=check_after, handle=handle, state=details.get("processingStatus") or "processing"
        )

    async def comment(self, auth: AccountAuth, parent: PostRef, text: str, *, tag: str) -> PostRef:
        body = {
            "snippet": {"videoId": parent.external_id, "topLevelComment": {"snippet": {"textOriginal": text}}}
        }
        resp = await self._call(
            "POST",
            f"{self.endpoints.api_base}/commentThreads",
            auth.tokens.access_token,
            what="commentThreads.insert",
            create=True,
            params={"part": "snippet"},
            json=body,
        )
        thread = resp.json()
        return PostRef(
            external_id=thread["id"],
            url=WATCH_URL.format(id=parent.external_id) + f"&lc={thread['id']}",
            data={"video_id": parent.external_id},
        )

    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        """Search the channel's own uploads for this title at or after `since`."""
        if draft.is_comment:
            return await self._reconcile_comment(auth, draft, since)
        title = self._title(draft)
        found = await find_since(
            self._pages(
                auth,
                "search",
                "search.list",
                {"part": "snippet", "forMine": "true", "type": "video", "order": "date"},
                RECONCILE_PAGE,
            ),
            match=lambda item: (item.get("snippet") or {}).get("title") == title,
            created=lambda item: _published(item.get("snippet")),
            since=since - _CLOCK_SKEW,
            newest_first=True,  # order=date is documented as reverse chronological
            what="the channel's YouTube uploads",
            max_pages=RECONCILE_PAGES,
        )
        if found is None:
            return None
        video_id = found["id"]["videoId"]
        return PostRef(external_id=video_id, url=WATCH_URL.format(id=video_id), data={"reconciled": True})

    # --- internals ---

    @staticmethod
    def _title(draft: PartDraft) -> str | None:
        return (draft.options or {}).get("title") or draft.title

    async def _reconcile_comment(self, auth: AccountAuth, draft: PartDraft, since: float) -> PostRef | None:
        if draft.reply_to is None:
            return None
        video_id = draft.reply_to.external_id
        found = await find_since(
            self._pages(
                auth,
                "commentThreads",
                "commentThreads.list",
                {"part": "snippet", "videoId": video_id, "order": "time", "textFormat": "plainText"},
                COMMENT_PAGE,
            ),
            match=lambda thread: _comment_text(_top_comment(thread)) == draft.text,
            created=lambda thread: _published(_top_comment(thread)),
            since=since - _CLOCK_SKEW,
            # YouTube documents order=time without saying which way it runs: read to the end, not to `since`.
            newest_first=False,
            what="the video's YouTube comments",
        )
        if found is None:
            return None
        return PostRef(
            external_id=found["id"],
            url=WATCH_URL.format(id=video_id) + f"&lc={found['id']}",
            data={"video_id": video_id, "reconciled": True},
        )

    def _pages(self, auth: AccountAuth, path: str, what: str, params: dict[str, str], size: int):
        """A YouTube listing read `size` items at a time (pageToken/nextPageToken paging)."""

        async def fetch(token: str | None) -> Page:
            page = {**params, "maxResults": str(size)} | ({"pageToken": token} if token else {})
            resp = await self._call(
                "GET", f"{self.endpoints.api_base}/{path}", auth.tokens.access_token, what=what, params=page
            )
            body = resp.json()
            return body.get("items") or [], body.get("nextPageToken") or None

        return fetch

    async def _start_session(
        self, auth: AccountAuth, resource: dict[str, Any], total: int, content_type: str
    ) -> str:
        """Open the resumable session. Nothing exists on YouTube until its last byte arrives."""
        resp = await self._call(
            "POST",
            f"{self.endpoints.url('upload')}/videos",
            auth.tokens.access_token,
            what="videos.insert",
            params={"uploadType": "resumable", "part": "snippet,status"},
            json=resource,
            headers={"X-Upload-Content-Length": str(total), "X-Upload-Content-Type": content_type},
        )
        location = resp.headers.get("location")
        if not location:
            raise TransientError("videos.insert opened no upload session (no Location header)")
        return location

    async def _upload(self, session: str, source: httpx.Response, total: int) -> dict[str, Any]:
        """PUT the bytes chunk by chunk. Any unanswered PUT may have completed the video."""
        size = max(CHUNK_UNIT, self.chunk_size // CHUNK_UNIT * CHUNK_UNIT)
        sent = 0
        buffer = bytearray()
        async for piece in source.aiter_bytes():
            buffer.extend(piece)
            while len(buffer) >= size and sent + size < total:
                await self._put_chunk(session, bytes(buffer[:size]), sent, total)
                del buffer[:size]
                sent += size
        if sent + len(buffer) != total:
            raise OutcomeUnknown(
                f"media ended after {sent + len(buffer)} of {total} bytes; upload incomplete"
            )
        resp = await self._put_chunk(session, bytes(buffer), sent, total)
        if resp.status_code not in (200, 201):
            raise OutcomeUnknown(f"upload session answered {resp.status_code} to the last chunk")
        return resp.json()

    async def _put_chunk(self, session: str, chunk: bytes, start: int, total: int) -> httpx.Response:
        headers = {"Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{total}"}
        try:
            resp = await self.http.put(session, content=chunk, headers=headers)
        except httpx.TransportError as exc:
            raise OutcomeUnknown(
                f"upload interrupted after the session was created: {type(exc).__name__}"
            ) from None
        if resp.status_code == 308:
            return resp
        if resp.status_code >= 500:
            raise OutcomeUnknown(
                f"upload session answered {resp.status_code}; the video may exist", status=resp.status_code
            )
        raise_for(resp, "videos.insert upload")
        return resp

    async def _call(
        self, method: str, url: str, token: str, *, what: str, create: bool = False, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **kw.pop("headers", {})}
        try:
            resp = await self.http.request(method, url, headers=headers, **kw)
        except _NOT_SENT as exc:
            raise TransientError(f"{what}: YouTube unreachable: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            if create:
                raise OutcomeUnknown(f"{what}: no answer after sending: {type(exc).__name__}") from None
            raise TransientError(f"{what}: no answer: {type(exc).__name__}") from None
        raise_for(resp, what)
        return resp
