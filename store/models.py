"""SQLModel tables for the whole domain of API.md.

Every workspace-owned row carries `workspace_id` and `livemode`: every query
filters on both, so test and live data never mix and one workspace never
sees another's rows. Secrets live only in `EncryptedString` columns; API keys
only as hashes.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, String, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.crypto import EncryptedString, cipher


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on the way in and out, on SQLite (which drops tzinfo) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored: use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts(**kw: Any) -> Any:
    """A timezone-aware timestamp column."""
    nullable = kw.pop("nullable", True)
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, **kw), **({"default": None} if nullable else {}))


def created_ts() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def json_col(default=dict) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


def sealed(context: str) -> Any:
    return Field(default=None, sa_column=Column(EncryptedString(context, 2048), nullable=True))


class PlatformData(TypeDecorator):
    """An account's JSON platform facts, whose `token_extra` (what a token response carried besides the tokens,
    such as Facebook's user access token kept for revocation) is sealed at rest like the tokens themselves.

    Stored as `{..., "token_extra_sealed": "v1..."}`; read back as `{..., "token_extra": {...}}`. Rows written
    before the sealing read as they are."""

    impl = JSON
    cache_ok = True
    SEALED = "token_extra_sealed"
    CONTEXT = "social_accounts.platform_data.token_extra"

    def process_bind_param(self, value, dialect):
        if not isinstance(value, dict) or "token_extra" not in value:
            return value
        out = {k: v for k, v in value.items() if k != "token_extra"}
        out[self.SEALED] = cipher().seal(json.dumps(value["token_extra"]), self.CONTEXT)
        return out

    def process_result_value(self, value, dialect):
        if not isinstance(value, dict) or self.SEALED not in value:
            return value
        out = {k: v for k, v in value.items() if k != self.SEALED}
        out["token_extra"] = json.loads(cipher().open(value[self.SEALED], self.CONTEXT))
        return out


# --- tenancy -----------------------------------------------------------------


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"

    id: str = Field(default_factory=lambda: new_id("ws"), primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    per_account_monthly_limit: int | None = Field(default=None)
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(default_factory=lambda: new_id("key"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    name: str = Field(default="", max_length=200)
    livemode: bool
    key_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    # First characters of the key, safe to show ("hrld_test_AbC1…").
    preview: str = Field(max_length=40)
    expires_at: datetime | None = ts()
    revoked_at: datetime | None = ts()
    last_used_at: datetime | None = ts()
    created_at: datetime = created_ts()


class Profile(SQLModel, table=True):
    __tablename__ = "profiles"

    id: str = Field(default_factory=lambda: new_id("prof"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    livemode: bool
    name: str = Field(max_length=200)
    branding_logo_url: str | None = Field(default=None, max_length=2048)
    branding_display_name: str | None = Field(default=None, max_length=200)
    branding_primary_color: str | None = Field(default=None, max_length=7)
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()


class PlatformCredential(SQLModel, table=True):
    """A workspace's own OAuth app for one platform ("white-label")."""

    __tablename__ = "platform_credentials"
    __table_args__ = (UniqueConstraint("workspace_id", "livemode", "platform"),)

    id: str = Field(default_factory=lambda: new_id("pc"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    livemode: bool
    platform: str = Field(max_length=32)
    client_id: str = Field(max_length=512)
    client_secret: str | None = sealed("platform_credentials.client_secret")
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()


class RedirectAllowlistEntry(SQLModel, table=True):
    """Customer redirect URIs a connect session may return to (dialect M requires it)."""

    __tablename__ = "redirect_allowlist"
    __table_args__ = (UniqueConstraint("workspace_id", "uri"),)

    id: str = Field(default_factory=lambda: new_id("ra"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    uri: str = Field(max_length=2048)
    created_at: datetime = created_ts()


# --- accounts and connect ------------------------------------------------------


class ManagedUser(SQLModel, table=True):
    """A customer's end user, keyed by the customer's own `external_user_id`."""

    __tablename__ = "managed_users"
    __table_args__ = (UniqueConstraint("workspace_id", "livemode", "external_user_id"),)

    id: str = Field(default_factory=lambda: new_id("mu"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    livemode: bool
    external_user_id: str = Field(max_length=256)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=200)
    metadata_: dict = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()


class SocialAccount(SQLModel, table=True):
    __tablename__ = "social_accounts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "livemode", "platform", "external_account_id"),
        Index("ix_social_accounts_scope", "workspace_id", "livemode", "platform"),
    )

    id: str = Field(default_factory=lambda: new_id("sa"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    livemode: bool
    profile_id: str = Field(foreign_key="profiles.id", index=True, max_length=40)
    managed_user_id: str | None = Field(default=None, foreign_key="managed_users.id", index=True, max_length=40)
    platform: str = Field(max_length=32)
    external_account_id: str = Field(max_length=256)
    account_name: str | None = Field(default=None, max_length=256)
    display_name: str | None = Field(default=None, max_length=256)
    avatar_url: str | None = Field(default=None, max_length=2048)
    status: str = Field(default="active", max_length=32)  # active | reauth_required | disconnected
    connection_type: str = Field(default="managed", max_length=16)  # managed | byo
    access_token: str | None = sealed("social_accounts.access_token")
    refresh_token: str | None = sealed("social_accounts.refresh_token")
    # Bluesky app password, kept so a lapsed session can be re-created without the user.
    app_password: str | None = sealed("social_accounts.app_password")
    token_expires_at: datetime | None = ts()
    refresh_expires_at: datetime | None = ts()
    scopes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Platform facts later calls need (Bluesky did and PDS, Facebook page id...); `token_extra` is sealed.
    platform_data: dict = Field(default_factory=dict, sa_column=Column(PlatformData(), nullable=False))
    # Which OAuth app (workspace credential or quickstart) the tokens belong to.
    credential_source: str = Field(default="none", max_length=32)
    last_successful_post_at: datetime | None = ts()
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    connected_at: datetime = created_ts()
    disconnected_at: datetime | None = ts()
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()


class ConnectSession(SQLModel, table=True):
    __tablename__ = "connect_sessions"

    id: str = Field(default_factory=lambda: new_id("cs"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    livemode: bool
    profile_id: str = Field(foreign_key="profiles.id", max_length=40)
    platform: str = Field(max_length=32)
    external_user_id: str = Field(max_length=256)
    external_user_email: str | None = Field(default=None, max_length=320)
    return_url: str | None = Field(default=None, max_length=2048)
    allow_quickstart_creds: bool = False
    dialect: str = Field(default="u", max_length=4)
    status: str = Field(default="pending", max_length=16)  # pending | completed | expired | cancelled | failed
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error_code: str | None = Field(default=None, max_length=64)
    # PKCE verifier for the authorization in progress; the state nonce is stored only hashed.
    code_verifier: str | None = sealed("connect_sessions.code_verifier")
    state_hash: str | None = Field(default=None, max_length=64, index=True)
    state_used: bool = False
    completed_social_account_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()
    expires_at: datetime = ts(nullable=False)
    completed_at: datetime | None = ts()


# --- posts -----------------------------------------------------------------------


class Post(SQLModel, table=True):
    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "livemode", "idempotency_key"),
        Index("ix_posts_scope_created", "workspace_id", "livemode", "created_at"),
    )

    id: str = Field(default_factory=lambda: new_id("post"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    livemode: bool
    caption: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    title: str | None = Field(default=None, max_length=300)
    status: str = Field(default="draft", max_length=16)
    mode: str = Field(default="immediate", max_length=16)  # immediate | scheduled
    dialect: str = Field(default="u", max_length=4)
    external_user_id: str | None = Field(default=None, max_length=256)
    idempotency_key: str | None = Field(default=None, max_length=64)
    metadata_: dict = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    # The validated request, kept so an edit or a replay sees exactly what was asked.
    request: dict = json_col()
    scheduled_at: datetime | None = ts()
    published_at: datetime | None = ts()
    # Set once the post's workflow is started; a sweeper starts any post left without one.
    dispatched_at: datetime | None = ts()
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()


class PostResult(SQLModel, table=True):
    """One target account of a post: its parts (a thread), first comment and outcome."""

    __tablename__ = "post_results"

    id: str = Field(default_factory=lambda: new_id("res"), primary_key=True, max_length=40)
    post_id: str = Field(foreign_key="posts.id", index=True, max_length=40)
    social_account_id: str = Field(foreign_key="social_accounts.id", index=True, max_length=40)
    platform: str = Field(max_length=32)
    account_name: str | None = Field(default=None, max_length=256)
    parts: list = json_col(list)  # [{caption, media_ids, media_urls}] in thread order
    first_comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    platform_options: dict = json_col()
    status: str = Field(default="pending", max_length=16)
    external_id: str | None = Field(default=None, max_length=512)
    url: str | None = Field(default=None, max_length=2048)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = 0
    published_at: datetime | None = ts()
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()


class PublishAttempt(SQLModel, table=True):
    """Written before every platform call, completed when it answers: the never-duplicate ledger."""

    __tablename__ = "publish_attempts"

    id: str = Field(default_factory=lambda: new_id("att"), primary_key=True, max_length=40)
    result_id: str = Field(foreign_key="post_results.id", index=True, max_length=40)
    step: str = Field(max_length=32)  # part:<n> | comment
    tag: str = Field(max_length=128, index=True)
    status: str = Field(default="started", max_length=16)  # started | succeeded | failed | unknown
    external_id: str | None = Field(default=None, max_length=512)
    external_data: dict = json_col()
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = created_ts()
    finished_at: datetime | None = ts()


# --- media -------------------------------------------------------------------------


class Media(SQLModel, table=True):
    __tablename__ = "media"

    id: str = Field(default_factory=lambda: new_id("med"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    livemode: bool
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=128)
    size_bytes: int | None = None
    content_hash: str | None = Field(default=None, max_length=128)
    status: str = Field(default="pending", max_length=16)  # pending | uploaded | deleted
    storage_key: str | None = Field(default=None, max_length=512)
    source_url: str | None = Field(default=None, max_length=2048)
    created_at: datetime = created_ts()
    uploaded_at: datetime | None = ts()
    expires_at: datetime | None = ts()


# --- webhooks ----------------------------------------------------------------------


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscriptions"

    id: str = Field(default_factory=lambda: new_id("wh"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    livemode: bool
    name: str = Field(default="", max_length=200)
    url: str = Field(max_length=2048)
    events: list = json_col(list)
    active: bool = True
    secret: str | None = sealed("webhook_subscriptions.secret")
    previous_secret: str | None = sealed("webhook_subscriptions.previous_secret")
    previous_secret_expires_at: datetime | None = ts()
    secret_preview: str = Field(default="", max_length=32)
    consecutive_failures: int = 0
    disabled_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_ts()
    updated_at: datetime = created_ts()


class WebhookEvent(SQLModel, table=True):
    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_scope", "workspace_id", "livemode", "created_at"),)

    id: str = Field(default_factory=lambda: new_id("evt"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    livemode: bool
    type: str = Field(max_length=64)
    data: dict = json_col()
    created_at: datetime = created_ts()
    dispatched_at: datetime | None = ts(index=True)  # set once its delivery workflows are started


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver one event to one subscription."""

    __tablename__ = "webhook_deliveries"

    id: str = Field(default_factory=lambda: new_id("del"), primary_key=True, max_length=40)
    subscription_id: str = Field(foreign_key="webhook_subscriptions.id", index=True, max_length=40)
    event_id: str = Field(foreign_key="webhook_events.id", index=True, max_length=40)
    attempt: int = 1
    status: str = Field(default="pending", max_length=16)  # pending | succeeded | failed
    response_status: int | None = None
    duration_ms: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = created_ts()


# --- API plumbing ---------------------------------------------------------------------


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("workspace_id", "livemode", "key"),)

    id: str = Field(default_factory=lambda: new_id("idem"), primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    livemode: bool
    key: str = Field(max_length=64)
    route: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    status: str = Field(default="in_flight", max_length=16)  # in_flight | done
    response_status: int | None = None
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = created_ts()
    expires_at: datetime = ts(nullable=False)


class RateLimitWindow(SQLModel, table=True):
    """Requests per API key per minute, shared by every API replica."""

    __tablename__ = "rate_limit_windows"

    api_key_id: str = Field(primary_key=True, max_length=40)
    window_start: int = Field(primary_key=True)  # epoch minute
    count: int = 0


class OperatorLog(SQLModel, table=True):
    __tablename__ = "operator_logs"
    __table_args__ = (Index("ix_operator_logs_scope", "workspace_id", "livemode", "created_at"),)

    id: str = Field(default_factory=lambda: new_id("log"), primary_key=True, max_length=40)
    workspace_id: str | None = Field(default=None, max_length=40)
    livemode: bool | None = None
    kind: str = Field(max_length=16)  # request | pipeline
    level: str = Field(default="info", max_length=8)
    request_id: str | None = Field(default=None, max_length=64, index=True)
    method: str | None = Field(default=None, max_length=8)
    path: str | None = Field(default=None, max_length=512)
    status_code: int | None = None
    duration_ms: int | None = None
    post_id: str | None = Field(default=None, max_length=40, index=True)
    account_id: str | None = Field(default=None, max_length=40, index=True)
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = created_ts()
