"""`/v1/connect/sessions`: hosted onboarding sessions (seeds 000 and 001)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.registry import PLATFORMS
from api.connect_service import NewSession, SessionClosedError, create_session, hosted_url, run_update
from api.deps import PrincipalDep, SessionDep, StateDep
from api.errors import ERROR_RESPONSES, Conflict
from api.idempotency import IdempotentRoute
from api.ownership import get_owned
from api.validators import http_url
from store.models import ConnectSession
from workflows.connect import ConnectSessionWorkflow

router = APIRouter(prefix="/v1/connect/sessions", tags=["connect sessions"], responses=ERROR_RESPONSES,
                   route_class=IdempotentRoute)


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Literal[PLATFORMS]
    external_user_id: str = Field(min_length=1, max_length=256)
    external_user_email: str | None = Field(default=None, max_length=320)
    return_url: str | None = Field(default=None, max_length=2048)
    profile_id: str | None = Field(default=None, max_length=40)
    allow_quickstart_creds: bool = False
    idempotency_key: str | None = Field(default=None, max_length=64)

    _return_url = field_validator("return_url")(http_url)


class SessionPublic(BaseModel):
    id: str
    object: str = "connect_session"
    url: str
    status: str
    platform: str
    profile_id: str
    external_user_id: str
    external_user_email: str | None
    return_url: str | None
    allow_quickstart_creds: bool
    livemode: bool
    last_error: str | None
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None
    completed_social_account_id: str | None
    managed_account_id: str | None


class SessionOut(BaseModel):
    data: SessionPublic


def public(state, row: ConnectSession) -> SessionPublic:
    return SessionPublic(
        id=row.id, url=hosted_url(state, row.id), status=row.status, platform=row.platform,
        profile_id=row.profile_id, external_user_id=row.external_user_id, external_user_email=row.external_user_email,
        return_url=row.return_url, allow_quickstart_creds=row.allow_quickstart_creds, livemode=row.livemode,
        last_error=row.last_error, created_at=row.created_at, expires_at=row.expires_at,
        completed_at=row.completed_at, completed_social_account_id=row.completed_social_account_id,
        managed_account_id=row.completed_social_account_id)


@router.post("", status_code=201, response_model=SessionOut)
async def create(body: SessionCreate, principal: PrincipalDep, session: SessionDep, state: StateDep) -> SessionOut:
    row = await create_session(state, session, principal, NewSession(
        platform=body.platform, external_user_id=body.external_user_id, external_user_email=body.external_user_email,
        return_url=body.return_url, profile_id=body.profile_id, allow_quickstart_creds=body.allow_quickstart_creds))
    return SessionOut(data=public(state, row))


@router.get("/{session_id}", response_model=SessionOut)
async def get(session_id: str, principal: PrincipalDep, session: SessionDep, state: StateDep) -> SessionOut:
    return SessionOut(data=public(state, await get_owned(session, ConnectSession, session_id, principal,
                                                          "Connect session")))


@router.post("/{session_id}/cancel", response_model=SessionOut)
async def cancel(session_id: str, principal: PrincipalDep, session: SessionDep, state: StateDep) -> SessionOut:
    row = await get_owned(session, ConnectSession, session_id, principal, "Connect session")
    if row.status != "pending":
        raise Conflict(f"The connect session is {row.status}")
    try:
        await run_update(state, row.id, ConnectSessionWorkflow.cancel, None)
    except SessionClosedError as exc:
        raise Conflict(str(exc)) from None
    await session.refresh(row)
    return SessionOut(data=public(state, row))
