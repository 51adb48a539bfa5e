"""Housekeeping of tables that grow with traffic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from temporalio import activity

from store.db import Database
from store.models import IdempotencyRecord, OperatorLog, RateLimitWindow


@dataclass
class PurgeInput:
    now: datetime | None = None
    log_retention_days: int = 30


@dataclass
class PurgeResult:
    idempotency_records: int
    rate_limit_windows: int
    operator_logs: int


class MaintenanceActivities:
    def __init__(self, db: Database):
        self.db = db

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
