"""The per-key rate limit: headers on every answer, 429 with Retry-After past the limit."""

from __future__ import annotations

import time

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


async def test_replicas_share_the_window(database):
    """Two API processes (two limiters on one database) count one key together, each exactly for its own
    requests and the other's up to its last sync."""
    from api.rate_limit import RateLimiter
    from store.db import Database
    from tests.conftest import make_settings

    db = Database(make_settings(database).sqlalchemy_url)
    try:
        a, b = RateLimiter(db, limit=5), RateLimiter(db, limit=5)
        now = time.time()
        now -= now % 60 - 1  # early in a minute: the test stays inside one window
        assert [(await a.hit("key_1", now)).count for _ in range(3)] == [1, 2, 3]
        await a.sync(now)
        assert (await b.hit("key_1", now)).count == 4  # b's first request reads a's synced count
        await b.sync(now)
        assert (await b.hit("key_1", now)).count == 5
        await a.sync(now)
        assert (await a.hit("key_1", now)).count == 5  # a knows b's synced request, not its unsynced one
        await b.sync(now)
        await a.sync(now)
        verdict = await a.hit("key_1", now)
        assert (verdict.count, verdict.allowed) == (7, False)
        await a.sync(now)
        await b.sync(now)  # b served nothing since its last sync, and still learns a's count
        assert (await b.hit("key_1", now)).count == 8
        assert (await a.hit("key_2", now)).allowed  # another key, its own window
        assert (await a.hit("key_1", now + 60)).count == 1  # the next minute starts over
    finally:
        await db.close()
