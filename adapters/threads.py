"""Threads profiles (graph.threads.net).

OAuth: code → 1-h token → 60-day token (`th_exchange_token`), extended with
`th_refresh_token` while still valid; no refresh token, no revoke endpoint.
Every post, text included, is a container published in a second call
(`adapters.graph.ContainerPublishing`). A thread is a chain of replies
(`reply_to_id`); Threads has no separate first comment.
"""

from __future__ import annotations

from typing import Any, Literal

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

GRAPH = "https://graph.threads.net"
VERSION = "v1.0"
VIDEO_TYPES = ("video/mp4", "video/quicktime")
# The most /threads answers per page.
RECONCILE_PAGE = 100

PROVIDER = ProviderEntry(
    platform="threads",
    display_name="Threads",
    auth_kind="oauth2",
    api_base=f"{GRAPH}/{VERSION}",
    authorize_url="https://threads.net/oauth/authorize",
    token_url=f"{GRAPH}/oauth/access_token",
    refresh_url=f"{GRAPH}/refresh_access_token",
    extra_urls={"long_lived_token": f"{GRAPH}/access_token"},
    scopes=("threads_basic", "threads_content_publish", "threads_manage_replies"),
    scope_separator=",",
    pkce=None,
    token_auth_method="client_secret_post",
    token_body="form",
    refresh_rotates=False,
    has_refresh_token=False,
)


class ThreadsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply_control: (
        Literal[
            "everyone", "accounts_you_follow", "mentioned_only", "parent_post_author_only", "followers_only"
        ]
        | None
    ) = None
    topic_tag: str | None = Field(None, min_length=1, max_length=50, pattern=r"^[^.&]+$")
    link_attachment: str | None = Field(None, description="Link preview URL (text-only posts)")
    quote_post_id: str | None = None


CAPABILITIES = Capabilities(
    caption_limit=500,
    caption_unit="emoji_bytes",
    media=MediaLimits(
        max_items=20,
        image_types=("image/jpeg", "image/png"),
        video_types=VIDEO_TYPES,
        max_image_bytes=8 * 1024 * 1024,
        max_video_bytes=1024 * 1024 * 1024,
        max_video_seconds=300,
        max_videos=20,
        allow_mixed=True,
    ),
    threads=True,
    first_comment=False,
    options_model=ThreadsOptions,
    notes=(
        "Emoji count as their UTF-8 byte length towards the 500-character limit.",
        "A carousel holds 2-20 items.",
        "No first comment: use thread_position for replies.",
        "250 posts and 1,000 replies per profile per rolling 24 hours.",
    ),
)


class ThreadsAdapter(ContainerPublishing, LongLivedTokenMixin, PlatformAdapter):
    platform = "threads"
    provider = PROVIDER
    capabilities = CAPABILITIES
    exchange_grant = "th_exchange_token"
    refresh_grant = "th_refresh_token"
    create_edge = "threads"
    publish_edge = "threads_publish"
    status_fields = "status,error_message"

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        body = await self.api(
            tokens.access_token,
            "GET",
            "me",
            params={"fields": "id,username,name,threads_profile_picture_url"},
        )
        return AccountProfile(
            external_id=str(body["id"]),
            username=body.get("username"),
            display_name=body.get("name") or body.get("username"),
            avatar_url=body.get("threads_profile_picture_url"),
        )

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues = super().validate(draft, field_prefix=field_prefix, part_count=part_count)
        p = f"{field_prefix}." if field_prefix else ""
        if draft.is_comment:
            issues.append(
                Issue(
                    f"{p}first_comment",
                    "first_comment_unsupported",
                    "Threads has no first comment; use thread_position instead",
                )
            )
        if draft.options.get("link_attachment") and draft.media:
            issues.append(
                Issue(
                    f"{p}platform_options.link_attachment",
                    "invalid_option",
                    "link_attachment applies to text-only posts",
                )
            )
        return issues

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef:
        # Threads pulls media from a public URL when the container is created.
        return MediaRef(
            platform_media_id=media.url,
            content_type=media.content_type,
            data={"url": media.url, "alt_text": media.alt_text},
        )

    def item_params(self, media: MediaRef, *, carousel: bool) -> dict[str, str]:
        url = media.data.get("url") or media.platform_media_id
        if media.content_type in VIDEO_TYPES:
            params = {"media_type": "VIDEO", "video_url": url}
        else:
            params = {"media_type": "IMAGE", "image_url": url}
        if media.data.get("alt_text"):
            params["alt_text"] = media.data["alt_text"]
        if carousel:
            params["is_carousel_item"] = "true"
        return params

    def post_params(self, draft: PartDraft) -> dict[str, str]:
        params = {"media_type": "TEXT", "text": draft.text or ""}
        if draft.reply_to:
            params["reply_to_id"] = draft.reply_to.external_id
        params.update({k: str(v) for k, v in draft.options.items() if v is not None})
        return params

    def container_state(self, body: dict[str, Any]) -> tuple[str, str | None]:
        return str(body.get("status") or "IN_PROGRESS"), body.get("error_message")

    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        """A post (or, for a thread part, a reply under its parent) by this profile since `since`."""
        fields = "id,text,timestamp,permalink,username"
        if draft.reply_to:
            # /replies documents no `limit`; `reverse=true` (its default) lists the newest first.
            path, params = f"{draft.reply_to.external_id}/replies", {"fields": fields, "reverse": "true"}
            what = "the parent's Threads replies"
        else:
            path, params = f"{auth.external_id}/threads", {"fields": fields, "limit": str(RECONCILE_PAGE)}
            what = "the profile's threads"
        found = await find_posted(
            self.api, auth.tokens.access_token, path, params,
            match=lambda p: (p.get("text") or "") == (draft.text or "")
            and (auth.username is None or p.get("username") == auth.username),
            key="timestamp",
            since=since,
            newest_first=True,
            what=what,
        )
        return None if found is None else PostRef(external_id=str(found["id"]), url=found.get("permalink"))
