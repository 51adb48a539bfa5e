"""`/v1/accounts`: connected social accounts, their health and capabilities."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sqlmodel import select

from adapters.errors import AdapterError, AuthRevoked
from adapters.registry import PLATFORMS, adapter_class
from api import pagination
from api.account_disconnect import disconnect_account
from api.deps import PrincipalDep, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES, AccountAlreadyConnected, ServiceUnavailable, ValidationFailed
from api.idempotency import IdempotentRoute
from api.ownership import get_owned, scoped
from api.platforms import adapter_for
from api.routers.profiles import resolve_profile
from store.accounts import ConnectedIdentity, find_account, upsert_account, upsert_managed_user
from store.events import emit
from store.models import ManagedUser, SocialAccount

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], responses=ERROR_RESPONSES, route_class=IdempotentRoute)


class BlueskyCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str = Field(min_length=3, max_length=253)
    app_password: str = Field(min_length=1, max_length=256)


class AccountConnect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Literal["bluesky"] = Field(description="Direct credential connection supports Bluesky")
    credentials: BlueskyCredentials
    profile_id: str | None = None
    external_user_id: str | None = Field(default=None, max_length=256)
    idempotency_key: str | None = Field(default=None, max_length=64)


class AccountPublic(BaseModel):
    id: str
    object: str = "social_account"
    profile_id: str
    platform: str
    account_name: str | None
    display_name: str | None
    avatar_url: str | None
    external_account_id: str
    external_user_id: str | None
    status: str
    connection_type: str
    livemode: bool
    connected_at: datetime
    token_expires_at: datetime | None


class AccountOut(BaseModel):
    data: AccountPublic


class AccountList(BaseModel):
    data: list[AccountPublic]
    meta: dict


class Health(BaseModel):
    status: str
    token_expires_at: datetime | None
    last_successful_post_at: datetime | None
    last_error: str | None


class HealthOut(BaseModel):
    data: Health


def public(a: SocialAccount, external_user_id: str | None = None) -> AccountPublic:
    return AccountPublic(
        id=a.id, profile_id=a.profile_id, platform=a.platform, account_name=a.account_name,
        display_name=a.display_name, avatar_url=a.avatar_url, external_account_id=a.external_account_id,
        external_user_id=external_user_id, status=a.status, connection_type=a.connection_type, livemode=a.livemode,
        connected_at=a.connected_at, token_expires_at=a.token_expires_at)


async def _external_ids(session, accounts: list[SocialAccount]) -> dict[str, str]:
    ids = {a.managed_user_id for a in accounts if a.managed_user_id}
    if not ids:
        return {}
    rows = (await session.exec(select(ManagedUser).where(ManagedUser.id.in_(ids)))).all()
    return {u.id: u.external_user_id for u in rows}


async def render(session, accounts: list[SocialAccount]) -> list[AccountPublic]:
    ext = await _external_ids(session, accounts)
    return [public(a, ext.get(a.managed_user_id or "")) for a in accounts]


@router.post("/connect", status_code=201, response_model=AccountOut)
async def connect_account(body: AccountConnect, request: Request, principal: PrincipalDep, session: SessionDep,
                          settings: SettingsDep) -> AccountOut:
    """Connect a Bluesky account with its handle and an app password, verified before anything is stored."""
    # Verify with Bluesky before touching the database, so no transaction waits on the network.
    adapter = adapter_for(request, "bluesky", principal.livemode)
    try:
        tokens = await adapter.login(body.credentials.handle.lstrip("@"), body.credentials.app_password)
        profile_info = await adapter.fetch_profile(tokens)
    except AuthRevoked:
        raise ValidationFailed.one("credentials", "invalid_credentials",
                                   "Bluesky refused this handle and app password") from None
    except AdapterError as exc:
        raise ServiceUnavailable(f"Bluesky could not be reached to verify the credentials ({exc.code})") from None
    profile = await resolve_profile(session, principal, body.profile_id)
    existing = await find_account(session, workspace_id=principal.workspace_id, livemode=principal.livemode,
                                  platform="bluesky", external_account_id=profile_info.external_id)
    if existing is not None and existing.status != "disconnected":
        raise AccountAlreadyConnected(f"Bluesky account {profile_info.username or existing.account_name} "
                                      f"is already connected as {existing.id}")
    user = None
    if body.external_user_id:
        user = await upsert_managed_user(session, workspace_id=principal.workspace_id, livemode=principal.livemode,
                                         external_user_id=body.external_user_id)
    account, _ = await upsert_account(
        session,
        ConnectedIdentity(
            platform="bluesky", external_account_id=profile_info.external_id,
            account_name=profile_info.username, display_name=profile_info.display_name,
            avatar_url=profile_info.avatar_url, access_token=tokens.access_token,
            refresh_token=tokens.refresh_token, token_expires_at=tokens.expires_at,
            refresh_expires_at=tokens.refresh_expires_at, scopes=None,
            platform_data={"token_extra": tokens.extra}, app_password=body.credentials.app_password),
        workspace_id=principal.workspace_id, livemode=principal.livemode, profile_id=profile.id,
        connection_type="byo", credential_source="none", managed_user_id=user.id if user else None)
    rendered = public(account, body.external_user_id)
    await emit(session, principal.workspace_id, principal.livemode, "account.connected",
               rendered.model_dump(mode="json"))
    await session.commit()
    return AccountOut(data=rendered)


@router.get("", response_model=AccountList)
async def list_accounts(
    principal: PrincipalDep, session: SessionDep, page: pagination.PageDep,
    platform: Literal[PLATFORMS] | None = None,
    status: Literal["active", "reauth_required", "disconnected"] | None = None,
    profile_id: str | None = Query(default=None, max_length=40),
    external_user_id: str | None = Query(default=None, max_length=256),
) -> dict:
    q = scoped(SocialAccount, principal)
    if platform:
        q = q.where(SocialAccount.platform == platform)
    if status:
        q = q.where(SocialAccount.status == status)
    if profile_id:
        q = q.where(SocialAccount.profile_id == profile_id)
    if external_user_id:
        sub = select(ManagedUser.id).where(ManagedUser.workspace_id == principal.workspace_id,
                                           ManagedUser.livemode == principal.livemode,
                                           ManagedUser.external_user_id == external_user_id)
        q = q.where(SocialAccount.managed_user_id.in_(sub))
    rows = list((await session.exec(pagination.apply(q, SocialAccount, page))).all())
    out = pagination.envelope(rows, page, lambda a: a)
    out["data"] = await render(session, out["data"])
    return out


@router.get("/{account_id}", response_model=AccountOut)
async def get_account(account_id: str, principal: PrincipalDep, session: SessionDep) -> AccountOut:
    account = await get_owned(session, SocialAccount, account_id, principal, "Account")
    return AccountOut(data=(await render(session, [account]))[0])


@router.delete("/{account_id}", response_model=AccountOut)
async def delete_account(account_id: str, request: Request, principal: PrincipalDep,
                         session: SessionDep) -> AccountOut:
    """Disconnect: revoke at the platform where it can, then forget the tokens."""
    account = await get_owned(session, SocialAccount, account_id, principal, "Account")
    await disconnect_account(request, session, account)
    rendered = (await render(session, [account]))[0]
    await emit(session, principal.workspace_id, principal.livemode, "account.disconnected",
               rendered.model_dump(mode="json"))
    await session.commit()
    return AccountOut(data=rendered)


@router.get("/{account_id}/health", response_model=HealthOut)
async def account_health(account_id: str, principal: PrincipalDep, session: SessionDep) -> HealthOut:
    a = await get_owned(session, SocialAccount, account_id, principal, "Account")
    return HealthOut(data=Health(status=a.status, token_expires_at=a.token_expires_at,
                                 last_successful_post_at=a.last_successful_post_at, last_error=a.last_error))


@router.get("/{account_id}/capabilities")
async def account_capabilities(account_id: str, principal: PrincipalDep, session: SessionDep) -> dict:
    a = await get_owned(session, SocialAccount, account_id, principal, "Account")
    return {"data": {"platform": a.platform, **adapter_class(a.platform).capabilities.describe()}}

