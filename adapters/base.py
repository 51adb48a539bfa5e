"""The one interface every platform module implements, and the data it speaks.

Every value here is a plain dataclass of JSON-friendly fields, because these
values cross Temporal activity boundaries and land in workflow histories.

Long-running platform work (media processing, Instagram containers, TikTok's
publish status) is never waited on inside an adapter: a call returns
`Pending(check_after, handle)` and the caller (a workflow) sleeps and then
calls the matching `poll_*` method with the handle. Adapters do not retry and
do not sleep.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from adapters.capabilities import Capabilities, Issue
from adapters.catalogue import Endpoints, ProviderEntry


@dataclass
class ClientCredentials:
    """The OAuth app (white-label or quickstart) that the account was connected through."""

    client_id: str
    client_secret: str | None = None


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # epoch seconds
    refresh_expires_at: float | None = None
    scope: str | None = None
    # Platform-specific extras that later calls need (Bluesky did/pds, Facebook page id...).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AccountProfile:
    external_id: str  # the platform's id for the account (X user id, LinkedIn sub, Bluesky did, Page id)
    username: str | None = None
    display_name: str | None = None
    avatar_url: str | None = None
    # Tokens that replace the user's tokens for publishing (Facebook Page token).
    tokens: TokenSet | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AccountAuth:
    """What an adapter needs to act as one connected account."""

    external_id: str
    tokens: TokenSet
    username: str | None = None


@dataclass
class MediaSource:
    """One media item to attach. `url` is fetchable by Herald and by pulling platforms."""

    url: str
    content_type: str
    size_bytes: int | None = None
    alt_text: str | None = None
    filename: str | None = None


@dataclass
class MediaRef:
    """Media the platform has accepted and that a post can reference."""

    platform_media_id: str
    content_type: str
    data: dict[str, Any] = field(default_factory=dict)  # e.g. Bluesky blob, image dimensions


@dataclass
class PostRef:
    """A published post (or comment) on the platform."""

    external_id: str
    url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # e.g. Bluesky cid and thread root


@dataclass
class Pending:
    """Platform-side processing continues: poll again after `check_after` seconds."""

    check_after: float
    handle: dict[str, Any]
    state: str = "processing"


@dataclass
class PartDraft:
    """One part of a post for one account: the first part, or a thread reply."""

    text: str
    media: list[MediaRef] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    reply_to: PostRef | None = None
    # Stable per (result, part): lets reconcile recognise an earlier attempt
    # (Bluesky uses it to derive the record key).
    tag: str = ""
    title: str | None = None
    # True for a first comment: `reply_to` is the post it comments on.
    is_comment: bool = False


@dataclass
class Prepared:
    """A draft the platform has staged (e.g. an Instagram container) and can publish."""

    draft: PartDraft
    handle: dict[str, Any] = field(default_factory=dict)


class PlatformAdapter(abc.ABC):
    """One per platform. Instances are cheap: built per call with a context."""

    platform: ClassVar[str]
    provider: ClassVar[ProviderEntry]
    capabilities: ClassVar[Capabilities]

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        client: ClientCredentials | None = None,
    ):
        self.http = http
        self.endpoints = endpoints
        self.client = client

    # --- OAuth (defaults in adapters.oauth work from the catalogue entry) ---

    @abc.abstractmethod
    def authorization_url(self, *, redirect_uri: str, state: str, code_verifier: str | None) -> str: ...

    @abc.abstractmethod
    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet: ...

    @abc.abstractmethod
    async def refresh(self, tokens: TokenSet) -> TokenSet: ...

    @abc.abstractmethod
    async def revoke(self, tokens: TokenSet) -> None: ...

    @abc.abstractmethod
    async def fetch_profile(self, tokens: TokenSet) -> AccountProfile: ...

    # --- publishing ---

    def validate(self, draft: PartDraft, *, field_prefix: str, part_count: int = 1) -> list[Issue]:
        """Everything knowable without a network call. No request is sent for invalid input."""
        return self.capabilities.validate(draft, field_prefix=field_prefix, part_count=part_count)

    @abc.abstractmethod
    async def upload_media(self, auth: AccountAuth, media: MediaSource) -> MediaRef | Pending: ...

    async def poll_media(self, auth: AccountAuth, handle: dict[str, Any]) -> MediaRef | Pending:
        raise NotImplementedError(f"{self.platform} has no asynchronous media processing")

    @classmethod
    def stages(cls, media_count: int) -> bool:
        """Whether `prepare` calls the platform for a part with this many media items. When it does not,
        the pipeline skips the step and publishes the draft as it is."""
        return cls.prepare is not PlatformAdapter.prepare

    async def prepare(self, auth: AccountAuth, draft: PartDraft) -> Prepared | Pending:
        """Stage a part before its publish time. Most platforms have nothing to stage."""
        return Prepared(draft=draft)

    async def poll_prepared(self, auth: AccountAuth, handle: dict[str, Any]) -> Prepared | Pending:
        raise NotImplementedError(f"{self.platform} stages nothing asynchronously")

    @abc.abstractmethod
    async def publish(self, auth: AccountAuth, prepared: Prepared) -> PostRef | Pending:
        """The irreversible call. Raise OutcomeUnknown when the answer was lost."""

    async def poll_publish(self, auth: AccountAuth, handle: dict[str, Any]) -> PostRef | Pending:
        raise NotImplementedError(f"{self.platform} publishes synchronously")

    async def comment(self, auth: AccountAuth, parent: PostRef, text: str, *, tag: str) -> PostRef:
        raise NotImplementedError(f"{self.platform} does not support first comments")

    @abc.abstractmethod
    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        """Find a post an earlier attempt of `draft` may have created (at or after `since`).

        Returns the post, None when it certainly does not exist, or raises
        Unverifiable when the platform cannot tell.
        """
