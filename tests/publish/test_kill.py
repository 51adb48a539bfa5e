"""The never-duplicate rule under a worker killed with SIGKILL mid-fan-out.

The worker is a real `python worker.py` process. Platform calls are slowed in
the sandbox so the kill lands while posts are in flight; after a restart every
target ends terminal and each platform holds exactly one copy of each post.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest
from sqlalchemy import text

from tests.conftest import start_stack
from tests.support.accounts import connect_bluesky, connect_oauth, fault, sandbox_posts
from tests.support.processes import spawn_worker, stop

POSTS = 12


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
async def test_sigkill_mid_fan_out_loses_nothing_and_duplicates_nothing(database, temporal_env, tmp_path):
    stack, close = await start_stack(database, temporal_env, worker=False, immediate_publish_wait_seconds=0,
                                       rate_limit_per_minute=100_000)
    worker = None
    try:
        x = await connect_oauth(stack, "twitter", "killy")
        li = await connect_oauth(stack, "linkedin", "killy")
        async with stack.client(stack.tenant.test_key) as c:
            bsky = await connect_bluesky(c, "killy.test")
            for platform, path in (("twitter", "/2/tweets"), ("linkedin", "/rest/posts"),
                                   ("bluesky", "createRecord")):
                await fault(stack, platform, "latency", path_contains=path, latency_ms=400, times=None)
            log = tmp_path / "worker.log"
            worker = spawn_worker(stack.settings, log)
            created = []
            for i in range(POSTS):
                r = await c.post("/v1/social-posts", json={"caption": f"kill test {i}", "account_ids": [x, li, bsky]},
                                 headers={"Idempotency-Key": f"kill-{i}"})
                assert r.status_code == 200, r.text
                created.append(r.json()["data"]["id"])
            # The API answers at once (no wait). Kill as soon as the fan-out is under way, so that
            # some calls are in flight, some done and some not started.
            for _ in range(600):
                async with stack.db.session() as s:
                    started = (await s.execute(text("SELECT count(*) FROM publish_attempts"))).scalar_one()
                if started >= 4:
                    break
                await asyncio.sleep(0.05)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            assert worker.returncode == -signal.SIGKILL
            worker = spawn_worker(stack.settings, log)

            deadline = asyncio.get_running_loop().time() + 180
            while True:
                posts = [(await c.get(f"/v1/social-posts/{pid}")).json()["data"] for pid in created]
                if all(p["status"] in ("published", "partial", "failed") for p in posts):
                    break
                assert asyncio.get_running_loop().time() < deadline, [p["status"] for p in posts]
                await asyncio.sleep(1)
        statuses = Counter(r["status"] for p in posts for r in p["results"])
        assert set(statuses) <= {"published", "unconfirmed"}, statuses
        for platform in ("twitter", "linkedin", "bluesky"):
            texts = Counter(p["text"] for p in await sandbox_posts(stack, platform))
            duplicates = {t: n for t, n in texts.items() if n > 1}
            assert not duplicates, (platform, duplicates)
            published = sum(1 for p in posts for r in p["results"]
                            if r["platform"] == platform and r["status"] == "published")
            assert sum(texts.values()) == published, (platform, texts, statuses)
        async with stack.db.session() as s:
            ledger = Counter(r[0] for r in (await s.execute(text("SELECT status FROM publish_attempts"))).all())
            reconciled = (await s.execute(text(
                "SELECT count(*) FROM publish_attempts WHERE error_message LIKE 'reconciled%'"))).scalar_one()
        # The kill cut some calls off: each was reconciled (found, recorded) or found absent and posted again.
        assert ledger["failed"] + reconciled >= 1, ledger
        print(f"posts={POSTS} targets={POSTS * 3} outcome={dict(statuses)} ledger={dict(ledger)} "
              f"reconciled={reconciled} duplicates=0")
        # Attempts cut off by the kill were reconciled: each landed exactly once, as counted above.
        assert ledger["succeeded"] == sum(statuses.values()) - statuses["unconfirmed"]
    finally:
        stop(worker)
        await close()
