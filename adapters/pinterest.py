"""Pinterest API v5: Pins on a board, from image URLs Pinterest pulls or an uploaded video.

OAuth uses HTTP Basic client authentication and comma-separated scopes; every refresh
returns a new 60-day refresh token, treated as rotating. There is no revoke endpoint.
A Pin needs a board (`platform_options.board_id`) and media; the caption is its description.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
)
from adapters.listing import Page, find_since
from adapters.oauth import OAuth2Mixin

MEDIA_CHECK_AFTER = 0.5
PAGE_SIZE = 250  # the largest page boards/{id}/pins serves

PROVIDER = ProviderEntry(
    platform="pinterest",
    display_name="Pinterest",
    auth_kind="oauth2",
    api_base="https://api.pinterest.com/v5",
    authorize_url="https://www.pinterest.com/oauth/",
    token_url="https://api.pinterest.com/v5/oauth/token",
    scopes=("boards:read", "boards:write", "pins:read", "pins:write", "user_accounts:read"),
    scope_separator=",",
    pkce=None,
    token_auth_method="client_secret_basic",
    token_body="form",
    refresh_rotates=True,
    has_refresh_token=True,
)


class PinterestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    board_id: str = Field(pattern=r"^\d+$", description="The board the Pin is saved to (required)")
    board_section_id: str | None = Field(default=None, pattern=r"^\d+$")
    title: str | None = Field(default=None, max_length=100)
    link: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    alt_text: str | None = Field(default=None, max_length=500)
    # Video Pins need a cover: an image URL, or a key frame time (the first frame when neither is set).
    cover_image_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    cover_image_key_frame_time: float | None = Field(default=None, ge=0)


CAPABILITIES = Capabilities(
    caption_limit=500,
    caption_unit="characters",
    media=MediaLimits(
        max_items=5,
        image_types=("image/jpeg", "image/png"),
        video_types=("video/mp4", "video/quicktime"),
        max_image_bytes=20 * 1024 * 1024,
        max_video_bytes=2 * 1024 * 1024 * 1024,
        max_video_seconds=15 * 60,
        max_videos=1,
        allow_mixed=False,
        required=True,
    ),
    threads=False,
    first_comment=False,
    options_model=PinterestOptions,
    notes=(
        "platform_options.board_id is required; 2-5 images become a carousel Pin.",
        "The caption is the Pin description; title, link and alt_text are options.",
    ),
)

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# 400 messages about the media itself rather than the request (wording unconfirmed).
_MEDIA_PHRASES = ("invalid image", "not a valid image", "media upload", "is not ready")


def pin_url(pin_id: str) -> str:
    return f"https://www.pinterest.com/pin/{pin_id}/"


class PinterestAdapter(OAuth2Mixin, PlatformAdapter):
    platform = "pinterest"
    provider = PROVIDER
    capabilities = CAPABILITIES

    # --- account and boards ---

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        data = (await self._send("GET", "/user_account", tokens.access_token)).json()
        return AccountProfile(
            external_id=str(data.get("id") or data["username"]),
            username=data.get("username"),
            display_name=data.get("business_name") or data.get("username"),
            avatar_url=data.get("profile_image"),
            extra={"account_type": data.get("account_type")},
        )

    async def list_boards(self, auth: AccountAuth, *, bookmark: str | None = None,
                          page_size: int = 100) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the account's boards, for the board picker; returns (boards, next bookmark)."""
        params: dict[str, Any] = {"page_size": page_size}
        if bookmark:
            params["bookmark"] = bookmark
        data = (await self._send("GET", "/boards", auth.tokens.access_token, params=params)).json()
        return data.get("items", []), data.get("bookmark")

    async def create_board(self, auth: AccountAuth, name: str, *, description: str | None = None,
                           privacy: str = "PUBLIC") -> dict[str, Any]:
        body = {"name": name, "privacy": privacy} | ({"description": description} if description else {})
        return (await self._send("POST", "/boards", auth.tokens.access_token, json=body, create=True)).json()

    # --- publishing ---

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues = super().validate(draft, field_prefix=field_prefix, part_count=part_count)
        board_field = f"{field_prefix}.platform_options.board_id" if field_prefix else "platform_options.board_id"
        return [
            Issue(i.field, "missing_option", "Pinterest needs the board to save the Pin to")
            if i.field == board_field and "board_id" not in (draft.options or {}) else i
            for i in issues
        ]

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef | Pending:
        if not media.content_type.startswith("video/"):
            # Pinterest pulls images itself from the URL when the Pin is created.
            return MediaRef(platform_media_id=media.url, content_type=media.content_type,
                            data={"url": media.url, "alt_text": media.alt_text})
        token = auth.tokens.access_token
        reg = (await self._send("POST", "/media", token, json={"media_type": "video"})).json()
        payload = await self._fetch_media(media)
        fields = {k: str(v) for k, v in (reg.get("upload_parameters") or {}).items()}
        try:
            resp = await self.http.post(
                reg["upload_url"], data=fields,
                files={"file": (media.filename or "video.mp4", payload, media.content_type)},
            )
        except httpx.TransportError as exc:
            raise TransientError(f"Pinterest media upload failed: {type(exc).__name__}") from None
        if resp.status_code >= 500:
            raise TransientError(f"Pinterest media upload answered {resp.status_code}", status=resp.status_code)
        if resp.status_code >= 300:
            raise MediaRejected(f"Pinterest media upload refused ({resp.status_code})", status=resp.status_code)
        handle = {"media_id": str(reg["media_id"]), "content_type": media.content_type}
        return Pending(check_after=MEDIA_CHECK_AFTER, handle=handle)

    async def poll_media(self, auth: AccountAuth, handle: dict[str, Any]) -> MediaRef | Pending:
        data = (await self._send("GET", f"/media/{handle['media_id']}", auth.tokens.access_token)).json()
        status = data.get("status")
        if status == "succeeded":
            return MediaRef(platform_media_id=handle["media_id"], content_type=handle["content_type"],
                            data={"media_id": handle["media_id"]})
        if status == "failed":
            raise MediaRejected(f"Pinterest could not process video {handle['media_id']}")
        return Pending(check_after=MEDIA_CHECK_AFTER, handle=handle, state=str(status or "processing"))

    async def publish(self, auth: AccountAuth, prepared: Prepared) -> PostRef:
        draft = prepared.draft
        options = PinterestOptions.model_validate(draft.options or {})
        body: dict[str, Any] = {"board_id": options.board_id, "media_source": _media_source(draft.media, options)}
        if draft.text:
            body["description"] = draft.text
        alt_text = options.alt_text or next((m.data.get("alt_text") for m in draft.media
                                             if m.data.get("alt_text")), None)
        extras = {"board_section_id": options.board_section_id, "title": options.title or draft.title,
                  "link": options.link, "alt_text": alt_text}
        body |= {k: v for k, v in extras.items() if v}
        resp = await self._send("POST", "/pins", auth.tokens.access_token, json=body, create=True,
                                board_id=options.board_id)
        pin = resp.json()
        pin_id = str(pin["id"])
        return PostRef(external_id=pin_id, url=pin_url(pin_id), data={"board_id": options.board_id})

    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        options = PinterestOptions.model_validate(draft.options or {})
        title = options.title or draft.title
        token = auth.tokens.access_token

        async def fetch(bookmark: str | None) -> Page:
            params: dict[str, Any] = {"page_size": PAGE_SIZE} | ({"bookmark": bookmark} if bookmark else {})
            data = (await self._send("GET", f"/boards/{options.board_id}/pins", token, params=params,
                                     board_id=options.board_id)).json()
            return data.get("items", []), data.get("bookmark") or None

        found = await find_since(
            fetch,
            match=lambda pin: (pin.get("description") or "") == (draft.text or "")
            and (pin.get("link") or None) == options.link and (pin.get("title") or None) == title,
            created=_created,
            since=since - 1,  # created_at is whole seconds
            # Pinterest's reference states no order for a board's Pins: read to the end, not only to `since`.
            newest_first=False,
            what=f"Pinterest board {options.board_id}",
        )
        if found is None:
            return None
        return PostRef(external_id=str(found["id"]), url=pin_url(str(found["id"])),
                       data={"board_id": options.board_id})

    # --- HTTP ---

    async def _send(self, method: str, path: str, token: str, *, create: bool = False,
                    board_id: str | None = None, **kw: Any) -> httpx.Response:
        url = self.endpoints.api_base.rstrip("/") + path
        try:
            resp = await self.http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw)
        except _NOT_SENT as exc:
            raise TransientError(f"Pinterest unreachable: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            if create:
                raise OutcomeUnknown(
                    f"Pinterest connection lost after the request was sent ({type(exc).__name__})"
                ) from None
            raise TransientError(f"Pinterest connection failed: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            _raise_for(resp, board_id=board_id)
        return resp

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


def _media_source(media: list[MediaRef], options: PinterestOptions) -> dict[str, Any]:
    if not media:
        raise ContentRejected("A Pin needs an image or a video")
    if media[0].content_type.startswith("video/"):
        source: dict[str, Any] = {"source_type": "video_id", "media_id": media[0].platform_media_id}
        if options.cover_image_url:
            source["cover_image_url"] = options.cover_image_url
        else:
            source["cover_image_key_frame_time"] = options.cover_image_key_frame_time or 0
        return source
    if len(media) == 1:
        return {"source_type": "image_url", "url": media[0].data.get("url") or media[0].platform_media_id}
    return {"source_type": "multiple_image_urls",
            "items": [{"url": m.data.get("url") or m.platform_media_id} for m in media]}


def _created(pin: dict[str, Any]) -> float | None:
    """The Pin's created_at, or None when it is missing or unreadable (its age is then unknown)."""
    try:
        at = datetime.fromisoformat(str(pin.get("created_at")).replace("Z", "+00:00"))
    except ValueError:
        return None
    # A time without an offset is UTC, not the host's local time.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _raise_for(resp: httpx.Response, *, board_id: str | None) -> None:
    """Map Pinterest's `{code, message}` errors onto adapter errors."""
    try:
        data = resp.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    status = resp.status_code
    message = str(data.get("message") or resp.reason_phrase or "")
    text = f"Pinterest {status} (code {data.get('code')}): {message}"
    lowered = message.lower()
    if status == 429:
        raise RateLimited(text, retry_after=_retry_after(resp), status=status)
    if status >= 500:
        raise TransientError(text, status=status)
    if status == 401:
        # Pinterest answers every token problem the same way; its documented action is
        # "refresh, else reconnect", and a refresh of a revoked grant raises AuthRevoked.
        raise AuthExpired(text, status=status)
    if board_id and (status == 404 or (status == 403 and "board" in lowered)):
        raise ContentRejected(f"Pinterest board {board_id} was not found or is not yours: {message}",
                              status=status)
    if status == 403:
        raise AuthRevoked(text, code="permission_denied", status=status)
    if status == 400 and "unable to reach the url" in lowered:
        # The source host failed Pinterest's fetch; the documented action is to retry.
        raise TransientError(text, status=status)
    if status == 400 and any(phrase in lowered for phrase in _MEDIA_PHRASES):
        raise MediaRejected(text, status=status)
    if status in (400, 404, 409, 413, 422):
        raise ContentRejected(text, status=status)
    raise AdapterError(text, status=status)


def _retry_after(resp: httpx.Response) -> float | None:
    # Header names are unconfirmed: Retry-After, else the window reset the sandbox also sends.
    for name in ("retry-after", "x-ratelimit-reset"):
        value = resp.headers.get(name)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None
