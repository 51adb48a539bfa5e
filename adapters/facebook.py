"""Facebook Pages (Graph API).

OAuth: the code exchange is a GET; the short-lived user token is swapped for a
60-day one (`fb_exchange_token`), and `fetch_profile` picks the first Page the
user can create content on: the account is that Page, published to with its
Page token, which does not expire. There is no refresh; a dead Page token needs a
new login. The user token and id are kept in `TokenSet.extra` for revocation
(`DELETE /{user-id}/permissions`).

Publishing: text and links on `/feed`; one photo on `/photos`; several photos
are staged unpublished in `prepare` and attached to a `/feed` post; a video on
`/videos` (from `file_url`) is processed asynchronously and polled.
"""

from __future__ import annotations

import json
from typing import Any

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
from adapters.errors import AdapterError, AuthRevoked, MediaRejected
from adapters.graph import GraphTokenMixin, find_posted, graph_request, next_delay

VERSION = "v23.0"
WEB = "https://www.facebook.com"
VIDEO_TYPES = ("video/mp4", "video/quicktime")
# The most /feed and /comments answer per page.
RECONCILE_PAGE = 100

PROVIDER = ProviderEntry(
    platform="facebook",
    display_name="Facebook Pages",
    auth_kind="oauth2",
    api_base=f"https://graph.facebook.com/{VERSION}",
    authorize_url=f"{WEB}/{VERSION}/dialog/oauth",
    token_url=f"https://graph.facebook.com/{VERSION}/oauth/access_token",
    extra_urls={"video_api": f"https://graph-video.facebook.com/{VERSION}"},
    scopes=("pages_show_list", "pages_read_engagement", "pages_manage_posts", "pages_manage_engagement"),
    scope_separator=",",
    pkce=None,
    token_auth_method="client_secret_post",
    token_body="query",
    token_http_method="GET",
    refresh_rotates=False,
    has_refresh_token=False,
)


class FacebookOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    link: str | None = Field(None, description="URL shared with a text post (link preview)")
    title: str | None = Field(None, max_length=255, description="Video title")


CAPABILITIES = Capabilities(
    caption_limit=63206,
    caption_unit="characters",
    media=MediaLimits(
        max_items=10,
        image_types=("image/jpeg", "image/png", "image/gif", "image/webp"),
        video_types=VIDEO_TYPES,
        max_image_bytes=4 * 1024 * 1024,
        max_videos=1,
        allow_mixed=False,
    ),
    threads=False,
    first_comment=True,
    options_model=FacebookOptions,
    notes=(
        "Publishes as the first Page the user can create content on.",
        "Several photos form one post; a video is posted alone.",
    ),
)


