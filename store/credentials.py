"""Which OAuth app a workspace uses for a platform: its own (white-label) or the quickstart app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import PlatformCredential
from store.settings import Settings

# Test mode needs no real app: the sandbox platforms accept this built-in quickstart client.
SANDBOX_QUICKSTART = ("herald-sandbox-quickstart", "herald-sandbox-quickstart-secret")


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str | None
    source: str  # "workspace" | "quickstart"


async def workspace_client(session: AsyncSession, workspace_id: str, livemode: bool,
                           platform: str) -> OAuthClient | None:
    row = (await session.exec(select(PlatformCredential).where(
        PlatformCredential.workspace_id == workspace_id, PlatformCredential.livemode == livemode,
        PlatformCredential.platform == platform))).first()
    return OAuthClient(row.client_id, row.client_secret, "workspace") if row else None


def quickstart_client(settings: Settings, platform: str, livemode: bool) -> OAuthClient | None:
    creds = settings.quickstart_credentials.get(platform)
    if creds and creds.get("client_id"):
        return OAuthClient(creds["client_id"], creds.get("client_secret"), "quickstart")
    if not livemode:
        return OAuthClient(*SANDBOX_QUICKSTART, "quickstart")
    return None


async def resolve_client(session: AsyncSession, settings: Settings, *, workspace_id: str, livemode: bool,
                         platform: str, allow_quickstart: bool) -> OAuthClient | None:
    """The white-label rule: the workspace's own app, else quickstart when allowed, else None."""
    own = await workspace_client(session, workspace_id, livemode, platform)
    if own is not None:
        return own
    return quickstart_client(settings, platform, livemode) if allow_quickstart else None


async def client_for_source(session: AsyncSession, settings: Settings, *, workspace_id: str, livemode: bool,
                            platform: str, source: str) -> OAuthClient | None:
    """The app an account's tokens were issued to (refresh must use the same one)."""
    if source == "workspace":
        return await workspace_client(session, workspace_id, livemode, platform)
    if source == "quickstart":
        return quickstart_client(settings, platform, livemode)
    return None
