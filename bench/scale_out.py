"""Scale-out: one API and one worker against two of each, on one Temporal server and one PostgreSQL database.

    .venv/bin/python bench/scale_out.py [--posts 300] [--postgres postgresql://postgres@127.0.0.1:5432]

The same 3-target throughput run as bench/publish_bench.py (immediate posts from 50 closed-loop clients, then
wait until every workflow has closed), three times on one stack: with one API and one worker, then with a
second API replica and a second worker started beside them (clients alternate between the two APIs; both
workers poll the same task queue), then with the extra pair stopped again, so that a slower machine late in
the run shows up as a drop of the last figure rather than as a gain of the middle one.

After each run it checks the sandbox's own record: every target posted exactly once (no duplicate, none
missing) and every post `published` in the database. It prints the figures and writes JSON (default
`bench/results/scale-out-<time>.json`). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from temporalio.client import Client  # noqa: E402

from bench.accounts import PLATFORMS, connect_pools  # noqa: E402
from bench.measure import TAG, CpuMeter, closed_loop, tag, wait_closed  # noqa: E402
from bench.publish_bench import create_tenant, set_latency  # noqa: E402
from bench.stack import CLIENT_LIMITS, ROOT, free_port, new_stack  # noqa: E402
from store import crypto  # noqa: E402

TARGETS = 3
CLIENTS = 50
EXTRA = ("api2", "worker2")


async def run_phase(name: str, stack, apis: list[httpx.AsyncClient], pools, temporal: Client, n: int) -> dict:
    errors: Counter[str] = Counter()
    plan = [pools.targets(TARGETS, offset=i) for i in range(n)]

    async def submit(i: int) -> None:
        body = {"caption": tag(name, "h", i), "account_ids": [a.id for a in plan[i]]}
        resp = await apis[i % len(apis)].post("/v1/social-posts", json=body)
        if not resp.is_success:
            errors[f"{resp.status_code}: {resp.text[:160]}"] += 1

    meter = CpuMeter(stack.cpu)
    since = datetime.now(UTC) - timedelta(seconds=1)
    meter.start()
    t0 = time.time()
    times = await closed_loop(n, CLIENTS, submit)
    closes = await wait_closed(temporal, "PublishPostWorkflow", since, n, timeout=120 + n)
    cpu = meter.stop()
    wall = max(closes) - t0
    check = await exactly_once(stack, apis[0], name, n)
    out = {"apis": len(apis), "workers": len([p for p in stack.pids() if p.startswith("worker")]),
           "posts": n, "targets": TARGETS, "wall_s": round(wall, 2), "posts_per_s": round(n / wall, 2),
           "results_per_s": round(n * TARGETS / wall, 2),
           "submit_s": round(max(end for _, end in times) - t0, 2), "submit_errors": dict(errors),
           **check, "cpu_cores": cpu}
    print(f"  {name:6} {out['apis']} API + {out['workers']} worker(s): {out['posts_per_s']:6.2f} posts/s "
          f"({out['results_per_s']:6.2f} results/s); duplicates {check['duplicates']}, missing {check['missing']}, "
          f"not published {check['not_published']}", flush=True)
    return out


async def exactly_once(stack, api: httpx.AsyncClient, phase: str, n: int) -> dict:
    """The sandbox's record of this phase's platform calls, and the database's status of its posts."""
    seen: Counter[tuple[str, int]] = Counter()
    for platform_name in PLATFORMS:
        for post in (await api.get(f"{stack.sandbox_url}/_control/{platform_name}/posts")).json():
            m = TAG.search(post.get("text") or "")
            if m and m["phase"] == phase:
                seen[(platform_name, int(m["i"]))] += 1
    engine = create_engine(stack.settings().sync_sqlalchemy_url)
    try:
        with engine.connect() as db:
            statuses = dict(db.execute(text("SELECT status, count(*) FROM posts WHERE caption LIKE :p "
                                            "GROUP BY status"), {"p": f"hb-{phase}-h-%"}).all())
    finally:
        engine.dispose()
    return {"duplicates": sum(c - 1 for c in seen.values()), "missing": n * TARGETS - len(seen),
            "not_published": n - statuses.get("published", 0), "post_statuses": statuses}


async def run(args: argparse.Namespace) -> dict:
    started, load_start = time.time(), os.getloadavg()
    stack = new_stack(args.postgres)
    crypto.configure([stack.encryption_key])
    phases: dict = {}
    try:
        print(f"▶ starting the stack in {stack.data_dir} (PostgreSQL database {stack.postgres_db})", flush=True)
        stack.start_temporal()
        stack.migrate()
        stack.start_herald()
        workspace_id, key = await create_tenant(stack)
        # X allows 100 posts per user per 15 minutes: enough accounts that no run waits on that limit.
        per_platform = max(10, (3 * args.posts + args.warmup) // 60 + 2)
        pools = await connect_pools(api_url=stack.api_url, sandbox_url=stack.sandbox_url, settings=stack.settings(),
                                    workspace_id=workspace_id, test_key=key, per_platform=per_platform)
        await set_latency(stack.sandbox_url, args.latency_ms)
        temporal = await Client.connect(stack.temporal_address)
        headers = {"Authorization": f"Bearer {key}"}
        limits = CLIENT_LIMITS
        api2_port = free_port()
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60, limits=limits) as one, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{api2_port}", headers=headers, timeout=60,
                                  limits=limits) as two:
            print(f"▶ {3 * per_platform} sandbox accounts; latency {args.latency_ms} ms; {args.posts} posts "
                  f"of {TARGETS} targets per run", flush=True)
            await run_phase("warmup", stack, [one], pools, temporal, args.warmup)
            phases["one"] = await run_phase("one", stack, [one], pools, temporal, args.posts)
            stack.start_worker("worker2")
            stack.start_api("api2", api2_port)
            stack.wait_ready("api2", f"http://127.0.0.1:{api2_port}", ("worker2", "api2"))
            phases["two"] = await run_phase("two", stack, [one, two], pools, temporal, args.posts)
            for name in EXTRA:
                stack.stop_one(name)
            phases["one_again"] = await run_phase("again", stack, [one], pools, temporal, args.posts)
    finally:
        stack.stop()
    single = (phases["one"]["posts_per_s"] + phases["one_again"]["posts_per_s"]) / 2
    return {
        "phases": phases,
        "speedup": round(phases["two"]["posts_per_s"] / single, 3),
        "duplicates": sum(p["duplicates"] for p in phases.values()),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_start": [round(x, 2) for x in load_start],
                    "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "parameters": {"posts": args.posts, "targets": TARGETS, "clients": CLIENTS, "latency_ms": args.latency_ms,
                       "database": "postgresql"},
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "duration_s": round(time.time() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=300, help="posts per run (3 targets each)")
    parser.add_argument("--warmup", type=int, default=40, help="posts of a first, unmeasured run")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency per platform call")
    parser.add_argument("--postgres", metavar="SERVER_URL", default="postgresql://postgres@127.0.0.1:5432",
                        help="the PostgreSQL server; the run uses a fresh database on it, dropped at the end")
    parser.add_argument("--out", type=Path, help="where to write the JSON")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    out = args.out or ROOT / "bench" / "results" / f"scale-out-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nspeedup of 2 APIs + 2 workers over 1 + 1: {result['speedup']:.2f}x; duplicates "
          f"{result['duplicates']}; JSON in {out}")
    bad = result["duplicates"] or any(p["missing"] or p["not_published"] for p in result["phases"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
