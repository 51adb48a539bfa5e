"""X (Twitter) API v2: OAuth 2.0 with PKCE, posts, media upload v2.

X has no idempotency key and no deterministic ids, so reconcile reads the
author's recent posts and matches text and reply target.
"""

from __future__ import annotations

import html
import re
import time
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

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
    DuplicateContent,
    MediaRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    Unverifiable,
)
from adapters.oauth import OAuth2Mixin

PROVIDER = ProviderEntry(
    platform="twitter",
    display_name="X",
    auth_kind="oauth2",
    api_base="https://api.x.com",
    authorize_url="https://x.com/i/oauth2/authorize",
    token_url="https://api.x.com/2/oauth2/token",
    revoke_url="https://api.x.com/2/oauth2/revoke",
    # Public web links to posts; not an API host.
    extra_urls={"web": "https://x.com"},
    scopes=("tweet.read", "tweet.write", "users.read", "offline.access", "media.write"),
    pkce="S256",
    token_auth_method="client_secret_basic",
    token_body="form",
    refresh_rotates=True,
)

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
VIDEO_TYPES = ("video/mp4",)
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_GIF_BYTES = 15 * 1024 * 1024
MAX_VIDEO_BYTES = 512 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024
_LINK = re.compile(r"(?i)\bhttps?://\S+")
# Pages of the author's timeline reconcile reads before giving up (100 posts each).
RECONCILE_PAGES = 5


class XPoll(BaseModel):
    model_config = ConfigDict(extra="forbid")

    options: list[Annotated[str, Field(min_length=1, max_length=25)]] = Field(min_length=2, max_length=4)
    duration_minutes: int = Field(ge=5, le=10080)


class XOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll: XPoll | None = None
    reply_settings: Literal["following", "mentionedUsers", "subscribers", "verified"] | None = None


CAPABILITIES = Capabilities(
    caption_limit=280,
    caption_unit="weighted",
    media=MediaLimits(
        max_items=4,
        image_types=IMAGE_TYPES,
        video_types=VIDEO_TYPES,
        max_image_bytes=MAX_IMAGE_BYTES,
        max_video_bytes=MAX_VIDEO_BYTES,
        max_video_seconds=140,
    ),
    threads=True,
    first_comment=True,
    options_model=XOptions,
    notes=(
        "Up to 4 images, or 1 GIF, or 1 video per post; a poll cannot carry media.",
        "Identical text posted again by the same account is refused as duplicate content.",
    ),
)


