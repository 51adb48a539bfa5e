"""`/v1/api-keys`: keys of the workspace. The plaintext is returned only at creation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api import pagination
from api.deps import PrincipalDep, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES, Forbidden, ValidationFailed
from api.idempotency import IdempotentRoute
from api.ownership import get_owned, scoped
from store.models import ApiKey, utcnow
from store.tenancy import issue_key, revoke_key

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], responses=ERROR_RESPONSES,
                   route_class=IdempotentRoute)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    environment: Literal["live", "test"]
    expires_at: datetime | None = None
    idempotency_key: str | None = Field(default=None, max_length=64)

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("expires_at must carry a timezone (RFC 3339, e.g. 2027-01-01T00:00:00Z)")
        return v


class ApiKeyPublic(BaseModel):
    id: str
    object: str = "api_key"
    name: str
    environment: Literal["live", "test"]
    livemode: bool
    preview: str
    key: str | None = Field(default=None, description="The key itself: present only in the creation response")
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class ApiKeyOut(BaseModel):
    data: ApiKeyPublic


class ApiKeyList(BaseModel):
    data: list[ApiKeyPublic]
    meta: dict


def public(row: ApiKey, plaintext: str | None = None) -> ApiKeyPublic:
    return ApiKeyPublic(id=row.id, name=row.name, environment="live" if row.livemode else "test",
                        livemode=row.livemode, preview=row.preview, key=plaintext, expires_at=row.expires_at,
                        revoked_at=row.revoked_at, last_used_at=row.last_used_at, created_at=row.created_at)


@router.get("", response_model=ApiKeyList)
async def list_keys(principal: PrincipalDep, session: SessionDep, page: pagination.PageDep) -> dict:
    rows = (await session.exec(pagination.apply(scoped(ApiKey, principal), ApiKey, page))).all()
    return pagination.envelope(list(rows), page, public)


@router.post("", status_code=201, response_model=ApiKeyOut)
async def create_key(body: ApiKeyCreate, principal: PrincipalDep, session: SessionDep,
                     settings: SettingsDep) -> ApiKeyOut:
    livemode = body.environment == "live"
    if livemode and not principal.livemode:
        raise Forbidden("A test-mode key cannot create live-mode keys")
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise ValidationFailed.one("expires_at", "in_past", "expires_at must be in the future")
    row, plaintext = await issue_key(session, principal.workspace_id, livemode=livemode,
                                     prefix=settings.api_key_prefix, name=body.name, expires_at=body.expires_at)
    await session.commit()
    return ApiKeyOut(data=public(row, plaintext))


@router.delete("/{key_id}", response_model=ApiKeyOut)
async def revoke(key_id: str, principal: PrincipalDep, session: SessionDep) -> ApiKeyOut:
    row = await get_owned(session, ApiKey, key_id, principal, "API key")
    await revoke_key(session, row)
    await session.commit()
    return ApiKeyOut(data=public(row))
