"""`/v1/platform-credentials`: the workspace's own OAuth apps ("white-label" mode).

The client secret is write-only: it is encrypted at rest and never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from adapters.registry import PLATFORMS
from api.deps import PrincipalDep, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES, NotFound, ValidationFailed
from api.idempotency import IdempotentRoute
from api.ownership import scoped
from store.models import PlatformCredential, utcnow

router = APIRouter(prefix="/v1/platform-credentials", tags=["platform credentials"], responses=ERROR_RESPONSES,
                   route_class=IdempotentRoute)

Platform = Literal[PLATFORMS]
# Bluesky connects with an app password: there is no OAuth app to register.
NO_OAUTH = {"bluesky"}


class CredentialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Platform
    client_id: str = Field(min_length=1, max_length=512)
    client_secret: str = Field(min_length=1, max_length=1024)
    idempotency_key: str | None = Field(default=None, max_length=64)


class CredentialPublic(BaseModel):
    id: str
    object: str = "platform_credential"
    platform: str
    client_id: str
    client_secret_set: bool
    callback_url: str = Field(description="Register this redirect URI in the platform's developer console")
    livemode: bool
    created_at: datetime
    updated_at: datetime


class CredentialOut(BaseModel):
    data: CredentialPublic


class CredentialList(BaseModel):
    data: list[CredentialPublic]
    meta: dict


class DeletedCredential(BaseModel):
    platform: str
    deleted: bool = True


class DeletedOut(BaseModel):
    data: DeletedCredential


def callback_url(base: str, platform: str) -> str:
    return f"{base.rstrip('/')}/v1/oauth/callback/{platform}"


def public(row: PlatformCredential, base: str) -> CredentialPublic:
    return CredentialPublic(id=row.id, platform=row.platform, client_id=row.client_id,
                            client_secret_set=row.client_secret is not None,
                            callback_url=callback_url(base, row.platform), livemode=row.livemode,
                            created_at=row.created_at, updated_at=row.updated_at)


@router.get("", response_model=CredentialList)
async def list_credentials(principal: PrincipalDep, session: SessionDep, settings: SettingsDep) -> dict:
    rows = (await session.exec(scoped(PlatformCredential, principal).order_by(PlatformCredential.platform))).all()
    return {"data": [public(r, settings.public_base_url) for r in rows],
            "meta": {"next_cursor": None, "has_more": False}}


@router.post("", status_code=201, response_model=CredentialOut)
async def upsert_credential(body: CredentialCreate, principal: PrincipalDep, session: SessionDep,
                            settings: SettingsDep) -> CredentialOut:
    if body.platform in NO_OAUTH:
        raise ValidationFailed.one("platform", "no_oauth_app",
                                   "Bluesky connects with a handle and app password; it has no OAuth app")
    row = (await session.exec(
        scoped(PlatformCredential, principal).where(PlatformCredential.platform == body.platform))).first()
    if row is None:
        row = PlatformCredential(workspace_id=principal.workspace_id, livemode=principal.livemode,
                                 platform=body.platform, client_id=body.client_id)
    row.client_id = body.client_id
    row.client_secret = body.client_secret
    row.updated_at = utcnow()
    session.add(row)
    await session.commit()
    return CredentialOut(data=public(row, settings.public_base_url))


@router.delete("/{platform}", response_model=DeletedOut)
async def delete_credential(platform: str, principal: PrincipalDep, session: SessionDep) -> DeletedOut:
    row = (await session.exec(
        scoped(PlatformCredential, principal).where(PlatformCredential.platform == platform))).first()
    if row is None:
        raise NotFound("Platform credential")
    await session.delete(row)
    await session.commit()
    return DeletedOut(data=DeletedCredential(platform=platform))
