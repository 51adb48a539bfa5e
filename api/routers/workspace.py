"""`/v1/workspace`: the workspace the API key belongs to."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PrincipalDep, SessionDep
from api.errors import ERROR_RESPONSES, NotFound
from store.models import Workspace, utcnow

router = APIRouter(prefix="/v1/workspace", tags=["workspace"], responses=ERROR_RESPONSES)


class WorkspacePublic(BaseModel):
    id: str
    object: str = "workspace"
    name: str
    per_account_monthly_limit: int | None
    livemode: bool
    created_at: datetime


class WorkspaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    per_account_monthly_limit: int | None = Field(default=None, ge=1, le=1_000_000,
                                                  description="Posts per account per calendar month; null = unlimited")


class WorkspaceOut(BaseModel):
    data: WorkspacePublic


def public(ws: Workspace, livemode: bool) -> WorkspacePublic:
    return WorkspacePublic(id=ws.id, name=ws.name, per_account_monthly_limit=ws.per_account_monthly_limit,
                           livemode=livemode, created_at=ws.created_at)


async def _load(session, principal) -> Workspace:
    ws = await session.get(Workspace, principal.workspace_id)
    if ws is None:
        raise NotFound("Workspace")
    return ws


@router.get("", response_model=WorkspaceOut)
async def get_workspace(principal: PrincipalDep, session: SessionDep) -> WorkspaceOut:
    return WorkspaceOut(data=public(await _load(session, principal), principal.livemode))


@router.patch("", response_model=WorkspaceOut)
async def update_workspace(body: WorkspaceUpdate, principal: PrincipalDep, session: SessionDep) -> WorkspaceOut:
    ws = await _load(session, principal)
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        changes.pop("name")
    for field, value in changes.items():
        setattr(ws, field, value)
    ws.updated_at = utcnow()
    session.add(ws)
    await session.commit()
    return WorkspaceOut(data=public(ws, principal.livemode))
