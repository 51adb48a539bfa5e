"""Acting as a connected account: decrypted tokens in, refreshed tokens persisted.

Refreshes are serialised per account (a row lock on PostgreSQL, a process
lock everywhere), because platforms that rotate refresh tokens invalidate
the old one: two concurrent refreshes would otherwise lock the user out.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime

import httpx
from sqlmodel import select

from adapters.base import AccountAuth, ClientCredentials, PlatformAdapter, TokenSet
from adapters.errors import AuthExpired, AuthRevoked, TransientError
from adapters.factory import make_adapter
from observability import metrics
from store.accounts import store_tokens
from store.credentials import client_for_source
from store.db import Database
from store.events import emit
from store.models import SocialAccount, utcnow
from store.settings import Settings

# Refresh this long before the access token expires.
REFRESH_MARGIN_SECONDS = 300


class AccountAccessError(Exception):
    """The account cannot be used (disconnected, or needs the user to reconnect)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def tokens_of(account: SocialAccount) -> TokenSet:
    return TokenSet(
        access_token=account.access_token or "",
        refresh_token=account.refresh_token,
        expires_at=account.token_expires_at.timestamp() if account.token_expires_at else None,
        refresh_expires_at=account.refresh_expires_at.timestamp() if account.refresh_expires_at else None,
        extra=dict(account.platform_data.get("token_extra", {})),
    )


def auth_of(account: SocialAccount) -> AccountAuth:
    return AccountAuth(external_id=account.external_account_id, tokens=tokens_of(account),
                       username=account.account_name)


class AccountAccess:
    def __init__(self, db: Database, http: httpx.AsyncClient, settings: Settings):
        self.db = db
        self.http = http
        self.settings = settings
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def adapter(self, account: SocialAccount) -> PlatformAdapter:
        async with self.db.session() as s:
            creds = await client_for_source(s, self.settings, workspace_id=account.workspace_id,
                                            livemode=account.livemode, platform=account.platform,
                                            source=account.credential_source)
        client = ClientCredentials(creds.client_id, creds.client_secret) if creds else None
        return make_adapter(account.platform, self.http, livemode=account.livemode,
                            sandbox_url=self.settings.sandbox_url, overrides=self.settings.provider_overrides,
                            client=client)

    async def load(self, account_id: str) -> SocialAccount:
        async with self.db.session() as s:
            return self.check(await s.get(SocialAccount, account_id))

    @staticmethod
    def check(account: SocialAccount | None) -> SocialAccount:
        if account is None or account.status == "disconnected":
            raise AccountAccessError("account_disconnected", "The account was disconnected; reconnect it")
        if account.status == "reauth_required":
            raise AccountAccessError("reauth_required",
                                     "The account's authorization was revoked or expired; the user must reconnect")
        return account

    async def usable(self, account: str | SocialAccount) -> tuple[SocialAccount, PlatformAdapter]:
        """The account (by id, or as the caller just read it) with a fresh access token, refreshing first if it
        is about to expire."""
        account = await self.load(account) if isinstance(account, str) else self.check(account)
        adapter = await self.adapter(account)
        expires = account.token_expires_at
        if expires is not None and expires.timestamp() - time.time() < REFRESH_MARGIN_SECONDS:
            account = await self.refresh(account, adapter, stale_token=account.access_token)
        return account, adapter

    async def refresh(self, account: SocialAccount, adapter: PlatformAdapter, *, stale_token: str | None) -> SocialAccount:
        """Refresh once; if another caller already refreshed since `stale_token`, use its tokens."""
        async with self._locks[account.id]:
            async with self.db.session() as s:
                row = (await s.exec(select(SocialAccount).where(SocialAccount.id == account.id)
                                    .with_for_update())).one()
                if row.access_token != stale_token and row.status == "active":
                    return row
                try:
                    fresh = await self._refresh_at_platform(adapter, row)
                except AuthRevoked as exc:
                    metrics.TOKEN_REFRESHES.labels(row.platform, "revoked").inc()
                    await self.mark_reauth_required(s, row, exc.message)
                    await s.commit()
                    raise
                except Exception:
                    metrics.TOKEN_REFRESHES.labels(row.platform, "failed").inc()
                    raise
                metrics.TOKEN_REFRESHES.labels(row.platform, "succeeded").inc()
                store_tokens(row, access_token=fresh.access_token, refresh_token=fresh.refresh_token,
                             expires_at=fresh.expires_at, refresh_expires_at=fresh.refresh_expires_at,
                             extra=fresh.extra)
                s.add(row)
                await s.commit()
                return row

    async def _refresh_at_platform(self, adapter: PlatformAdapter, row: SocialAccount) -> TokenSet:
        tokens = tokens_of(row)
        if row.platform == "bluesky" and row.app_password and row.refresh_expires_at is not None \
                and row.refresh_expires_at <= datetime.now(UTC):
            # The refresh JWT lapsed: a stored app password can open a new session without the user.
            return await adapter.login(row.account_name or row.external_account_id, row.app_password)
        try:
            return await adapter.refresh(tokens)
        except AuthRevoked:
            if row.platform == "bluesky" and row.app_password:
                return await adapter.login(row.account_name or row.external_account_id, row.app_password)
            raise

    async def mark_reauth_required(self, s, row: SocialAccount, reason: str) -> None:
        if row.status == "reauth_required":
            return
        row.status = "reauth_required"
        row.last_error = reason[:500]
        row.updated_at = utcnow()
        s.add(row)
        await emit(s, row.workspace_id, row.livemode, "account.reauth_required",
                   {"id": row.id, "platform": row.platform, "account_name": row.account_name,
                    "profile_id": row.profile_id, "last_error": row.last_error})

    async def call(self, account: str | SocialAccount, fn):
        """Run `fn(account, adapter)`; on AuthExpired refresh and run it once more."""
        account, adapter = await self.usable(account)
        try:
            return await fn(account, adapter)
        except AuthExpired:
            account = await self.refresh(account, adapter, stale_token=account.access_token)
            try:
                return await fn(account, adapter)
            except AuthExpired as exc:
                # A token refreshed a moment ago refused as expired: another call's refresh raced this one, or
                # the platform expired it again at once. Nothing was created (a 401 comes first), so the activity
                # retries later and refreshes anew instead of failing a target whose account is fine.
                raise TransientError(f"{exc.message} (again, right after a refresh)", code=exc.code) from None
