"""Publish benchmark: Herald against a bare-Temporal baseline, on the real dev server, in one run.

    .venv/bin/python bench/publish_bench.py [--quick] [--out bench/results/<name>.json] [--latency-ms 50]

See bench/README.md for what each figure means.
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
from temporalio.client import Client  # noqa: E402

from bench.accounts import PLATFORMS, Account, Pools, connect_pools  # noqa: E402
from bench.baseline import BaselineFanout, FanoutInput  # noqa: E402
from bench.measure import CpuMeter, closed_loop, iso, paced, sandbox_calls, summary, tag, wait_closed  # noqa: E402
from bench.stack import BASELINE_QUEUE, CLIENT_LIMITS, ROOT, Stack, new_stack  # noqa: E402
from store import crypto  # noqa: E402

# The full mode runs the issue's counts: 5 posts/s for a minute, a 2,000-post burst and 10,000 waiting posts
# (13-20 minutes here, most of it the burst's drain and accepting 20,000 scheduled posts); --burst-posts and
# --waiting-posts make a shorter run. Its throughput counts keep Herald busy for 20-30 s per figure, so that the
# figure is the sustained rate, not the first and last seconds of a 5-second run (one stack, 120 and 400 3-target
# posts twice each: ratios 0.57 and 0.60 at 120, 0.67 and 0.63 at 400, the baseline's rate being the one that moved
# most). 90 accounts per platform keep X's limit of 100 posts per account and 15 minutes out of the way of the whole
# run (about 80 each).
MODES = {
    "quick": {"accounts_per_platform": 15, "throughput_posts": {1: 40, 3: 30, 9: 12}, "steady_rate": 5.0,
              "steady_seconds": 8, "burst_posts": 80, "waiting_posts": 400, "paced_posts": 100, "clients": 50},
    "full": {"accounts_per_platform": 90, "throughput_posts": {1: 600, 3: 400, 9: 150}, "steady_rate": 5.0,
             "steady_seconds": 60, "below_capacity_seconds": 30, "burst_posts": 2000, "waiting_posts": 10000,
             "paced_posts": 600, "clients": 50},
}
# A second steady stream runs at this fraction of Herald's measured 3-target throughput when the nominal rate
# is not comfortably below that capacity (punctuality is only meaningful below capacity). Accept latency is
# also measured with the 50 clients sending at this fraction of Herald's measured accept capacity.
BELOW_CAPACITY = 0.5
PHASES = ("throughput", "steady", "burst", "waiting")
TARGETS = {"throughput_ratio": 0.6, "steady_p99_s": 1.0, "burst_drain_ratio": 0.6, "accept_p99_ms": 50.0}
WORKFLOW_TYPE = {"h": "PublishPostWorkflow", "b": "BaselineFanout"}
KINDS = {"b": "baseline", "h": "herald"}
SERVICE_TIME_SAMPLES = 100


class Bench:
    def __init__(self, stack: Stack, params: dict, pools: Pools, test_key: str, client: Client):
        self.stack, self.params, self.pools, self.client = stack, params, pools, client
        self.api = httpx.AsyncClient(base_url=stack.api_url, headers={"Authorization": f"Bearer {test_key}"},
                                     timeout=60, limits=CLIENT_LIMITS)
        self.cpu = CpuMeter(stack.cpu)
        self.errors: Counter[str] = Counter()
        # Accepted posts (or started workflows) per second, measured in the throughput phase: sizes the lead
        # time so every scheduled post exists before it is due.
        self.accept_rate = {"h": 20.0, "b": 100.0}

    # --- submitting one post / one baseline workflow ---

    async def submit(self, kind: str, phase: str, i: int, accounts: list[Account], due: datetime | None) -> None:
        caption = tag(phase, kind, i)
        if kind == "h":
            body: dict = {"caption": caption, "account_ids": [a.id for a in accounts]}
            if due is not None:
                body["scheduled_at"] = iso(due)
            resp = await self.api.post("/v1/social-posts", json=body)
            if not resp.is_success:
                self.errors[f"api {resp.status_code}: {resp.text[:160]}"] += 1
            return
        calls = [a.publish_call(self.stack.sandbox_url, caption) for a in accounts]
        await self.client.start_workflow(BaselineFanout.run, FanoutInput(calls=calls, scheduled_at=due),
                                         id=f"baseline-{phase}-{i}", task_queue=BASELINE_QUEUE)

    def plan(self, n: int, targets: int) -> list[list[Account]]:
        return [self.pools.targets(targets, offset=i) for i in range(n)]

    async def missing(self, phase: str, kind: str, expected: int) -> tuple[list[tuple[int, float]], int]:
        calls = await sandbox_calls(self.api, self.stack.sandbox_url, phase, kind)
        return calls, expected - len(calls)

    # --- figures ---

    async def throughput(self, targets: int, n: int) -> dict:
        out = {}
        for kind in ("b", "h"):
            phase = f"tp{targets}"
            plan = self.plan(n, targets)
            since = datetime.now(UTC) - timedelta(seconds=1)
            self.cpu.start()
            t0 = time.time()
            times = await closed_loop(n, self.params["clients"],
                                      lambda i: self.submit(kind, phase, i, plan[i], None))
            submitted = max(end for _, end in times)
            closes = await wait_closed(self.client, WORKFLOW_TYPE[kind], since, n, timeout=120 + n * targets / 2)
            cpu = self.cpu.stop()
            wall = max(closes) - t0
            _, missing = await self.missing(phase, kind, n * targets)
            self.accept_rate[kind] = n / max(0.001, submitted - t0)
            out[KINDS[kind]] = {"posts": n, "targets": targets, "wall_s": round(wall, 2),
                                "posts_per_s": round(n / wall, 2), "results_per_s": round(n * targets / wall, 2),
                                "submit_s": round(submitted - t0, 2), "missing_calls": missing, "cpu_cores": cpu}
            print(f"  throughput {targets} target(s) {KINDS[kind]:8}: {n / wall:7.2f} posts/s "
                  f"({n * targets / wall:7.2f} results/s), submit {submitted - t0:.1f}s, missing {missing}",
                  flush=True)
        out["ratio"] = round(out["herald"]["posts_per_s"] / out["baseline"]["posts_per_s"], 3)
        return out

    async def scheduled(self, phase: str, offsets: list[float], targets: int) -> dict:
        """Posts due at now + lead + offsets[i]; lag = when the sandbox recorded each platform call − due."""
        out = {}
        n = len(offsets)
        for kind in ("b", "h"):
            plan = self.plan(n, targets)
            lead = 1.5 * n / self.accept_rate[kind] + 8
            start = datetime.now(UTC)
            due = [start + timedelta(seconds=lead + off) for off in offsets]
            since = start - timedelta(seconds=1)
            times = await closed_loop(n, self.params["clients"],
                                      lambda i: self.submit(kind, phase, i, plan[i], due[i]))
            created = max(end for _, end in times)
            first_due = min(due).timestamp()
            if created < first_due:
                await asyncio.sleep(first_due - time.time())
            self.cpu.start()
            closes = await wait_closed(self.client, WORKFLOW_TYPE[kind], since, n,
                                       timeout=offsets[-1] + 180 + n * targets / 3)
            cpu = self.cpu.stop()
            calls, missing = await self.missing(phase, kind, n * targets)
            lags = [at - due[i].timestamp() for i, at in calls]
            last_call = max(at for _, at in calls)
            drain = last_call - first_due
            out[KINDS[kind]] = {
                "posts": n, "targets": targets, "lead_s": round(lead, 1),
                "create_s": round(created - times[0][0], 2),
                "all_created_before_due": created < first_due, "lag_s": summary(lags), "drain_s": round(drain, 2),
                "drain_posts_per_s": round(n / drain, 2), "drain_results_per_s": round(len(calls) / drain, 2),
                "last_close_after_first_due_s": round(max(closes) - first_due, 2),
                "missing_calls": missing, "cpu_cores": cpu}
            lag = out[KINDS[kind]]["lag_s"]
            print(f"  {phase} {KINDS[kind]:8}: lag p50 {lag['p50']}s p99 {lag['p99']}s max {lag['max']}s, "
                  f"drain {drain:.1f}s ({n / drain:.1f} posts/s), missing {missing}", flush=True)
        return out

    async def steady(self, capacity: float) -> dict:
        rate, seconds = self.params["steady_rate"], self.params["steady_seconds"]
        out = {"rate_posts_per_s": rate, "herald_capacity_posts_per_s": capacity,
               **await self.scheduled("steady", [i / rate for i in range(int(rate * seconds))], 3)}
        if rate > 0.8 * capacity:
            slow = round(BELOW_CAPACITY * capacity, 2)
            secs = self.params.get("below_capacity_seconds", seconds)
            out["below_capacity"] = {"rate_posts_per_s": slow, **await self.scheduled(
                "slow", [i / slow for i in range(max(2, int(slow * secs)))], 3)}
        return out

    async def burst(self) -> dict:
        out = await self.scheduled("burst", [0.0] * self.params["burst_posts"], 3)
        out["drain_ratio"] = round(out["herald"]["drain_posts_per_s"] / out["baseline"]["drain_posts_per_s"], 3)
        return out

    async def wait_quiet(self, names: tuple[str, ...], limit: float = 0.05, timeout: float = 180) -> None:
        """Until the named processes use under `limit` of a core over two seconds (their backlog is done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c0 = self.stack.cpu()
            await asyncio.sleep(2)
            c1 = self.stack.cpu()
            if all((c1[n] - c0[n]) / 2 < limit for n in names):
                return

    async def waiting(self) -> dict:
        """Accept latency for scheduled posts (1 h ahead) at 50 clients, as fast as they can go and then paced
        below Herald's capacity, then memory with them all waiting."""
        n, clients = self.params["waiting_posts"], self.params["clients"]
        await self.wait_quiet(("temporal", "worker", "baseline_worker", "api"))
        out: dict = {"posts": n, "rss_mib_before": self.stack.rss()}
        rate = None  # both kinds are paced at the rate Herald's capacity sets, so they face the same load
        for kind in ("h", "b"):
            due = datetime.now(UTC) + timedelta(hours=1)
            single_plan = self.plan(SERVICE_TIME_SAMPLES, 3)
            single = await closed_loop(SERVICE_TIME_SAMPLES, 1,
                                       lambda i: self.submit(kind, "wone", i, single_plan[i], due))
            paced_n = self.params["paced_posts"]
            plan = self.plan(n - SERVICE_TIME_SAMPLES - paced_n, 3)
            self.cpu.start()
            times = await closed_loop(len(plan), clients, lambda i: self.submit(kind, "wait", i, plan[i], due))
            cpu = self.cpu.stop()
            wall = max(e for _, e in times) - min(s for s, _ in times)
            if rate is None:
                rate = round(BELOW_CAPACITY * len(times) / wall, 1)
            paced_plan = self.plan(paced_n, 3)
            await self.wait_quiet(("temporal", "worker" if kind == "h" else "baseline_worker", "api"))
            paced_lat = await paced(paced_n, clients, rate,
                                    lambda i: self.submit(kind, "wpace", i, paced_plan[i], due))
            await self.wait_quiet(("temporal", "worker" if kind == "h" else "baseline_worker"))
            out[KINDS[kind]] = {
                "accept_ms_1_client": summary([e - s for s, e in single], 1000, 1),
                "accept_ms": summary([e - s for s, e in times], 1000, 1),
                "accepted_per_s": round(len(times) / wall, 1), "cpu_cores": cpu,
                "accept_ms_paced": {"rate_per_s": rate, **summary(paced_lat, 1000, 1)},
                "rss_mib_with_waiting": self.stack.rss()}
            acc, pac = out[KINDS[kind]]["accept_ms"], out[KINDS[kind]]["accept_ms_paced"]
            print(f"  accept {KINDS[kind]:8}: p50 {acc['p50']} ms p99 {acc['p99']} ms at {clients} clients "
                  f"({len(times) / wall:.0f}/s); at {rate}/s p50 {pac['p50']} ms p99 {pac['p99']} ms; RSS "
                  f"{out[KINDS[kind]]['rss_mib_with_waiting']}", flush=True)
        before, herald, base = out["rss_mib_before"], out["herald"]["rss_mib_with_waiting"], \
            out["baseline"]["rss_mib_with_waiting"]
        out["memory_mib"] = {
            "herald_worker": herald["worker"], "baseline_worker": base["baseline_worker"],
            "herald_worker_growth": round(herald["worker"] - before["worker"], 1),
            "baseline_worker_growth": round(base["baseline_worker"] - before["baseline_worker"], 1),
            "api": herald["api"],
            "server_before": before["temporal"], "server_with_herald_waiting": herald["temporal"],
            "server_with_both_waiting": base["temporal"],
            "server_growth_herald": round(herald["temporal"] - before["temporal"], 1),
            "server_growth_baseline": round(base["temporal"] - herald["temporal"], 1)}
        return out


def db_status_counts(stack: Stack) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.settings().sync_sqlalchemy_url)
    try:
        with engine.connect() as db:
            return {table: {status: n for status, n in db.execute(
                text(f"SELECT status, count(*) FROM {table} GROUP BY status"))}
                for table in ("posts", "post_results")}
    finally:
        engine.dispose()


