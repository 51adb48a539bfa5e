"""`/v1/users`: managed users (the customer's end users) and their account counts."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import select

from api import pagination
from api.deps import PrincipalDep, SessionDep
from api.errors import ERROR_RESPONSES, NotFound
from api.ownership import scoped
from store.models import ManagedUser, SocialAccount

router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERROR_RESPONSES)


class UserPublic(BaseModel):
    object: str = "managed_user"
    external_user_id: str
    external_user_email: str | None
    account_count: int
    platform_counts: dict[str, int]
    livemode: bool


class UserOut(BaseModel):
    data: UserPublic


class UserList(BaseModel):
    data: list[UserPublic]
    meta: dict


async def render(session, users: list[ManagedUser]) -> list[UserPublic]:
    ids = [u.id for u in users]
    accounts = (await session.exec(select(SocialAccount.managed_user_id, SocialAccount.platform).where(
        SocialAccount.managed_user_id.in_(ids), SocialAccount.status != "disconnected"))).all() if ids else []
    per_user: dict[str, Counter] = {}
    for user_id, platform in accounts:
        per_user.setdefault(user_id, Counter())[platform] += 1
    return [UserPublic(external_user_id=u.external_user_id, external_user_email=u.email,
                       account_count=sum(per_user.get(u.id, Counter()).values()),
                       platform_counts=dict(per_user.get(u.id, Counter())), livemode=u.livemode) for u in users]


@router.get("", response_model=UserList)
async def list_users(principal: PrincipalDep, session: SessionDep, page: pagination.PageDep) -> dict:
    rows = list((await session.exec(pagination.apply(scoped(ManagedUser, principal), ManagedUser, page))).all())
    out = pagination.envelope(rows, page, lambda u: u)
    out["data"] = await render(session, out["data"])
    return out


@router.get("/{external_user_id}", response_model=UserOut)
async def get_user(external_user_id: str, principal: PrincipalDep, session: SessionDep) -> UserOut:
    user = (await session.exec(scoped(ManagedUser, principal).where(
        ManagedUser.external_user_id == external_user_id))).first()
    if user is None:
        raise NotFound("User")
    return UserOut(data=(await render(session, [user]))[0])
