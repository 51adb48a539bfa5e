"""Load and soak: a mixed workload against a real Herald (dev server, API, worker, sandbox platforms).

    .venv/bin/python bench/load.py --seconds 60              # the short form (CI runs 20 s of it)
    .venv/bin/python bench/load.py --seconds 600 --rate 15   # the 10-minute soak
    options: --rate OPS_PER_S, --postgres SERVER_URL, --out FILE.json

Operations arrive open-loop at `--rate` per second, mixed as MIX says: immediate and scheduled posts (1-3
targets), polls of posts already created, list pages, and connect sessions (each cancelled 5 s later, as when the
end user walks away, so that open sessions stay a steady population). It reports the throughput, p50 and
p99 latency and errors per route, the memory (RSS) of every process over time, and checks at the end that every
post reached a terminal status. The soak verdict: no error, every post terminal, and neither Herald process (API,
worker) grew by more than MEMORY_BOUND_MIB between the first sample after warm-up and the last. The Temporal dev
server's memory is reported beside them but not judged: it keeps every closed workflow of the namespace's
retention period (here thousands within minutes), and grows with that data (README, Development).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.accounts import connect_pools  # noqa: E402
from bench.measure import summary  # noqa: E402
from bench.publish_bench import create_tenant, set_latency  # noqa: E402
from bench.stack import CLIENT_LIMITS, new_stack  # noqa: E402
from store import crypto  # noqa: E402

MIX = {"create_immediate": 0.20, "create_scheduled": 0.15, "poll": 0.40, "list": 0.15, "connect_session": 0.10}
TERMINAL = {"published", "partial", "failed", "cancelled"}
MEMORY_EVERY = 5.0
WARM_UP = 20.0  # memory growth is measured from the first sample after this
MEMORY_BOUND_MIB = 64.0
CANCEL_AFTER = 5.0
JUDGED = ("api", "worker")  # Herald's own processes


class Load:
    def __init__(self, api: httpx.AsyncClient, pools, rng: random.Random, schedule_within: float):
        self.api, self.pools, self.rng = api, pools, rng
        self.schedule_within = schedule_within
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: list[str] = []
        self.posts: list[str] = []
        self.background: set[asyncio.Task] = set()
        self.n = 0

    async def op(self, kind: str, arg=None) -> None:
        self.n += 1
        started = time.perf_counter()
        try:
            ok = await getattr(self, kind)(self.n if arg is None else arg)
        except httpx.HTTPError as exc:
            ok, self.samples = False, self.samples[-9:] + [f"{kind}: {type(exc).__name__}"]
        self.latency[kind].append(time.perf_counter() - started)
        if not ok:
            self.errors[kind] += 1

    def later(self, delay: float, kind: str, arg) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await self.op(kind, arg)

        task = asyncio.create_task(run())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def _check(self, kind: str, r: httpx.Response, *expected: int) -> bool:
        if r.status_code in expected:
            return True
        self.samples = self.samples[-9:] + [f"{kind}: {r.status_code} {r.text[:200]}"]
        return False

    async def _create(self, i: int, scheduled: bool) -> bool:
        body: dict = {"caption": f"load {i} {time.time():.3f}",
                      "account_ids": [a.id for a in self.pools.targets(self.rng.randint(1, 3), offset=i)]}
        if scheduled:
            body["scheduled_at"] = (datetime.now(UTC) + timedelta(seconds=self.rng.uniform(3, self.schedule_within))).isoformat()
        r = await self.api.post("/v1/social-posts", json=body)
        if r.status_code == 200:
            self.posts.append(r.json()["data"]["id"])
        return self._check("create", r, 200)

    async def create_immediate(self, i: int) -> bool:
        return await self._create(i, scheduled=False)

    async def create_scheduled(self, i: int) -> bool:
        return await self._create(i, scheduled=True)

    async def poll(self, i: int) -> bool:
        if not self.posts:
            return await self.list(i)
        r = await self.api.get(f"/v1/social-posts/{self.rng.choice(self.posts[-200:])}")
        return self._check("poll", r, 200)

    async def list(self, i: int) -> bool:
        return self._check("list", await self.api.get("/v1/social-posts", params={"limit": 20}), 200)

    async def connect_session(self, i: int) -> bool:
        r = await self.api.post("/v1/connect/sessions", json={
            "platform": self.rng.choice(["twitter", "linkedin", "bluesky"]), "external_user_id": f"load-user-{i}",
            "allow_quickstart_creds": True, "return_url": "https://app.example.test/done"})
        ok = self._check("connect_session", r, 200, 201)
        if ok:
            # The end user walks away and the backend cancels the session a little later, so open sessions
            # stay a steady population instead of piling up for their 30-minute lifetime.
            self.later(CANCEL_AFTER, "cancel_session", r.json()["data"]["id"])
        return ok

    async def cancel_session(self, session_id: str) -> bool:
        r = await self.api.post(f"/v1/connect/sessions/{session_id}/cancel")
        return self._check("cancel_session", r, 200)


async def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    stack = new_stack(args.postgres)
    crypto.configure([stack.encryption_key])
    try:
        print(f"▶ starting the stack in {stack.data_dir}", flush=True)
        stack.start_temporal()
        stack.migrate()
        stack.start_herald()
        workspace_id, key = await create_tenant(stack)
        pools = await connect_pools(api_url=stack.api_url, sandbox_url=stack.sandbox_url, settings=stack.settings(),
                                    workspace_id=workspace_id, test_key=key, per_platform=args.accounts)
        await set_latency(stack.sandbox_url, args.latency_ms)
        async with httpx.AsyncClient(base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"},
                                     timeout=60, limits=CLIENT_LIMITS) as api:
            # Scheduled posts fall due within 30 s (less in a short run, so that its end need not wait long).
            load = Load(api, pools, rng, schedule_within=max(4.0, min(30.0, args.seconds / 2)))
            memory: list[dict] = []
            kinds, weights = list(MIX), list(MIX.values())
            tasks: set[asyncio.Task] = set()
            t0 = time.monotonic()
            next_memory = 0.0
            print(f"▶ {args.rate} ops/s for {args.seconds} s", flush=True)
            for i in range(int(args.seconds * args.rate)):
                due = t0 + i / args.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                task = asyncio.create_task(load.op(rng.choices(kinds, weights)[0]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if time.monotonic() - t0 >= next_memory:
                    memory.append({"t": round(time.monotonic() - t0, 1), **stack.rss()})
                    next_memory += MEMORY_EVERY
            await asyncio.gather(*tasks)
            await asyncio.gather(*load.background)
            elapsed = time.monotonic() - t0
            memory.append({"t": round(elapsed, 1), **stack.rss()})
            # Every post must end terminal.
            pending = list(load.posts)
            deadline = time.monotonic() + 120
            while pending and time.monotonic() < deadline:
                await asyncio.sleep(2)
                pending = [pid for pid in pending
                           if (await api.get(f"/v1/social-posts/{pid}")).json()["data"]["status"] not in TERMINAL]
        total_ops = sum(len(v) for v in load.latency.values())
        total_errors = sum(load.errors.values())
        after_warm_up = [m for m in memory if m["t"] >= min(WARM_UP, elapsed / 2)] or memory
        growth = {name: round(after_warm_up[-1][name] - after_warm_up[0][name], 1)
                  for name in after_warm_up[0] if name != "t"}
        return {
            "parameters": {"seconds": args.seconds, "rate": args.rate, "mix": MIX, "latency_ms": args.latency_ms,
                           "database": "postgres" if args.postgres else "sqlite", "seed": args.seed},
            "throughput_ops_per_s": round(total_ops / elapsed, 2),
            "routes": {kind: {"ops": len(v), "errors": load.errors.get(kind, 0), "latency_ms": summary(v, 1000, 1)}
                       for kind, v in sorted(load.latency.items())},
            "error_rate": round(total_errors / max(1, total_ops), 4),
            "error_samples": load.samples,
            "posts": len(load.posts),
            "posts_not_terminal": len(pending),
            "memory_mib": memory,
            "memory_growth_mib": growth,
            "memory_bound_mib": MEMORY_BOUND_MIB,
            "memory_judged": list(JUDGED),
            "soak_ok": total_errors == 0 and not pending and all(growth[name] <= MEMORY_BOUND_MIB for name in JUDGED),
        }
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=15, help="operations per second, open loop")
    parser.add_argument("--accounts", type=int, default=40,
                        help="sandbox accounts per platform (X allows 100 posts per user per 15 minutes)")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency per platform call")
    parser.add_argument("--postgres", metavar="SERVER_URL", help="run on a fresh PostgreSQL database on this server")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/load-<time>.json)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    out = args.out or Path(__file__).parent / "results" / f"load-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\n{'route':18} {'ops':>6} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, r in result["routes"].items():
        print(f"{kind:18} {r['ops']:6} {r['errors']:6} {r['latency_ms']['p50']:8} {r['latency_ms']['p99']:8}")
    print(f"\nthroughput {result['throughput_ops_per_s']} ops/s, error rate {result['error_rate']}, "
          f"posts {result['posts']} (not terminal: {result['posts_not_terminal']})")
    print(f"memory growth after warm-up, MiB: {result['memory_growth_mib']} (bound {MEMORY_BOUND_MIB} for "
          f"{', '.join(JUDGED)})")
    print(f"soak {'OK' if result['soak_ok'] else 'FAILED'}; JSON in {out}")
    for sample in result["error_samples"]:
        print(f"  error: {sample}")
    return 0 if result["soak_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
