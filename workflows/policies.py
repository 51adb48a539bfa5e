"""Retry policies and timeouts: named once, used by every workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

DB_TIMEOUT = timedelta(seconds=30)
REFRESH_TIMEOUT = timedelta(minutes=5)  # up to 200 token refreshes, one platform call each
DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                       maximum_interval=timedelta(seconds=30), maximum_attempts=10)

# Platform calls: transient errors and 429s back off exponentially; a RateLimited failure carries the
# platform's Retry-After as the next retry delay. Permanent errors are raised non-retryable.
PLATFORM_TIMEOUT = timedelta(minutes=30)  # large video uploads
# Platform activities heartbeat every 2 s: a worker that dies mid-call is noticed within this.
PLATFORM_HEARTBEAT = timedelta(seconds=10)
PLATFORM_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                             maximum_interval=timedelta(minutes=5), maximum_attempts=12)
# How many times a branch polls one piece of platform processing before giving up.
POLL_LIMIT = 240

# Completing a connect: the user is waiting on the page, so retry transient platform errors briefly.
CONNECT_TIMEOUT = timedelta(seconds=30)
CONNECT_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
                            maximum_interval=timedelta(seconds=5), maximum_attempts=4)
