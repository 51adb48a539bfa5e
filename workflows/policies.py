"""Retry policies and timeouts: named once, used by every workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                       maximum_interval=timedelta(seconds=30), maximum_attempts=10)
