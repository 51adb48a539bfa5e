"""`/v1/profiles`: brands inside a workspace. Accounts and connect sessions belong to one.

With exactly one profile it is the default; with several, calls that create
accounts or sessions must name `profile_id` (see `resolve_profile`).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import func, select

from api import pagination
from api.auth import Principal
from api.deps import PrincipalDep, SessionDep
from api.errors import ERROR_RESPONSES, Conflict, NotFound, ValidationFailed
from api.idempotency import IdempotentRoute
from api.ownership import get_owned, scoped
from api.validators import http_url
from store.models import ConnectSession, Profile, SocialAccount, utcnow
from store.tenancy import profiles_of

router = APIRouter(prefix="/v1/profiles", tags=["profiles"], responses=ERROR_RESPONSES,
                   route_class=IdempotentRoute)


class ProfileBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branding_logo_url: str | None = Field(default=None, max_length=2048)
    branding_display_name: str | None = Field(default=None, max_length=200)
    branding_primary_color: str | None = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$",
                                               description="Hex colour, e.g. #1D4ED8")

    _logo = field_validator("branding_logo_url")(http_url)


class ProfileCreate(ProfileBase):
    name: str = Field(min_length=1, max_length=200)
    idempotency_key: str | None = Field(default=None, max_length=64)


class ProfileUpdate(ProfileBase):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class ProfilePublic(BaseModel):
    id: str
    object: str = "profile"
    name: str
    branding_logo_url: str | None
    branding_display_name: str | None
    branding_primary_color: str | None
    livemode: bool
    created_at: datetime
    updated_at: datetime


class ProfileOut(BaseModel):
    data: ProfilePublic


class ProfileList(BaseModel):
    data: list[ProfilePublic]
    meta: dict


class Deleted(BaseModel):
    id: str
    deleted: bool = True


class DeletedOut(BaseModel):
    data: Deleted


def public(p: Profile) -> ProfilePublic:
    return ProfilePublic(**p.model_dump(include=set(ProfilePublic.model_fields)))


async def resolve_profile(session, principal: Principal, profile_id: str | None) -> Profile:
    """The profile a new account or session belongs to (creating a default one for a new workspace)."""
    if profile_id is not None:
        return await get_owned(session, Profile, profile_id, principal, "Profile")
    profiles = await profiles_of(session, principal.workspace_id, principal.livemode)
    if len(profiles) > 1:
        raise ValidationFailed.one("profile_id", "profile_required",
                                   "This workspace has several profiles: pass profile_id")
    if profiles:
        return profiles[0]
    profile = Profile(workspace_id=principal.workspace_id, livemode=principal.livemode, name="Default")
    session.add(profile)
    await session.flush()
    return profile


@router.get("", response_model=ProfileList)
async def list_profiles(principal: PrincipalDep, session: SessionDep, page: pagination.PageDep) -> dict:
    rows = (await session.exec(pagination.apply(scoped(Profile, principal), Profile, page))).all()
    return pagination.envelope(list(rows), page, public)


@router.post("", status_code=201, response_model=ProfileOut)
async def create_profile(body: ProfileCreate, principal: PrincipalDep, session: SessionDep) -> ProfileOut:
    profile = Profile(workspace_id=principal.workspace_id, livemode=principal.livemode,
                      **body.model_dump(exclude={"idempotency_key"}))
    session.add(profile)
    await session.commit()
    return ProfileOut(data=public(profile))


@router.get("/{profile_id}", response_model=ProfileOut)
async def get_profile(profile_id: str, principal: PrincipalDep, session: SessionDep) -> ProfileOut:
    return ProfileOut(data=public(await get_owned(session, Profile, profile_id, principal, "Profile")))


@router.patch("/{profile_id}", response_model=ProfileOut)
async def update_profile(profile_id: str, body: ProfileUpdate, principal: PrincipalDep,
                         session: SessionDep) -> ProfileOut:
    profile = await get_owned(session, Profile, profile_id, principal, "Profile")
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        raise ValidationFailed.one("name", "required", "name cannot be null")
    for field, value in changes.items():
        setattr(profile, field, value)
    profile.updated_at = utcnow()
    session.add(profile)
    await session.commit()
    return ProfileOut(data=public(profile))


@router.delete("/{profile_id}", response_model=DeletedOut)
async def delete_profile(profile_id: str, principal: PrincipalDep, session: SessionDep) -> DeletedOut:
    profile = await get_owned(session, Profile, profile_id, principal, "Profile")
    for model, what in ((SocialAccount, "account"), (ConnectSession, "connect session")):
        count = (await session.exec(
            select(func.count()).select_from(model).where(model.profile_id == profile.id))).one()
        if count:
            raise Conflict(f"Profile still owns {count} {what}(s); delete them or keep the profile")
    await session.delete(profile)
    await session.commit()
    return DeletedOut(data=Deleted(id=profile_id))
