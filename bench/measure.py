"""Measuring helpers: percentiles, closed-loop clients, workflow completion, sandbox lag, CPU shares."""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
from temporalio.client import Client

from bench.accounts import PLATFORMS

TAG = re.compile(r"\bhb-(?P<phase>[a-z0-9]+)-(?P<kind>[hb])-(?P<i>\d+)\b")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def summary(values: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, float | int | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v * scale, digits)

    return {"n": len(values), "p50": r(percentile(values, 50)), "p99": r(percentile(values, 99)),
            "max": r(max(values) if values else None), "mean": r(sum(values) / len(values) if values else None)}


def tag(phase: str, kind: str, i: int) -> str:
    """A caption unique across the run (X and LinkedIn reject duplicate text)."""
    return f"hb-{phase}-{kind}-{i} benchmark post number {i} of phase {phase}"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def closed_loop(n: int, concurrency: int, op: Callable[[int], Awaitable[None]]) -> list[tuple[float, float]]:
    """Run op(0..n-1) from `concurrency` clients, each starting its next call when the last one returns.

    Returns (start, end) wall-clock times per call, in call order."""
    times: list[tuple[float, float]] = [(0.0, 0.0)] * n
    counter = iter(range(n))

    async def client() -> None:
        for i in counter:
            start = time.time()
            await op(i)
            times[i] = (start, time.time())

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return times


async def paced(n: int, concurrency: int, rate: float, op: Callable[[int], Awaitable[None]]) -> list[float]:
    """Run op(0..n-1) due at `rate` calls per second, from at most `concurrency` clients at once.

    Returns each call's latency measured from when it was due, not from when a client got to it: a call that
    waits for a free client counts that wait (no coordinated omission)."""
    latencies: list[float] = [0.0] * n
    counter = iter(range(n))
    t0 = time.time() + 0.2

    async def client() -> None:
        for i in counter:
            due = t0 + i / rate
            if (wait := due - time.time()) > 0:
                await asyncio.sleep(wait)
            await op(i)
            latencies[i] = time.time() - due

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


async def wait_closed(client: Client, workflow_type: str, since: datetime, n: int, timeout: float) -> list[float]:
    """Wait until n workflows of a type started since `since` have closed; return their close times."""
    query = f"WorkflowType = '{workflow_type}' AND StartTime >= '{iso(since)}' AND ExecutionStatus != 'Running'"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.count_workflows(query)).count >= n:
            break
        await asyncio.sleep(1.0)
    else:
        raise TimeoutError(f"{workflow_type}: fewer than {n} workflows closed within {timeout:.0f}s")
    return [wf.close_time.timestamp() async for wf in client.list_workflows(query) if wf.close_time]


async def sandbox_calls(http: httpx.AsyncClient, sandbox_url: str, phase: str,
                        kind: str) -> list[tuple[int, float]]:
    """(post index, epoch seconds the sandbox recorded it) for every platform call of one phase and kind."""
    found: list[tuple[int, float]] = []
    for platform in PLATFORMS:
        for post in (await http.get(f"{sandbox_url}/_control/{platform}/posts")).json():
            m = TAG.search(post.get("text") or "")
            if m and m["phase"] == phase and m["kind"] == kind:
                found.append((int(m["i"]), float(post["created_at"])))
    return found


class CpuMeter:
    """CPU used by each process between start() and stop(), as a share of one core."""

    def __init__(self, read: Callable[[], dict[str, float]]):
        self.read = read

    def start(self) -> None:
        self.t0, self.c0, self.own0 = time.monotonic(), self.read(), time.process_time()

    def stop(self) -> dict[str, float]:
        wall = max(1e-6, time.monotonic() - self.t0)
        now = self.read()
        shares = {name: round((now[name] - self.c0.get(name, 0.0)) / wall, 2) for name in now}
        shares["bench_driver"] = round((time.process_time() - self.own0) / wall, 2)
        shares["loadavg_1m"] = round(os.getloadavg()[0], 2)
        return shares
