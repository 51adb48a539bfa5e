"""Workspaces and API keys: shared by the API, the dashboard and the `herald` command."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.crypto import hash_api_key, token
from store.models import ApiKey, Profile, Workspace, utcnow


def generate_key(prefix: str, livemode: bool) -> str:
    return f"{prefix}_{'live' if livemode else 'test'}_{token(32)}"


def key_preview(key: str) -> str:
    prefix, mode, secret = key.split("_", 2)
    return f"{prefix}_{mode}_{secret[:4]}…{secret[-4:]}"


async def create_workspace(session: AsyncSession, name: str) -> Workspace:
    ws = Workspace(name=name)
    session.add(ws)
    await session.flush()
    return ws


async def issue_key(session: AsyncSession, workspace_id: str, *, livemode: bool, prefix: str,
                    name: str = "", expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned once and never stored."""
    plaintext = generate_key(prefix, livemode)
    row = ApiKey(workspace_id=workspace_id, livemode=livemode, name=name, key_hash=hash_api_key(plaintext),
                 preview=key_preview(plaintext), expires_at=expires_at)
    session.add(row)
    await session.flush()
    return row, plaintext


async def revoke_key(session: AsyncSession, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
    return key


async def profiles_of(session: AsyncSession, workspace_id: str, livemode: bool) -> list[Profile]:
    return list((await session.exec(
        select(Profile).where(Profile.workspace_id == workspace_id, Profile.livemode == livemode)
        .order_by(Profile.created_at)
    )).all())
