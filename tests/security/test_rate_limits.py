"""The rate limit is per API key.

Already covered in tests/api/test_rate_limit.py, not repeated here: the X-RateLimit-* headers on every
answer, the 429 RATE_LIMITED with a Retry-After of 1..60 s past the limit, and the same workspace's key of the
other mode still passing.

Added here: a key exhausting its limit limits neither another key of the same workspace and mode nor a key of
another workspace (each starts its own full count); the 429 carries the whole error envelope with the request
id of its X-Request-Id header, a Retry-After that points at the reset, in both dialects; and a limited
request does nothing (a limited create creates nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import text

from api.rate_limit import RateLimiter
from store.db import Database
from tests.conftest import make_settings, ready_stack

LIMIT = 5


@pytest.fixture(scope="module")
async def rstack(module_database, temporal_env):
    async with ready_stack(module_database, temporal_env, rate_limit_per_minute=LIMIT) as stack:
        yield stack


async def exhaust(c, path: str = "/v1/workspace"):
    """Call until the key is limited (a minute boundary in between only starts a new count); the 429."""
    for _ in range(3 * LIMIT):
        r = await c.get(path)
        if r.status_code == 429:
            return r
        assert r.status_code == 200, r.text
    raise AssertionError("the key was never limited")


def assert_limited(r, path: str) -> None:
    assert r.status_code == 429, (path, r.status_code, r.text)
    body = r.json()
    assert body == {"error": {"code": "RATE_LIMITED", "normalized_code": "rate_limited",
                              "message": body["error"]["message"], "issues": []},
                    "request_id": r.headers["x-request-id"]}, body
    assert str(LIMIT) in body["error"]["message"]
    assert body["request_id"].startswith("req_")
    assert r.headers["x-ratelimit-limit"] == str(LIMIT) and r.headers["x-ratelimit-remaining"] == "0"
    retry_after, reset = int(r.headers["retry-after"]), int(r.headers["x-ratelimit-reset"])
    assert 1 <= retry_after <= 60
    # Against the moment the server answered (its Date header), not when this check runs: on a loaded machine
    # the later requests of a test can take seconds.
    answered = parsedate_to_datetime(r.headers["date"]).timestamp()
    assert abs((answered + retry_after) - reset) <= 2, (retry_after, reset, answered)


async def test_one_key_at_its_limit_limits_no_other_key(rstack):
    """Key A1 is limited (429 with the full envelope); a second test key of the same workspace, created over
    the API, and a test key of another workspace each still get their whole count, starting at LIMIT-1
    remaining; A1 stays limited meanwhile."""
    stack = rstack
    other = await stack.new_tenant("Other")
    async with stack.client(stack.tenant.live_key) as live:
        # The same workspace, the same mode: a second test key.
        r = await live.post("/v1/api-keys", json={"name": "second", "environment": "test"})
        assert r.status_code == 201, r.text
        a2 = r.json()["data"]["key"]
    async with stack.client(stack.tenant.test_key) as a1:
        limited = await exhaust(a1)
        assert_limited(limited, "/v1/workspace")
        window = limited.headers["x-ratelimit-reset"]
        for key in (a2, other.test_key):
            async with stack.client(key) as c:
                remaining = []
                for _ in range(LIMIT):
                    r = await c.get("/v1/workspace")
                    assert r.status_code == 200, r.text
                    remaining.append(int(r.headers["x-ratelimit-remaining"]))
                    if r.headers["x-ratelimit-reset"] != window:
                        break  # a new minute began: every key starts again, nothing left to compare
                else:
                    assert remaining == list(range(LIMIT - 1, -1, -1)), remaining
        again = await a1.get("/v1/workspace")
        if again.headers.get("x-ratelimit-reset") == window:
            assert_limited(again, "/v1/workspace")


async def test_a_limited_request_does_nothing_in_either_dialect(rstack):
    """Past the limit, a create (dialect U profile, dialect M end user) answers 429 in the envelope and
    creates nothing; a dialect M read is limited the same way."""
    stack = rstack
    tenant = await stack.new_tenant("Limited")

    async def counts() -> tuple[int, int]:
        async with stack.db.session() as s:
            profiles = (await s.execute(text("SELECT count(*) FROM profiles WHERE workspace_id = :w"),
                                        {"w": tenant.workspace_id})).scalar_one()
            users = (await s.execute(text("SELECT count(*) FROM managed_users WHERE workspace_id = :w"),
                                     {"w": tenant.workspace_id})).scalar_one()
        return profiles, users

    async with stack.client(tenant.test_key) as c:
        for attempt in range(2):
            await exhaust(c)
            window = int(time.time() // 60)
            before = await counts()
            created = await c.post("/v1/profiles", json={"name": "should not exist"})
            upserted = await c.post("/api/v1/end-users", json={"externalUserId": "should-not-exist"})
            listed = await c.get("/api/v1/posts")
            if int(time.time() // 60) != window:
                continue  # the minute rolled over in the middle: try once more in the new one
            for r, path in ((created, "/v1/profiles"), (upserted, "/api/v1/end-users"), (listed, "/api/v1/posts")):
                assert_limited(r, path)
            assert await counts() == before
            break
        else:
            raise AssertionError("two minute boundaries in a row")



async def test_counts_on_their_way_to_the_database_still_count(module_database):
    """The API shares its counts with the database a few times a second (`RateLimiter.sync`). While a sync's
    write is in flight, the requests it carries still count: a key past its limit stays limited during and
    after the sync, and its remaining count never goes back up."""
    db = Database(make_settings(module_database).sqlalchemy_url)
    limiter = RateLimiter(db, LIMIT)
    now = time.time()
    try:
        verdicts = [await limiter.hit("key_in_flight", now) for _ in range(LIMIT + 1)]
        assert [v.count for v in verdicts] == list(range(1, LIMIT + 2)) and not verdicts[-1].allowed

        gate, entered = asyncio.Event(), asyncio.Event()
        real_session = db.session

        @contextlib.asynccontextmanager
        async def held_session():
            entered.set()
            await gate.wait()  # the sync's write is "on its way to the database"
            async with real_session() as s:
                yield s

        db.session = held_session
        syncing = asyncio.create_task(limiter.sync(now))
        await asyncio.wait_for(entered.wait(), 5)
        during = await limiter.hit("key_in_flight", now)
        gate.set()
        await asyncio.wait_for(syncing, 10)
        db.session = real_session
        after = await limiter.hit("key_in_flight", now)
    finally:
        await db.close()
    assert (during.count, during.allowed) == (LIMIT + 2, False), during
    assert (after.count, after.allowed) == (LIMIT + 3, False), after
