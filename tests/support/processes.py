"""Herald's processes as real children of a test: workers and API replicas that can be killed and restarted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from store.settings import Settings
from tests.conftest import settings_env

ROOT = Path(__file__).parent.parent.parent


def spawn_worker(settings: Settings, log: Path, **env: str) -> subprocess.Popen:
    """`python worker.py` with the settings of `settings`, plus `env` (e.g. HERALD_WORKER_QUEUES)."""
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=settings_env(settings) | env,
                            stdout=log.open("a"), stderr=subprocess.STDOUT)


def spawn_api(settings: Settings, port: int, log: Path, *, sandbox_url: str, ready_timeout: float = 30) -> subprocess.Popen:
    """`uvicorn api.app:create_app` on `port`, using the sandbox platforms served at `sandbox_url` (another
    process, so that restarting this one does not reset the platforms' state). Returns once /readyz is 200."""
    env = settings_env(settings) | {"HERALD_SANDBOX_BASE_URL": sandbox_url,
                                    "HERALD_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                                    "HERALD_IDEMPOTENCY_LEASE_SECONDS": "5"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the API was not ready within {ready_timeout:.0f} s; see {log}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
