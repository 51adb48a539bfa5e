"""Connected social accounts and managed users: the one place that writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import ManagedUser, SocialAccount, utcnow


@dataclass
class ConnectedIdentity:
    """What a connect produced, in plain fields (no adapter types in the store)."""

    platform: str
    external_account_id: str
    account_name: str | None
    display_name: str | None
    avatar_url: str | None
    access_token: str
    refresh_token: str | None
    token_expires_at: float | None
    refresh_expires_at: float | None
    scopes: str | None
    platform_data: dict[str, Any] = field(default_factory=dict)
    app_password: str | None = None


def _ts(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


async def upsert_managed_user(session: AsyncSession, *, workspace_id: str, livemode: bool, external_user_id: str,
                              email: str | None = None, display_name: str | None = None,
                              metadata: dict | None = None) -> ManagedUser:
    user = (await session.exec(select(ManagedUser).where(
        ManagedUser.workspace_id == workspace_id, ManagedUser.livemode == livemode,
        ManagedUser.external_user_id == external_user_id))).first()
    if user is None:
        user = ManagedUser(workspace_id=workspace_id, livemode=livemode, external_user_id=external_user_id)
    if email is not None:
        user.email = email
    if display_name is not None:
        user.display_name = display_name
    if metadata is not None:
        user.metadata_ = metadata
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()
    return user


async def find_account(session: AsyncSession, *, workspace_id: str, livemode: bool, platform: str,
                       external_account_id: str) -> SocialAccount | None:
    return (await session.exec(select(SocialAccount).where(
        SocialAccount.workspace_id == workspace_id, SocialAccount.livemode == livemode,
        SocialAccount.platform == platform, SocialAccount.external_account_id == external_account_id))).first()


async def upsert_account(session: AsyncSession, identity: ConnectedIdentity, *, workspace_id: str, livemode: bool,
                         profile_id: str, connection_type: str, credential_source: str,
                         managed_user_id: str | None = None) -> tuple[SocialAccount, bool]:
    """Create the account, or update the existing one in place (same id, new tokens, active).

    Returns (account, created).
    """
    account = await find_account(session, workspace_id=workspace_id, livemode=livemode, platform=identity.platform,
                                 external_account_id=identity.external_account_id)
    created = account is None
    now = utcnow()
    if account is None:
        account = SocialAccount(workspace_id=workspace_id, livemode=livemode, profile_id=profile_id,
                                platform=identity.platform, external_account_id=identity.external_account_id,
                                connected_at=now)
    account.profile_id = profile_id
    account.managed_user_id = managed_user_id or account.managed_user_id
    account.account_name = identity.account_name
    account.display_name = identity.display_name
    account.avatar_url = identity.avatar_url
    account.access_token = identity.access_token
    account.refresh_token = identity.refresh_token
    account.app_password = identity.app_password or account.app_password
    account.token_expires_at = _ts(identity.token_expires_at)
    account.refresh_expires_at = _ts(identity.refresh_expires_at)
    account.scopes = identity.scopes
    account.platform_data = identity.platform_data
    account.connection_type = connection_type
    account.credential_source = credential_source
    account.status = "active"
    account.last_error = None
    account.disconnected_at = None
    if not created:
        account.connected_at = account.connected_at or now
    account.updated_at = now
    session.add(account)
    await session.flush()
    return account, created


def store_tokens(account: SocialAccount, *, access_token: str, refresh_token: str | None,
                 expires_at: float | None, refresh_expires_at: float | None, extra: dict[str, Any]) -> None:
    """Persist a refresh's result: the newest refresh token always replaces the old one."""
    account.access_token = access_token
    if refresh_token:
        account.refresh_token = refresh_token
        account.refresh_expires_at = _ts(refresh_expires_at) or account.refresh_expires_at
    account.token_expires_at = _ts(expires_at)
    account.platform_data = {**account.platform_data, "token_extra": extra}
    account.status = "active"
    account.last_error = None
    account.updated_at = utcnow()
