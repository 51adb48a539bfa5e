"""Retry policies and timeouts: named once, used by every workflow."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass
class PlatformRetry:
    """An operator's platform retry policy (settings `platform_retry_*`), carried in the workflow's input."""

    first_seconds: float
    longest_seconds: float
    attempts: int

    def policy(self) -> RetryPolicy:
        return RetryPolicy(initial_interval=timedelta(seconds=self.first_seconds), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=max(self.first_seconds, self.longest_seconds)),
                           maximum_attempts=self.attempts)
# How many times a branch polls one piece of platform processing before giving up.
POLL_LIMIT = 240

# Completing a connect: the user is waiting on the page, so retry transient platform errors briefly.
CONNECT_TIMEOUT = timedelta(seconds=30)
CONNECT_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
                            maximum_interval=timedelta(seconds=5), maximum_attempts=4)

# Webhook deliveries: one attempt is a 10 s HTTP call; retries back off 5 s, 10 s, ... up to 1 h between
# attempts, and 34 attempts span just over 24 h (5 s * (2^10 - 1) + 23 * 1 h). After the last one, the
# delivery has failed; WEBHOOK_FAILURE_LIMIT failed deliveries in a row disable the subscription.
WEBHOOK_REQUEST_TIMEOUT = timedelta(seconds=10)
WEBHOOK_ATTEMPT_TIMEOUT = timedelta(seconds=60)  # the activity: DNS, the request, the bookkeeping
WEBHOOK_FIRST_RETRY = timedelta(seconds=5)
WEBHOOK_MAX_RETRY_INTERVAL = timedelta(hours=1)
WEBHOOK_BACKOFF = 2.0
WEBHOOK_MAX_ATTEMPTS = 34
WEBHOOK_FAILURE_LIMIT = 50
# The outbox loop: how often it looks for new events, and how it retries its database reads (forever: the
# loop must never end on a database outage).
WEBHOOK_OUTBOX_POLL = timedelta(seconds=1)
WEBHOOK_OUTBOX_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                   maximum_interval=timedelta(seconds=10), maximum_attempts=0)
