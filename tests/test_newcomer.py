"""A newcomer's run: the README's `make run` comes up, answers, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.servers import free_port

ROOT = Path(__file__).parent.parent
BOOT_LIMIT = 150  # seconds from `make run` to a ready API


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_key(proc: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + BOOT_LIMIT
    while time.monotonic() < deadline:
        text = log.read_text()
        found = re.search(r"Test API key\s+(\S+)", text)
        if found:
            return found.group(1)
        assert proc.poll() is None, f"make run exited early:\n{text[-4000:]}"
        time.sleep(0.5)
    raise AssertionError(f"make run not ready within {BOOT_LIMIT}s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen, ports: list[int]) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    proc.wait(timeout=60)
    deadline = time.monotonic() + 20
    while any(_listening(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not any(_listening(p) for p in ports), "a process kept listening after Ctrl-C"


def test_make_run_serves_then_stops_and_reuses_its_data(tmp_path):
    api, grpc, ui = free_port(), free_port(), free_port()
    env = {**os.environ, "HERALD_DATA_DIR": str(tmp_path / "data"),
           "HERALD_PUBLIC_BASE_URL": f"http://127.0.0.1:{api}",
           "HERALD_TEMPORAL_ADDRESS": f"127.0.0.1:{grpc}",
           "HERALD_TEMPORAL_UI_URL": f"http://127.0.0.1:{ui}"}
    for var in ("HERALD_DATABASE_URL", "HERALD_ENCRYPTION_KEYS", "HERALD_ENV"):
        env.pop(var, None)

    first_log = tmp_path / "first.log"
    proc = _start(env, first_log)
    try:
        key = _wait_for_key(proc, first_log)
        text = first_log.read_text()
        for url in (f"http://127.0.0.1:{api}", f"http://127.0.0.1:{api}/docs", f"http://127.0.0.1:{ui}"):
            assert url in text
        assert httpx.get(f"http://127.0.0.1:{api}/readyz", timeout=5).status_code == 200
        r = httpx.get(f"http://127.0.0.1:{api}/v1/workspace", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert r.status_code == 200 and r.json()["data"]["livemode"] is False
        assert httpx.get(f"http://127.0.0.1:{ui}", timeout=5).status_code == 200
    finally:
        _stop(proc, [api, grpc, ui])

    # A second `make run` reuses the data directory: same workspace, same key.
    second_log = tmp_path / "second.log"
    proc = _start(env, second_log)
    try:
        assert _wait_for_key(proc, second_log) == key
    finally:
        _stop(proc, [api, grpc, ui])
