"""Instagram professional accounts, through the Instagram API with Instagram Login.

OAuth: code → 1-h token (`api.instagram.com`) → 60-day token (`ig_exchange_token`),
extended with `ig_refresh_token` while still valid; no refresh token, no revoke.
Publishing: Meta pulls media from public URLs into a container, which is polled
until FINISHED and then published (`adapters.graph.ContainerPublishing`).
Instagram cannot post text alone; first comments are comments on the new media.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    AccountAuth,
    AccountProfile,
    MediaRef,
    MediaSource,
    PartDraft,
    PlatformAdapter,
    PostRef,
    TokenSet,
)
from adapters.capabilities import Capabilities, Issue, MediaLimits
from adapters.catalogue import ProviderEntry
from adapters.graph import ContainerPublishing, LongLivedTokenMixin, find_posted

GRAPH = "https://graph.instagram.com"
VERSION = "v23.0"
MAX_HASHTAGS = 30
MAX_MENTIONS = 20
VIDEO_TYPES = ("video/mp4", "video/quicktime")
# No maximum `limit` is documented for /media or /comments: ask for the page size known to work.
RECONCILE_PAGE = 50

PROVIDER = ProviderEntry(
    platform="instagram",
    display_name="Instagram",
    auth_kind="oauth2",
    api_base=f"{GRAPH}/{VERSION}",
    authorize_url="https://www.instagram.com/oauth/authorize",
    token_url="https://api.instagram.com/oauth/access_token",
    refresh_url=f"{GRAPH}/refresh_access_token",
    extra_urls={"long_lived_token": f"{GRAPH}/access_token"},
    scopes=(
        "instagram_business_basic",
        "instagram_business_content_publish",
        "instagram_business_manage_comments",
    ),
    scope_separator=",",
    pkce=None,
    token_auth_method="client_secret_post",
    token_body="form",
    refresh_rotates=False,
    has_refresh_token=False,
)


class InstagramOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share_to_feed: bool | None = Field(None, description="Reels: also show the Reel in the feed")
    cover_url: str | None = Field(None, description="Reels: public URL of the cover image")
    thumb_offset: int | None = Field(None, ge=0, description="Reels: cover frame, in milliseconds")
    location_id: str | None = Field(None, description="A Facebook Page id with a location")
    collaborators: list[str] | None = Field(
        None, max_length=3, description="Usernames invited as collaborators"
    )


CAPABILITIES = Capabilities(
    caption_limit=2200,
    caption_unit="characters",
    media=MediaLimits(
        max_items=10,
        image_types=("image/jpeg",),
        video_types=VIDEO_TYPES,
        max_image_bytes=8 * 1024 * 1024,
        max_video_seconds=900,
        max_videos=10,
        allow_mixed=True,
        required=True,
    ),
    threads=False,
    first_comment=True,
    options_model=InstagramOptions,
    notes=(
        "Professional (Business or Creator) accounts only.",
        "One video is published as a Reel; 2-10 items form a carousel.",
        f"At most {MAX_HASHTAGS} hashtags and {MAX_MENTIONS} @mentions per caption.",
        "100 API-published posts per rolling 24 hours.",
    ),
)


class InstagramAdapter(ContainerPublishing, LongLivedTokenMixin, PlatformAdapter):
    platform = "instagram"
    provider = PROVIDER
    capabilities = CAPABILITIES
    exchange_grant = "ig_exchange_token"
    refresh_grant = "ig_refresh_token"
    create_edge = "media"
    publish_edge = "media_publish"
    status_fields = "status_code,status"

    # --- OAuth ---

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet:
        # Instagram appends `#_` to the redirect; it is not part of the code.
        return await super().exchange_code(
            code=code.removesuffix("#_"), redirect_uri=redirect_uri, code_verifier=code_verifier
        )

    def token_set(self, data: dict[str, Any]) -> TokenSet:
        # The documented body wraps the token in `data: [...]`; the live endpoint answers flat.
        if isinstance(data.get("data"), list) and data["data"]:
            data = data["data"][0]
        return super().token_set(data)

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        body = await self.api(
            tokens.access_token,
            "GET",
            "me",
            params={"fields": "user_id,username,name,account_type,profile_picture_url"},
        )
        return AccountProfile(
            external_id=str(body.get("user_id") or tokens.extra.get("user_id") or body["id"]),
            username=body.get("username"),
            display_name=body.get("name") or body.get("username"),
            avatar_url=body.get("profile_picture_url"),
            extra={"account_type": body.get("account_type"), "app_scoped_id": body.get("id")},
        )

    # --- publishing ---

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues = super().validate(draft, field_prefix=field_prefix, part_count=part_count)
        p = f"{field_prefix}." if field_prefix else ""
        if draft.is_comment:
            return [i for i in issues if not i.field.startswith(f"{p}media")]
        text = draft.text or ""
        if len(re.findall(r"(?<!\w)#\w", text)) > MAX_HASHTAGS:
            issues.append(Issue(f"{p}caption", "too_many_hashtags", f"At most {MAX_HASHTAGS} hashtags"))
        if len(re.findall(r"(?<!\w)@\w", text)) > MAX_MENTIONS:
            issues.append(Issue(f"{p}caption", "too_many_mentions", f"At most {MAX_MENTIONS} @mentions"))
        if part_count > 1 or draft.reply_to:
            issues.append(
                Issue(
                    f"{p}thread_position",
                    "threads_unsupported",
                    "Instagram has no threads; use first_comment",
                )
            )
        reel = len(draft.media) == 1 and draft.media[0].content_type in VIDEO_TYPES
        for name in ("share_to_feed", "cover_url", "thumb_offset"):
            if draft.options.get(name) is not None and not reel:
                issues.append(
                    Issue(
                        f"{p}platform_options.{name}",
                        "invalid_option",
                        f"{name} applies to a single video (Reel) only",
                    )
                )
        return issues

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef:
        # Meta pulls media from a public URL when the container is created: nothing to upload.
        return MediaRef(
            platform_media_id=media.url,
            content_type=media.content_type,
            data={"url": media.url, "alt_text": media.alt_text},
        )

    def item_params(self, media: MediaRef, *, carousel: bool) -> dict[str, str]:
        url = media.data.get("url") or media.platform_media_id
        if media.content_type in VIDEO_TYPES:
            params = {"media_type": "VIDEO" if carousel else "REELS", "video_url": url}
        else:
            params = {"image_url": url}
            if media.data.get("alt_text"):
                params["alt_text"] = media.data["alt_text"]
        if carousel:
            params["is_carousel_item"] = "true"
        return params

    def post_params(self, draft: PartDraft) -> dict[str, str]:
        params = {"caption": draft.text or ""}
        for key, value in draft.options.items():
            if value is None:
                continue
            if key == "collaborators":
                params[key] = ",".join(value)
            elif isinstance(value, bool):
                params[key] = "true" if value else "false"
            else:
                params[key] = str(value)
        return params

    def container_state(self, body: dict[str, Any]) -> tuple[str, str | None]:
        # `status` carries the error subcode when status_code is ERROR.
        return str(body.get("status_code") or "IN_PROGRESS"), body.get("status")

    async def comment(self, auth: AccountAuth, parent: PostRef, text: str, *, tag: str) -> PostRef:
        body = await self.api(
            auth.tokens.access_token,
            "POST",
            f"{parent.external_id}/comments",
            data={"message": text},
            creates=True,
        )
        return PostRef(external_id=str(body["id"]), data={"parent": parent.external_id})

    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        """The account's recent media (or the parent's comments) posted since `since` with this text."""
        token = auth.tokens.access_token
        if draft.is_comment and draft.reply_to:
            parent = draft.reply_to.external_id
            # The order of /comments is not documented: read them to the end.
            found = await find_posted(
                self.api,
                token,
                f"{parent}/comments",
                {"fields": "id,text,timestamp,username", "limit": str(RECONCILE_PAGE)},
                match=lambda c: c.get("text") == draft.text
                and (auth.username is None or c.get("username") == auth.username),
                key="timestamp",
                since=since,
                newest_first=False,
                what="the media's Instagram comments",
            )
            return None if found is None else PostRef(external_id=str(found["id"]), data={"parent": parent})
        expected = _media_type(draft)
        found = await find_posted(
            self.api,
            token,
            f"{auth.external_id}/media",
            {"fields": "id,caption,media_type,permalink,timestamp", "limit": str(RECONCILE_PAGE)},
            match=lambda m: (m.get("caption") or "") == (draft.text or "")
            and m.get("media_type") == expected,
            key="timestamp",
            since=since,
            newest_first=True,
            what="the Instagram account's media",
        )
        return None if found is None else PostRef(external_id=str(found["id"]), url=found.get("permalink"))


def _media_type(draft: PartDraft) -> str:
    if len(draft.media) > 1:
        return "CAROUSEL_ALBUM"
    if draft.media and draft.media[0].content_type in VIDEO_TYPES:
        return "VIDEO"
    return "IMAGE"