class FacebookAdapter(GraphTokenMixin, PlatformAdapter):
    platform = "facebook"
    provider = PROVIDER
    capabilities = CAPABILITIES

    # --- OAuth ---

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet:
        body: dict[str, str] = {"code": code, "redirect_uri": redirect_uri}
        if code_verifier and self.provider.pkce:
            body["code_verifier"] = code_verifier
        short = self.token_set(await self.token_request(self.endpoints.token_url, body))
        data = await self.token_get(
            self.endpoints.token_url,
            {
                "grant_type": "fb_exchange_token",
                "client_id": self.client.client_id,
                "client_secret": self.client.client_secret or "",
                "fb_exchange_token": short.access_token,
            },
        )
        return self.token_set(data)

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        raise AuthRevoked(
            "Facebook has no refresh tokens: the user must log in again", code="reauth_required"
        )

    async def revoke(self, tokens: TokenSet) -> None:
        user_id = tokens.extra.get("user_id", "me")
        token = tokens.extra.get("user_access_token") or tokens.access_token
        await self.api(token, "DELETE", f"{user_id}/permissions")

    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile:
        """The first Page the user may create content on, with its Page token."""
        me = await self.api(tokens.access_token, "GET", "me", params={"fields": "id,name"})
        pages = await self.api(
            tokens.access_token,
            "GET",
            "me/accounts",
            params={"fields": "id,name,access_token,tasks", "limit": "100"},
        )
        page = next((p for p in pages.get("data", []) if "CREATE_CONTENT" in (p.get("tasks") or [])), None)
        if page is None:
            raise AdapterError(
                "The Facebook user manages no Page they can publish to", code="no_publishable_page"
            )
        page_tokens = TokenSet(
            access_token=page["access_token"],
            scope=tokens.scope,
            extra={
                "user_id": str(me["id"]),
                "user_access_token": tokens.access_token,
                "user_token_expires_at": tokens.expires_at,
            },
        )
        return AccountProfile(
            external_id=str(page["id"]),
            display_name=page.get("name"),
            tokens=page_tokens,
            extra={"user_id": str(me["id"]), "user_name": me.get("name"), "tasks": page.get("tasks")},
        )

    # --- publishing ---

    async def api(
        self,
        token: str,
        method: str,
        path: str,
        *,
        base: str | None = None,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        creates: bool = False,
    ) -> dict[str, Any]:
        return await graph_request(
            self.http,
            self.platform,
            method,
            f"{base or self.endpoints.api_base}/{path}",
            token=token,
            params=params,
            data=data,
            creates=creates,
        )

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        issues = super().validate(draft, field_prefix=field_prefix, part_count=part_count)
        p = f"{field_prefix}." if field_prefix else ""
        if part_count > 1 or (draft.reply_to and not draft.is_comment):
            issues.append(
                Issue(
                    f"{p}thread_position",
                    "threads_unsupported",
                    "Facebook Pages have no threads; use first_comment",
                )
            )
        if draft.options.get("link") and draft.media:
            issues.append(Issue(f"{p}platform_options.link", "invalid_option", "link applies to text posts"))
        if draft.options.get("title") and not _video(draft):
            issues.append(Issue(f"{p}platform_options.title", "invalid_option", "title applies to a video"))
        return issues

    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef:
        # Facebook pulls photos (`url`) and videos (`file_url`) itself when the post is made.
        return MediaRef(platform_media_id=media.url, content_type=media.content_type, data={"url": media.url})

    @classmethod
    def stages(cls, media_count: int) -> bool:
        return media_count >= 2

    async def prepare(self, auth: AccountAuth, draft: PartDraft) -> Prepared:
        """Several photos are uploaded unpublished first; they become one post in `publish`."""
        if len(draft.media) < 2:
            return Prepared(draft=draft)
        fbids = []
        for media in draft.media:
            # An unpublished photo is invisible and harmless if orphaned: a lost answer is only transient.
            body = await self.api(
                auth.tokens.access_token,
                "POST",
                f"{auth.external_id}/photos",
                data={"url": _url(media), "published": "false"},
            )
            fbids.append(str(body["id"]))
        return Prepared(draft=draft, handle={"media_fbids": fbids})

    async def publish(self, auth: AccountAuth, prepared: Prepared) -> PostRef | Pending:
        draft, token, page = prepared.draft, auth.tokens.access_token, auth.external_id
        message = draft.text or ""
        if _video(draft):
            data = {"file_url": _url(draft.media[0]), "description": message}
            if draft.options.get("title"):
                data["title"] = draft.options["title"]
            body = await self.api(
                token, "POST", f"{page}/videos", base=self.endpoints.url("video_api"), data=data, creates=True
            )
            handle = {"video_id": str(body["id"])}
            return Pending(check_after=next_delay(handle), handle=handle)
        if len(draft.media) == 1:
            body = await self.api(
                token,
                "POST",
                f"{page}/photos",
                data={"url": _url(draft.media[0]), "caption": message},
                creates=True,
            )
            return _ref(str(body.get("post_id") or f"{page}_{body['id']}"), photo_id=str(body["id"]))
        data = {"message": message}
        if prepared.handle.get("media_fbids"):
            data["attached_media"] = json.dumps([{"media_fbid": i} for i in prepared.handle["media_fbids"]])
        elif len(draft.media) > 1:
            raise AdapterError("several photos must be staged by prepare() first", code="not_prepared")
        if draft.options.get("link"):
            data["link"] = draft.options["link"]
        body = await self.api(token, "POST", f"{page}/feed", data=data, creates=True)
        return _ref(str(body["id"]))

    async def poll_publish(self, auth: AccountAuth, handle: dict[str, Any]) -> PostRef | Pending:
        handle = dict(handle)
        video_id = handle["video_id"]
        body = await self.api(
            auth.tokens.access_token, "GET", video_id, params={"fields": "status,permalink_url"}
        )
        status = body.get("status") or {}
        state = status.get("video_status")
        if state == "ready":
            link = body.get("permalink_url") or ""
            return PostRef(
                external_id=f"{auth.external_id}_{video_id}",
                url=WEB + link if link.startswith("/") else link or None,
                data={"video_id": video_id},
            )
        if state in ("error", "expired"):
            errors = (status.get("processing_phase") or {}).get("errors") or [{}]
            raise MediaRejected(f"facebook could not process the video: {errors[0].get('message', state)}")
        return Pending(check_after=next_delay(handle), handle=handle)

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
        """The Page feed (or, for a first comment, the parent's comments) matched by message since `since`."""
        token = auth.tokens.access_token
        if draft.is_comment and draft.reply_to:
            parent = draft.reply_to.external_id
            # Comments come oldest first unless ranked, whatever `order` asks: read them to the end.
            found = await find_posted(
                self.api,
                token,
                f"{parent}/comments",
                {"fields": "id,message,created_time,from", "limit": str(RECONCILE_PAGE)},
                match=lambda c: c.get("message") == draft.text
                and (c.get("from") or {}).get("id") == auth.external_id,
                key="created_time",
                since=since,
                newest_first=False,
                what="the post's Facebook comments",
            )
            return None if found is None else PostRef(external_id=str(found["id"]), data={"parent": parent})
        found = await find_posted(
            self.api,
            token,
            f"{auth.external_id}/feed",
            {"fields": "id,message,created_time", "limit": str(RECONCILE_PAGE)},
            match=lambda p: (p.get("message") or "") == (draft.text or ""),
            key="created_time",
            since=since,
            newest_first=True,
            what="the Facebook Page feed",
        )
        return None if found is None else _ref(str(found["id"]))


def _url(media: MediaRef) -> str:
    return media.data.get("url") or media.platform_media_id


def _video(draft: PartDraft) -> bool:
    return len(draft.media) == 1 and draft.media[0].content_type in VIDEO_TYPES


def _ref(post_id: str, **data: str) -> PostRef:
    return PostRef(external_id=post_id, url=f"{WEB}/{post_id}", data=data)