class TwitterAdapter(OAuth2Mixin, PlatformAdapter):
    platform = "twitter"
    provider = PROVIDER
    capabilities = CAPABILITIES

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        data = await self._call(
            "GET",
            "/2/users/me",
            tokens,
            params={"user.fields": "username,name,profile_image_url,verified"},
        )
        user = data.get("data") or {}
        return AccountProfile(
            external_id=str(user["id"]),
            username=user.get("username"),
            display_name=user.get("name"),
            avatar_url=user.get("profile_image_url"),
            extra={"verified": bool(user.get("verified"))},
        )

    # --- validation ---

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues = super().validate(draft, field_prefix=field_prefix, part_count=part_count)
        p = f"{field_prefix}." if field_prefix else ""
        types = [m.content_type for m in draft.media]
        if "image/gif" in types and len(types) > 1:
            issues.append(Issue(f"{p}media", "gif_not_alone", "A GIF must be the only media of a post"))
        if (draft.options or {}).get("poll") is not None and draft.media:
            issues.append(Issue(f"{p}platform_options.poll", "poll_with_media", "A poll cannot carry media"))
        return issues

    # --- media ---

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef | Pending:
        data = await self._download(media)
        kind = media.content_type
        if kind not in IMAGE_TYPES + VIDEO_TYPES:
            raise MediaRejected(f"X does not accept {kind}")
        limit = (
            MAX_VIDEO_BYTES
            if kind in VIDEO_TYPES
            else MAX_GIF_BYTES
            if kind == "image/gif"
            else MAX_IMAGE_BYTES
        )
        if len(data) > limit:
            raise MediaRejected(f"{len(data)} bytes is over X's {limit} byte limit for {kind}")
        if kind in IMAGE_TYPES and kind != "image/gif":
            answer = await self._call(
                "POST",
                "/2/media/upload",
                auth.tokens,
                files={"media": (media.filename or "media", data, kind)},
                data={"media_category": "tweet_image", "media_type": kind},
            )
            return self._media_result(answer.get("data") or {}, kind)
        return await self._chunked(auth, data, kind)

    async def _chunked(self, auth: AccountAuth, data: bytes, kind: str) -> MediaRef | Pending:
        category = "tweet_gif" if kind == "image/gif" else "tweet_video"
        init = await self._call(
            "POST",
            "/2/media/upload/initialize",
            auth.tokens,
            json={"media_type": kind, "total_bytes": len(data), "media_category": category},
        )
        media_id = str((init.get("data") or {})["id"])
        for index, start in enumerate(range(0, len(data), CHUNK_BYTES)):
            await self._call(
                "POST",
                f"/2/media/upload/{media_id}/append",
                auth.tokens,
                files={"media": ("chunk", data[start : start + CHUNK_BYTES], "application/octet-stream")},
                data={"segment_index": str(index)},
            )
        final = await self._call("POST", f"/2/media/upload/{media_id}/finalize", auth.tokens)
        return self._media_result(final.get("data") or {}, kind)

    async def poll_media(self, auth: AccountAuth, handle: dict[str, Any]) -> MediaRef | Pending:
        answer = await self._call(
            "GET",
            "/2/media/upload",
            auth.tokens,
            params={"command": "STATUS", "media_id": handle["media_id"]},
        )
        return self._media_result(answer.get("data") or {}, handle["content_type"])

    @staticmethod
    def _media_result(data: dict[str, Any], kind: str) -> MediaRef | Pending:
        media_id = str(data["id"])
        info = data.get("processing_info")
        if not info or info.get("state") == "succeeded":
            return MediaRef(
                platform_media_id=media_id, content_type=kind, data={"media_key": data.get("media_key")}
            )
        if info.get("state") == "failed":
            error = info.get("error") or {}
            raise MediaRejected(f"X could not process the media: {error.get('message') or error.get('name')}")
        return Pending(
            check_after=float(info.get("check_after_secs") or 1),
            handle={"media_id": media_id, "content_type": kind},
            state=str(info.get("state") or "processing"),
        )

    # --- posts ---

    async def publish(self, auth: AccountAuth, prepared: Prepared) -> PostRef:
        draft = prepared.draft
        body: dict[str, Any] = {"text": draft.text} if draft.text else {}
        if draft.media:
            body["media"] = {"media_ids": [m.platform_media_id for m in draft.media]}
        if draft.reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": draft.reply_to.external_id}
        options = XOptions.model_validate(draft.options or {})
        if options.poll:
            body["poll"] = options.poll.model_dump()
        if options.reply_settings:
            body["reply_settings"] = options.reply_settings
        answer = await self._call("POST", "/2/tweets", auth.tokens, json=body, create=True)
        post = answer.get("data") or {}
        return self._post_ref(auth, str(post["id"]), post.get("text"))

    async def comment(self, auth: AccountAuth, parent: PostRef, text: str, *, tag: str) -> PostRef:
        """A first comment on X is the author's own reply to the post."""
        draft = PartDraft(text=text, reply_to=parent, tag=tag, is_comment=True)
        return await self.publish(auth, Prepared(draft=draft))

    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        """Match the author's posts since `since` by text and reply target."""
        want_text = _comparable(draft.text)
        want_parent = draft.reply_to.external_id if draft.reply_to else None
        # X stamps posts with its own clock: look a little earlier than our attempt.
        start = datetime.fromtimestamp(since - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params: dict[str, Any] = {
            "max_results": 100,
            "start_time": start,
            "tweet.fields": "created_at,referenced_tweets,conversation_id",
        }
        matches: list[dict[str, Any]] = []
        for _ in range(RECONCILE_PAGES):
            answer = await self._call(
                "GET", f"/2/users/{auth.external_id}/tweets", auth.tokens, params=params
            )
            for post in answer.get("data") or []:
                replied = [
                    r["id"] for r in post.get("referenced_tweets") or [] if r.get("type") == "replied_to"
                ]
                if (
                    _comparable(post.get("text", "")) == want_text
                    and (replied[:1] or [None])[0] == want_parent
                ):
                    matches.append(post)
            next_token = (answer.get("meta") or {}).get("next_token")
            if not next_token:
                break
            params["pagination_token"] = next_token
        else:  # every page read and still more to go: an older match may hide beyond them
            if not matches:
                raise Unverifiable("Too many recent X posts to be sure the earlier attempt did not land")
        if not matches:
            return None
        # The oldest match is the earlier attempt; any later copy was posted by someone else's hand.
        first = min(matches, key=lambda p: (p.get("created_at") or "", int(p["id"])))
        return self._post_ref(auth, str(first["id"]), first.get("text"))

    def _post_ref(self, auth: AccountAuth, post_id: str, text: str | None) -> PostRef:
        who = auth.username or "i/web"
        return PostRef(
            external_id=post_id,
            url=f"{self.endpoints.url('web')}/{who}/status/{post_id}",
            data={"id": post_id, "text": text},
        )

    # --- mechanics ---

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

    async def _call(
        self, method: str, path: str, tokens: TokenSet, *, create: bool = False, **kw: Any
    ) -> dict[str, Any]:
        url = self.endpoints.api_base.rstrip("/") + path
        headers = {"Authorization": f"Bearer {tokens.access_token}"}
        try:
            resp = await self.http.request(method, url, headers=headers, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(f"X unreachable: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            if create:
                raise OutcomeUnknown(
                    f"connection lost after the post was sent: {type(exc).__name__}"
                ) from None
            raise TransientError(f"X request failed: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            _raise_for(resp, f"{method} {path.split('?')[0]}")
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            raise TransientError(f"X answered {resp.status_code} without JSON") from None
        return data if isinstance(data, dict) else {}


def _comparable(text: str | None) -> str:
    """Text as X gives it back: HTML entities escaped and links rewritten to t.co, so drop links."""
    plain = unicodedata.normalize("NFC", html.unescape(text or ""))
    return " ".join(_LINK.sub(" ", plain).split())


def _raise_for(resp: httpx.Response, what: str) -> None:
    """Map X's problem-details answers onto Herald's error types."""
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    kind = str(body.get("type") or "").rsplit("/", 1)[-1]
    details = [str(body.get("detail") or body.get("title") or "")]
    details += [
        str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, dict) and e.get("message")
    ]
    detail = "; ".join(d for d in details if d)
    message = f"X {what}: {status}" + (f" {kind}" if kind and kind != "about:blank" else "") + f": {detail}"
    if status == 429:
        raise RateLimited(message, retry_after=_retry_after(resp), status=status)
    if status >= 500:
        raise TransientError(message, status=status)
    if status == 401:
        # X answers 401 for expired and revoked tokens alike: refresh once; a refused refresh means revoked.
        raise AuthExpired(message, status=status)
    if "duplicate content" in detail.lower():
        raise DuplicateContent(message, status=status)
    if kind in ("unsupported-authentication", "oauth1-permissions") or "scope" in detail.lower():
        raise AuthRevoked(message, code="reauth_required", status=status)
    if status == 413 or "media" in detail.lower() or "/media/" in what:
        raise MediaRejected(message, status=status)
    if status in (400, 403, 422):
        raise ContentRejected(message, status=status)
    raise AdapterError(message, status=status)


def _retry_after(resp: httpx.Response) -> float | None:
    reset = resp.headers.get("x-rate-limit-reset")
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
