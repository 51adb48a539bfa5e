"""The per-key rate limit: headers on every answer, 429 with Retry-After past the limit."""

from __future__ import annotations

import pytest

from tests.conftest import start_stack


@pytest.fixture
async def tight_stack(database, temporal_env):
    s, close = await start_stack(database, temporal_env, rate_limit_per_minute=5)
    try:
        yield s
    finally:
        await close()


async def test_limit_is_enforced_per_key(tight_stack):
    """The sixth request in a minute is a 429; another key of the same workspace still passes."""
    stack = tight_stack
    async with stack.client(stack.tenant.test_key) as c:
        remaining = []
        for _ in range(5):
            r = await c.get("/v1/workspace")
            assert r.status_code == 200
            assert r.headers["x-ratelimit-limit"] == "5"
            remaining.append(int(r.headers["x-ratelimit-remaining"]))
        assert remaining == [4, 3, 2, 1, 0] or remaining[-1] == 0
        r = await c.get("/v1/workspace")
        if r.status_code == 200:  # the minute rolled over between requests: one more window
            for _ in range(5):
                r = await c.get("/v1/workspace")
        assert r.status_code == 429
        body = r.json()
        assert body["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["x-ratelimit-remaining"] == "0"
        assert int(r.headers["x-ratelimit-reset"]) > 0
    async with stack.client(stack.tenant.live_key) as c:
        assert (await c.get("/v1/workspace")).status_code == 200
