"""What every fault run asserts, and the counts it prints.

Every post ends terminal; no result stays `publishing`; each target is on its platform at most once (the
sandbox's own record says so); every post on a platform is recorded as a published (or, where the platform
could not tell, unconfirmed) result, so nothing that was published is lost.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import text

from tests.support.accounts import sandbox_posts

TERMINAL = {"published", "partial", "failed", "cancelled"}
# The user property under which a run's counts reach the end of the report (tests/conftest.py); a
# property travels with the test's report, also from pytest-xdist workers.
COUNTS = "fault_counts"
PLATFORMS = ("twitter", "linkedin", "bluesky")


@dataclass
class Tally:
    posts: int
    targets: int
    published: int
    failed: int
    unconfirmed: int
    duplicates: int
    lost: int
    retries: int
    reconciled: int
    failures: dict[str, int]
    # For each lost target: its result and its attempt ledger, so a failure says what happened.
    lost_detail: list[str] = field(default_factory=list)

    def report(self, node, name: str, extra: str = "") -> str:
        line = self.line(name) + (f" {extra}" if extra else "")
        node.user_properties.append((COUNTS, line))
        return line

    def line(self, name: str) -> str:
        return (f"[{name}] posts={self.posts} targets={self.targets} published={self.published} "
                f"failed={self.failed} unconfirmed={self.unconfirmed} duplicates={self.duplicates} "
                f"lost={self.lost} retries={self.retries} reconciled={self.reconciled} failures={self.failures}")


async def pending_work(temporal, post_id: str) -> list[str]:
    """What a stuck post's workflow is waiting on: its pending activities with their last failure."""
    desc = await temporal.get_workflow_handle(f"post/{post_id}").describe()
    out = [f"workflow {desc.status.name if desc.status else '?'}"]
    for act in desc.raw_description.pending_activities:
        out.append(f"{act.activity_type.name} attempt={act.attempt} state={act.state} "
                   f"last_failure={act.last_failure.message[:160]!r} next={act.next_attempt_schedule_time.ToDatetime()}")
    return out


async def wait_terminal(client, post_ids: list[str], timeout: float, temporal=None) -> list[dict]:
    """Poll the posts (as a customer would) until every one is terminal; return them."""
    deadline = asyncio.get_running_loop().time() + timeout
    done: dict[str, dict] = {}
    while True:
        waiting = [pid for pid in post_ids if pid not in done]
        stuck = []
        for i in range(0, len(waiting), 20):
            answers = await asyncio.gather(*(client.get(f"/v1/social-posts/{pid}") for pid in waiting[i:i + 20]))
            for r in answers:
                assert r.status_code == 200, r.text
                post = r.json()["data"]
                if post["status"] in TERMINAL:
                    done[post["id"]] = post
                else:
                    stuck.append((post["id"], post["status"], [r["status"] for r in post["results"]]))
        if len(done) == len(post_ids):
            return [done[pid] for pid in post_ids]
        if asyncio.get_running_loop().time() > deadline:
            detail = [await pending_work(temporal, pid) for pid, *_ in stuck[:3]] if temporal else []
            raise AssertionError(f"{len(stuck)} posts not terminal after {timeout:.0f} s: {stuck[:5]} {detail}")
        await asyncio.sleep(1)


async def tally(stack, posts: list[dict], caption_prefix: str) -> Tally:
    results = [r for p in posts for r in p["results"]]
    statuses = Counter(r["status"] for r in results)
    assert statuses["publishing"] == 0 and statuses["pending"] == 0, statuses
    duplicates = lost = 0
    lost_results = []
    for platform in PLATFORMS:
        on_platform = Counter(p["text"] for p in await sandbox_posts(stack, platform)
                              if p["text"].startswith(caption_prefix))
        duplicates += sum(n - 1 for n in on_platform.values() if n > 1)
        recorded = {p["caption"] for p in posts for r in p["results"]
                    if r["platform"] == platform and r["status"] in ("published", "unconfirmed")}
        missing = [caption for caption in on_platform if caption not in recorded]
        lost += len(missing)
        lost_results += [r for p in posts if p["caption"] in missing for r in p["results"]
                         if r["platform"] == platform]
    async with stack.db.session() as s:
        ids = [r["id"] for r in results]
        rows = (await s.execute(text(
            "SELECT result_id, step, status, error_message, started_at, finished_at FROM publish_attempts"
            " ORDER BY started_at"))).all()
    mine = [row for row in rows if row[0] in set(ids)]
    steps = {(row[0], row[1]) for row in mine}
    reconciled = sum(1 for row in mine if (row[3] or "").startswith("reconciled"))
    return Tally(posts=len(posts), targets=len(results), published=statuses["published"],
                 failed=statuses["failed"], unconfirmed=statuses["unconfirmed"], duplicates=duplicates,
                 lost_detail=[f"{r['id']} {r['status']} {r['error_code']}: {r['error_message']} ledger="
                              f"{[tuple(row[1:]) for row in mine if row[0] == r['id']]}" for r in lost_results],
                 lost=lost, retries=len(mine) - len(steps), reconciled=reconciled,
                 failures=dict(Counter(f"{r['platform']}:{r['error_code']}" for r in results
                                       if r["status"] == "failed")))
