"""The Temporal dev server (SQLite file persistence) restarted while 500 posts are due over the next minute.

The server, the worker and the API are real processes or sockets; the server is stopped in the middle of the
stream and started again on the same port and file. Every post must still publish, once, and the lag of the
posts due around the outage says what the restart cost.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import BIN, start_stack
from tests.fault.support import tally, wait_terminal
from tests.support.accounts import connect_bluesky, connect_oauth, sandbox_posts
from tests.support.processes import spawn_worker, stop
from tests.support.servers import free_port
from workflows.search_attributes import DEV_SERVER_FLAGS

POSTS = int(os.environ.get("HERALD_FAULT_SCHEDULED_POSTS", "500"))
SPREAD = 60.0  # seconds over which the posts fall due
ACCOUNTS = 4


class DevServer:
    """`temporal server start-dev` on a fixed port and database file, so it can be stopped and started again."""

    def __init__(self, db_file: Path, log: Path):
        self.port, self.db_file, self.log = free_port(), db_file, log
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--db-filename", str(self.db_file),
               "--ip", "127.0.0.1", "--port", str(self.port), "--http-port", str(free_port()),
               "--metrics-port", str(free_port()), "--log-level", "error",
               "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        for name, kind in DEV_SERVER_FLAGS.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the dev server did not listen; see {self.log}")

    def stop(self) -> None:
        stop(self.proc)


def lag_summary(lags: list[float]) -> str:
    lags = sorted(lags)
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]  # noqa: E731
    return f"lag_p50={pick(0.5):.2f}s lag_p99={pick(0.99):.2f}s lag_max={lags[-1]:.2f}s"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_temporal_restart_while_posts_fall_due(database, tmp_path, request):
    server = DevServer(tmp_path / "temporal.db", tmp_path / "temporal.log")
    await asyncio.to_thread(server.start)
    env = SimpleNamespace(client=SimpleNamespace(service_client=SimpleNamespace(
        config=SimpleNamespace(target_host=server.address))))
    stack, close = await start_stack(database, env, worker=False, schedule_lead_seconds=1,
                                     rate_limit_per_minute=100_000)
    worker = spawn_worker(stack.settings, tmp_path / "worker.log")
    try:
        async with stack.client(stack.tenant.test_key) as c:
            for _ in range(300):
                if (await c.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            targets = [await connect_oauth(stack, "linkedin", f"due{i}") for i in range(ACCOUNTS)]
            targets += [await connect_bluesky(c, f"due{i}.test") for i in range(ACCOUNTS)]
            base = datetime.now(UTC) + timedelta(seconds=25)
            due = {i: base + timedelta(seconds=SPREAD * i / POSTS) for i in range(POSTS)}

            async def create(i: int) -> str:
                r = await c.post("/v1/social-posts", json={
                    "caption": f"due {i}", "account_ids": [targets[i % len(targets)]],
                    "scheduled_at": due[i].isoformat()})
                assert r.status_code == 200, r.text
                assert r.json()["data"]["status"] == "scheduled"
                return r.json()["data"]["id"]

            ids: list[str] = []
            for start in range(0, POSTS, 25):
                ids += await asyncio.gather(*(create(i) for i in range(start, min(POSTS, start + 25))))
            created_by = datetime.now(UTC)
            # Down from a quarter into the stream for a few seconds, then up again on the same file.
            await asyncio.sleep(max(0.0, (base - datetime.now(UTC)).total_seconds() + SPREAD / 4))
            down_at = datetime.now(UTC)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(3)
            await asyncio.to_thread(server.start)
            up_at = datetime.now(UTC)
            posts = await wait_terminal(c, ids, timeout=SPREAD + 150)
        result = await tally(stack, posts, "due ")
        on_platform = {p["text"]: p for platform in ("linkedin", "bluesky")
                       for p in await sandbox_posts(stack, platform) if p["text"].startswith("due ")}
        lags = [on_platform[f"due {i}"]["created_at"] - due[i].timestamp() for i in range(POSTS)
                if f"due {i}" in on_platform]
        result.report(request.node, "temporal restart", f"created_before_due={created_by < base} "
                      f"outage={(up_at - down_at).total_seconds():.1f}s " + lag_summary(lags))
        assert result.duplicates == 0 and result.lost == 0, result
        assert result.published == POSTS, result
    finally:
        stop(worker)
        await close()
        server.stop()
