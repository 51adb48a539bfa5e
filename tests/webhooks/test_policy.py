"""The default delivery policy: exponential backoff from 5 s to 1 h between attempts, over at least 24 hours."""

from __future__ import annotations

from datetime import timedelta

from activities.webhooks import DeliveryPolicy


def test_default_retries_span_at_least_24_hours_with_growing_gaps():
    """The gaps double from 5 s, never exceed 1 h, and the last attempt comes more than 24 h after the first."""
    policy = DeliveryPolicy()
    gaps = [policy.delay_after(n) for n in range(1, policy.max_attempts)]
    assert gaps[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert max(gaps) == timedelta(hours=1) and gaps == sorted(gaps)
    assert timedelta(hours=24) <= sum(gaps, timedelta()) < timedelta(hours=26)
    assert policy.failure_limit == 50


def test_huge_attempt_counts_do_not_overflow():
    """A policy with thousands of attempts still computes its gaps (capped at the maximum interval)."""
    assert DeliveryPolicy(max_attempts=5000).delay_after(4999) == timedelta(hours=1)
