"""Housekeeping: start posts that were accepted but never dispatched, and purge tables that grow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client

from store.db import Database
from activities.accounts import AccountAccess
from adapters.errors import AdapterError, AuthRevoked
from store.models import IdempotencyRecord, OperatorLog, Post, PostResult, RateLimitWindow, SocialAccount, utcnow
from store.settings import Settings
from temporal_client import start_post_workflow

# A post this old without a workflow was orphaned (Temporal was down, or the API died mid-request).
DISPATCH_GRACE = timedelta(seconds=30)
# Access tokens expiring within this are refreshed ahead of time by the maintenance run.
REFRESH_AHEAD = timedelta(minutes=15)


@dataclass
class PurgeInput:
    now: datetime | None = None
    log_retention_days: int = 30


@dataclass
class PurgeResult:
    idempotency_records: int
    rate_limit_windows: int
    operator_logs: int
    dispatched_posts: int = 0
    refreshed_accounts: int = 0


class MaintenanceActivities:
    def __init__(self, db: Database, client: Client, settings: Settings, accounts: AccountAccess):
        self.db = db
        self.client = client
        self.settings = settings
        self.accounts = accounts

    @activity.defn(name="maintenance.refresh_due_tokens")
    async def refresh_due_tokens(self, params: PurgeInput) -> int:
        """Refresh every active account whose access token expires soon; a grant that will not heal
        marks the account reauth_required (and emits account.reauth_required)."""
        refreshed = 0
        async with self.db.session() as s:
            due = (await s.exec(select(SocialAccount).where(
                SocialAccount.status == "active", SocialAccount.token_expires_at.is_not(None),
                SocialAccount.token_expires_at < params.now + REFRESH_AHEAD).limit(200))).all()
        for account in due:
            try:
                adapter = await self.accounts.adapter(account)
                await self.accounts.refresh(account, adapter, stale_token=account.access_token)
                refreshed += 1
            except AuthRevoked:
                activity.logger.info("account %s needs the user to reconnect", account.id)
            except AdapterError as exc:  # transient: the next run tries again
                activity.logger.warning("refresh of %s failed: %s", account.id, exc.code)
        return refreshed

    @activity.defn(name="maintenance.purge_expired")
    async def purge_expired(self, params: PurgeInput) -> PurgeResult:
        now = params.now
        async with self.db.session() as s:
            idem = await s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now))
            windows = await s.execute(
                delete(RateLimitWindow).where(RateLimitWindow.window_start < int(now.timestamp() // 60) - 1))
            logs = await s.execute(
                delete(OperatorLog).where(OperatorLog.created_at < now - timedelta(days=params.log_retention_days)))
            await s.commit()
        return PurgeResult(idem.rowcount, windows.rowcount, logs.rowcount)

    @activity.defn(name="maintenance.dispatch_orphans")
    async def dispatch_orphans(self, params: PurgeInput) -> int:
        """Start the workflow of every accepted post that has none: no accepted post is ever lost."""
        started = 0
        async with self.db.session() as s:
            orphans = (await s.exec(select(Post).where(
                Post.dispatched_at.is_(None), Post.status.in_(("scheduled", "publishing")),
                Post.created_at < params.now - DISPATCH_GRACE).limit(500))).all()
            for post in orphans:
                platforms = sorted(set((await s.exec(
                    select(PostResult.platform).where(PostResult.post_id == post.id))).all()))
                if await start_post_workflow(self.client, self.settings, post, platforms):
                    started += 1
                    activity.logger.info("dispatched orphaned post %s", post.id)
                post.dispatched_at = utcnow()
                s.add(post)
            await s.commit()
        return started
