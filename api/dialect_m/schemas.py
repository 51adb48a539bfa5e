"""Dialect M request bodies and documented response shapes, in the dialect's own camelCase names.

Inputs are strict (`extra="forbid"`): every documented field is accepted, and a
misspelt one is a 422 naming it rather than a silently ignored value.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.validators import http_url

# Printable identifiers: no control characters (PostgreSQL text cannot hold NUL).
IDENTIFIER = r"^[^\x00-\x1f\x7f]+$"
MAX_METADATA_BYTES = 16_384
MAX_PLATFORMS = 20


def _bounded_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, separators=(",", ":"))) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes")
    return value


class EndUserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    externalUserId: str = Field(min_length=1, max_length=256, pattern=IDENTIFIER)
    displayName: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    metadata: dict[str, Any] | None = None

    _metadata = field_validator("metadata")(_bounded_metadata)


class ConnectSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    externalUserId: str = Field(min_length=1, max_length=256, pattern=IDENTIFIER)
    platform: str = Field(max_length=32)
    redirectUri: str = Field(max_length=2048)
    # Accepted for compatibility; the hosted page is branded from the workspace's profile instead.
    display: dict[str, Any] | None = None


class PostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    externalUserId: str = Field(min_length=1, max_length=256, pattern=IDENTIFIER)
    title: str | None = Field(default=None, max_length=300)
    content: str = Field(max_length=100_000)
    platforms: list[str] = Field(max_length=MAX_PLATFORMS)
    mediaUrl: str | None = Field(default=None, max_length=2048)
    # Accepted for compatibility: no Herald adapter uploads a custom thumbnail.
    thumbnailUrl: str | None = Field(default=None, max_length=2048)
    metadata: dict[str, Any] | None = None

    _metadata = field_validator("metadata")(_bounded_metadata)
    _thumbnail = field_validator("thumbnailUrl")(http_url)


class ScheduledPostIn(PostIn):
    scheduleAt: datetime = Field(description="ISO 8601; a timestamp without an offset is read as UTC")


# --- documented responses (bodies are built by `api.dialect_m.shapes`) ---


class ConnectionSummary(BaseModel):
    total: int
    connected: int
    failed: int


class EndUserOut(BaseModel):
    id: str
    externalUserId: str
    displayName: str | None
    email: str | None
    metadata: dict[str, Any]
    createdAt: str
    updatedAt: str


class EndUserDetailOut(EndUserOut):
    connectionSummary: ConnectionSummary


class ConnectionOut(BaseModel):
    id: str
    platform: str
    status: str = Field(description="connected | failed | disconnected")
    remoteAccountId: str
    remoteUsername: str | None
    accountType: str = Field(description="page | organization | business | person")


class ConnectSessionCreatedOut(BaseModel):
    id: str
    status: str
    platform: str
    connectUrl: str


class ConnectSessionOut(BaseModel):
    id: str
    status: str = Field(description="pending | connected | failed | expired")
    platform: str
    externalUserId: str
    errorCode: str | None
    updatedAt: str


class PlatformResultOut(BaseModel):
    platform: str
    status: str = Field(description="published | failed | pending")
    externalId: str | None


class PostSummaryOut(BaseModel):
    id: str
    mode: str = Field(description="immediate | scheduled")
    status: str = Field(description="scheduled | processing | published | partial | failed | cancelled | draft")
    externalUserId: str | None


class PostOut(PostSummaryOut):
    scheduleAt: str | None = Field(default=None, description="Present on scheduled posts")
    platformResults: list[PlatformResultOut]
