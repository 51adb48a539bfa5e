"""200 posts to 3 platforms each through a sandbox fault storm, with the worker SIGKILLed at random points.

The storm, on every publish call of X, LinkedIn and Bluesky: 30% answered 5xx, 10% 429 with Retry-After (X
and Bluesky: LinkedIn sends no Retry-After, its quotas are daily, so Herald rightly waits up to an hour there),
5% accepted and then the connection dropped, 3% with the account's access token expired just before. The
worker is a real `python worker.py`, killed with SIGKILL three times at random moments of the fan-out and
restarted each time. See tests/fault/support.py for what is asserted.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest

from tests.conftest import start_stack
from tests.fault.support import PLATFORMS, tally, wait_terminal
from tests.support.accounts import connect_bluesky, connect_oauth, fault
from tests.support.processes import spawn_worker, stop

POSTS = int(os.environ.get("HERALD_FAULT_POSTS", "200"))
# The sandbox enforces X's per-user limit (100 tweet requests per 15 minutes, retries included): 25 posts each.
ACCOUNTS_PER_PLATFORM = 8
KILLS = 3
PUBLISH_PATH = {"twitter": "/2/tweets", "linkedin": "/rest/posts", "bluesky": "createRecord"}
STORM = (("http_5xx", 0.30, {"status": 503}), ("rate_limit", 0.10, {"retry_after": 1.0}),
         ("drop_after_accept", 0.05, {}), ("expire_token", 0.03, {}))


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_fault_storm_and_worker_kills(database, temporal_env, tmp_path, request):
    rng = random.Random(os.environ.get("HERALD_FAULT_SEED"))
    # Retries back off from 0.2 s to at most 2 s (production: 1 s to 5 min), so the storm drains within CI time;
    # every retry still goes through the ledger and reconciliation like any other.
    stack, close = await start_stack(database, temporal_env, worker=False, immediate_publish_wait_seconds=0,
                                     rate_limit_per_minute=100_000, platform_retry_first_seconds=0.2,
                                     platform_retry_longest_seconds=2.0)
    worker = None
    try:
        async with stack.client(stack.tenant.test_key) as c:
            accounts = {p: [] for p in PLATFORMS}
            for i in range(ACCOUNTS_PER_PLATFORM):
                accounts["twitter"].append(await connect_oauth(stack, "twitter", f"storm{i}"))
                accounts["linkedin"].append(await connect_oauth(stack, "linkedin", f"storm{i}"))
                accounts["bluesky"].append(await connect_bluesky(c, f"storm{i}.test"))
            for platform, path in PUBLISH_PATH.items():
                await fault(stack, platform, "latency", path_contains=path, latency_ms=50, times=None)
                for kind, probability, spec in STORM:
                    if kind == "rate_limit" and platform == "linkedin":
                        continue
                    await fault(stack, platform, kind, path_contains=path, probability=probability, times=None,
                                **spec)
            log = tmp_path / "worker.log"
            worker = spawn_worker(stack.settings, log)

            async def submit(i: int) -> str:
                body = {"caption": f"storm {i}",
                        "account_ids": [accounts[p][i % ACCOUNTS_PER_PLATFORM] for p in PLATFORMS]}
                r = await c.post("/v1/social-posts", json=body, headers={"Idempotency-Key": f"storm-{i}"})
                assert r.status_code == 200, r.text
                return r.json()["data"]["id"]

            async def kill_at_random() -> None:
                nonlocal worker
                for _ in range(KILLS):
                    await asyncio.sleep(rng.uniform(1.0, 5.0))
                    worker.send_signal(signal.SIGKILL)
                    await asyncio.to_thread(worker.wait, 10)
                    worker = spawn_worker(stack.settings, log)

            created: list[str] = []
            killer = asyncio.create_task(kill_at_random())
            for start in range(0, POSTS, 20):
                created += await asyncio.gather(*(submit(i) for i in range(start, min(POSTS, start + 20))))
            await killer
            posts = await wait_terminal(c, created, timeout=240, temporal=temporal_env.client)
        result = await tally(stack, posts, "storm ")
        result.report(request.node, "storm+kills")
        assert result.duplicates == 0 and result.lost == 0, result
        assert result.posts == POSTS and result.targets == 3 * POSTS
        assert result.retries > 0, "the storm caused no retry: the faults did not fire"
    finally:
        stop(worker)
        await close()