async def set_latency(sandbox_url: str, latency_ms: int) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for platform_name in PLATFORMS:
            r = await http.post(f"{sandbox_url}/_control/faults", json={
                "platform": platform_name, "kind": "latency", "times": None, "latency_ms": latency_ms})
            r.raise_for_status()


async def create_tenant(stack: Stack) -> tuple[str, str]:
    from store.db import Database
    from store.tenancy import create_workspace, issue_key

    db = Database(stack.settings().sqlalchemy_url)
    try:
        async with db.session() as s:
            ws = await create_workspace(s, "Benchmark")
            _, key = await issue_key(s, ws.id, livemode=False, prefix="hrld", name="bench")
            await s.commit()
        return ws.id, key
    finally:
        await db.close()


async def run(args: argparse.Namespace) -> dict:
    mode = "quick" if args.quick else "full"
    params = {**MODES[mode], "latency_ms": args.latency_ms, "mode": mode}
    for name in ("burst_posts", "waiting_posts", "steady_seconds"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    started, load_start = time.time(), os.getloadavg()
    stack = new_stack(args.postgres)
    stack.extra_env = dict(pair.split("=", 1) for pair in args.herald_env)
    crypto.configure([stack.encryption_key])
    result: dict = {}
    try:
        print(f"▶ starting the stack in {stack.data_dir}", flush=True)
        stack.start_temporal()
        stack.migrate()
        stack.start_herald(profile_worker=args.profile_worker)
        stack.start_baseline_worker()
        workspace_id, key = await create_tenant(stack)
        t = time.time()
        pools = await connect_pools(api_url=stack.api_url, sandbox_url=stack.sandbox_url,
                                    settings=stack.settings(), workspace_id=workspace_id, test_key=key,
                                    per_platform=params["accounts_per_platform"])
        print(f"▶ connected {3 * params['accounts_per_platform']} sandbox accounts in {time.time() - t:.1f}s; "
              f"sandbox latency {args.latency_ms} ms", flush=True)
        await set_latency(stack.sandbox_url, args.latency_ms)
        client = await Client.connect(stack.temporal_address)
        bench = Bench(stack, params, pools, key, client)
        figures: dict = {}
        if "throughput" in args.only:
            figures["throughput"] = {str(targets): await bench.throughput(targets, n)
                                     for targets, n in params["throughput_posts"].items()}
        if "steady" in args.only:
            figures["steady"] = await bench.steady(figures["throughput"]["3"]["herald"]["posts_per_s"])
        if "burst" in args.only:
            figures["burst"] = await bench.burst()
        if "waiting" in args.only:
            figures["waiting"] = await bench.waiting()
        result = {
            "figures": figures,
            "targets": TARGETS,
            "herald_db_status_counts": db_status_counts(stack),
            "submit_errors": dict(bench.errors),
        }
        await bench.api.aclose()
    finally:
        stack.stop()
    if args.profile_worker:
        result["worker_profile"] = str(stack.data_dir / "worker.prof")
    result["machine"] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                         "platform": platform.platform(), "loadavg_start": [round(x, 2) for x in load_start],
                         "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                         "note": "2-core machine shared with other agents running tests"}
    result["parameters"] = {**params, "herald_env": stack.extra_env}
    result["started_at"] = datetime.fromtimestamp(started, UTC).isoformat()
    result["duration_s"] = round(time.time() - started, 1)
    return result


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def table(result: dict) -> str:
    f = result["figures"]
    rows = [("figure", "herald", "baseline", "ratio", "target", "met")]
    for targets, tp in f.get("throughput", {}).items():
        h, b = tp["herald"], tp["baseline"]
        rows.append((f"throughput {targets} target(s), posts/s", h["posts_per_s"], b["posts_per_s"], tp["ratio"],
                     f">= {TARGETS['throughput_ratio']} x", verdict(tp["ratio"] >= TARGETS["throughput_ratio"])))
        rows.append((f"throughput {targets} target(s), results/s", h["results_per_s"], b["results_per_s"],
                     tp["ratio"], "", ""))
    streams = []
    if "steady" in f:
        streams.append((f"steady {f['steady']['rate_posts_per_s']}/s", f["steady"]))
        if "below_capacity" in f["steady"]:
            slow = f["steady"]["below_capacity"]
            streams.append((f"steady {slow['rate_posts_per_s']}/s", slow))
    if "burst" in f:
        streams.append((f"burst {f['burst']['herald']['posts']}", f["burst"]))
    for label, phase in streams:
        h, b = phase["herald"]["lag_s"], phase["baseline"]["lag_s"]
        for q in ("p50", "p99", "max"):
            met = ""
            target = ""
            if label.startswith("steady") and q == "p99":
                target, met = f"< {TARGETS['steady_p99_s']} s", verdict(h[q] < TARGETS["steady_p99_s"])
            rows.append((f"{label} lag {q}, s", h[q], b[q], "", target, met))
    if "burst" in f:
        bu = f["burst"]
        rows.append(("burst drain time, s", bu["herald"]["drain_s"], bu["baseline"]["drain_s"], "", "", ""))
        rows.append(("burst drain rate, posts/s", bu["herald"]["drain_posts_per_s"],
                     bu["baseline"]["drain_posts_per_s"],
                     bu["drain_ratio"], f">= {TARGETS['burst_drain_ratio']} x",
                     verdict(bu["drain_ratio"] >= TARGETS["burst_drain_ratio"])))
    if "waiting" not in f:
        return _format(rows)
    w = f["waiting"]
    for q in ("p50", "p99"):
        h, b = w["herald"]["accept_ms"][q], w["baseline"]["accept_ms"][q]
        target, met = (f"< {TARGETS['accept_p99_ms']} ms", verdict(h < TARGETS["accept_p99_ms"])) if q == "p99" \
            else ("", "")
        rows.append((f"accept scheduled post {q}, ms (50 clients)", h, b, "", target, met))
    if "accept_ms_paced" in w["herald"]:
        h, b = w["herald"]["accept_ms_paced"], w["baseline"]["accept_ms_paced"]
        for q in ("p50", "p99"):
            target, met = (f"< {TARGETS['accept_p99_ms']} ms", verdict(h[q] < TARGETS["accept_p99_ms"])) \
                if q == "p99" else ("", "")
            rows.append((f"accept scheduled post {q}, ms (50 clients, {h['rate_per_s']}/s)", h[q], b[q], "",
                         target, met))
    rows.append(("accept scheduled post p50, ms (1 client)", w["herald"]["accept_ms_1_client"]["p50"],
                 w["baseline"]["accept_ms_1_client"]["p50"], "", "", ""))
    m = w["memory_mib"]
    rows.append((f"worker RSS with {w['posts']} waiting, MiB", m["herald_worker"], m["baseline_worker"],
                 "", "", ""))
    rows.append((f"server RSS growth for {w['posts']} waiting, MiB", m["server_growth_herald"],
                 m["server_growth_baseline"], "", "", ""))
    rows.append(("server RSS with both waiting, MiB", m["server_with_both_waiting"], "", "", "", ""))
    return _format(rows)


def _format(rows: list[tuple]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts (about 3 minutes)")
    parser.add_argument("--out", type=Path,
                        help="where to write the JSON (default bench/results/<mode>-<time>.json)")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency per platform call")
    parser.add_argument("--postgres", metavar="SERVER_URL",
                        help="benchmark on PostgreSQL, in a fresh database on this server "
                             "(e.g. postgresql://postgres@127.0.0.1:5432); default: a SQLite file")
    parser.add_argument("--burst-posts", type=int, help="posts due at the same second (issue: 2000)")
    parser.add_argument("--waiting-posts", type=int, help="scheduled posts left waiting for memory (issue: 10000)")
    parser.add_argument("--steady-seconds", type=int, help="length of the steady stream (issue: 60)")
    parser.add_argument("--only", type=lambda v: v.split(","), default=list(PHASES), metavar="PHASE,...",
                        help=f"measure only these of {','.join(PHASES)} (steady needs throughput), for quick "
                             "comparisons while developing")
    parser.add_argument("--herald-env", action="append", default=[], metavar="HERALD_X=VALUE",
                        help="a setting for every Herald process (repeatable), e.g. to compare a setting's values")
    parser.add_argument("--profile-worker", action="store_true",
                        help="run the Herald worker under cProfile and keep the profile")
    args = parser.parse_args()
    if set(args.only) - set(PHASES) or ("steady" in args.only and "throughput" not in args.only):
        parser.error(f"--only takes some of {','.join(PHASES)}; steady needs throughput")
    least = SERVICE_TIME_SAMPLES + MODES["quick" if args.quick else "full"]["paced_posts"] + 1
    if args.waiting_posts is not None and args.waiting_posts < least:
        parser.error(f"--waiting-posts must be at least {least}")
    if any(not pair.startswith("HERALD_") or "=" not in pair for pair in args.herald_env):
        parser.error("--herald-env takes HERALD_NAME=VALUE")
    result = asyncio.run(run(args))
    out = args.out or ROOT / "bench" / "results" / \
        f"{'quick' if args.quick else 'full'}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(result))
    print(f"\nduration {result['duration_s']} s, load average {result['machine']['loadavg_start']} → "
          f"{result['machine']['loadavg_end']}; JSON in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
