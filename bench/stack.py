"""The system under test, as real processes: Temporal dev server, API, Herald worker, baseline worker.

Every process is a child of the benchmark, on free loopback ports, over a throwaway data directory;
`Stack.stop()` ends exactly the processes it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from store.crypto import new_key
from workflows.search_attributes import DEV_SERVER_FLAGS

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
TASK_QUEUE = "herald-bench"
BASELINE_QUEUE = "baseline-bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The benchmarks' API clients. uvicorn closes a connection after 5 s idle (between phases, say); a client that
# keeps it as long can send a request on it just as it closes, and gets httpx.ReadError: drop idle ones sooner.
CLIENT_LIMITS = httpx.Limits(max_connections=200, keepalive_expiry=2.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def rss_mib(pid: int) -> float:
    """Resident set size of one process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time one process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Stack:
    data_dir: Path
    temporal_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    encryption_key: str = field(default_factory=new_key)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    # A PostgreSQL server URL (without database) to benchmark against instead of a SQLite file; the run gets
    # a fresh database on it, dropped at the end.
    postgres_server: str | None = None
    postgres_db: str = field(default_factory=lambda: f"herald_bench_{os.getpid()}_{int(time.time())}")
    # Settings given to every Herald process on top of the benchmark's own (`--herald-env`).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sandbox_url(self) -> str:
        return f"{self.api_url}/sandbox"

    @property
    def database_url(self) -> str:
        if self.postgres_server:
            return f"{self.postgres_server.rstrip('/')}/{self.postgres_db}"
        return f"sqlite:///{self.data_dir / 'herald.db'}"

    def _postgres_admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.postgres_server.rstrip('/')}/postgres", autocommit=True) as conn:
            conn.execute(sql)

    def herald_env(self) -> dict[str, str]:
        """The settings every Herald process of the benchmark shares (see store/settings.py)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        env.update({
            "HERALD_ENV": "test",
            "HERALD_DATA_DIR": str(self.data_dir),
            "HERALD_DATABASE_URL": self.database_url,
            "HERALD_ENCRYPTION_KEYS": self.encryption_key,
            "HERALD_TEMPORAL_ADDRESS": self.temporal_address,
            "HERALD_TASK_QUEUE": TASK_QUEUE,
            "HERALD_PUBLIC_BASE_URL": self.api_url,
            "HERALD_SCHEDULES_ENABLED": "false",
            "HERALD_RATE_LIMIT_PER_MINUTE": "100000000",
            "HERALD_SCHEDULE_LEAD_SECONDS": "1",
            "HERALD_IMMEDIATE_PUBLISH_WAIT_SECONDS": "0",
            "HERALD_LOG_LEVEL": "WARNING",
            **self.extra_env,
        })
        return env

    def settings(self):
        from store.settings import Settings

        return Settings(env="test", data_dir=self.data_dir, database_url=self.database_url,
                        encryption_keys=self.encryption_key, temporal_address=self.temporal_address,
                        task_queue=TASK_QUEUE, public_base_url=self.api_url, schedules_enabled=False)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.data_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_temporal(self) -> None:
        cmd = [str(BIN / "temporal"), "server", "start-dev", "--headless",
               "--db-filename", str(self.data_dir / "temporal.db"),
               "--ip", "127.0.0.1", "--port", str(self.temporal_port),
               "--http-port", str(free_port()), "--metrics-port", str(free_port()),
               "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
               "--log-level", "error"]
        for name, kind in DEV_SERVER_FLAGS.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        wait_for_port(self.temporal_port, self._spawn("temporal", cmd), "temporal dev server")

    def migrate(self) -> None:
        from store.migrate import upgrade

        if self.postgres_server:
            self._postgres_admin(f'CREATE DATABASE "{self.postgres_db}"')

        upgrade(self.settings().sync_sqlalchemy_url)

    def start_herald(self, *, profile_worker: bool = False) -> None:
        self.start_worker("worker", profile=profile_worker)
        self.start_api("api", self.api_port)
        self.wait_ready("api", self.api_url, ("worker", "api"))

    def start_worker(self, name: str, *, profile: bool = False) -> None:
        cmd = [sys.executable, "worker.py"]
        if profile:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(self.data_dir / f"{name}.prof"), "worker.py"]
        self._spawn(name, cmd, self.herald_env())

    def start_api(self, name: str, port: int) -> None:
        """An API replica. Every replica keeps the first one's public URL, so the whole stack talks to one
        sandbox (it lives in the first API's process)."""
        self._spawn(name, [str(BIN / "uvicorn"), "api.app:create_app", "--factory", "--host", "127.0.0.1",
                           "--port", str(port), "--log-level", "warning", "--no-access-log"], self.herald_env())

    def wait_ready(self, name: str, url: str, watch: tuple[str, ...]) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for proc_name in watch:
                if self.procs[proc_name].poll() is not None:
                    raise RuntimeError(f"{proc_name} exited with code {self.procs[proc_name].returncode}; "
                                       f"see {self.data_dir / (proc_name + '.log')}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name} was not ready within 90 s")

    def start_baseline_worker(self) -> None:
        self._spawn("baseline_worker", [sys.executable, "-m", "bench.baseline", "--address", self.temporal_address,
                                        "--task-queue", BASELINE_QUEUE])

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items() if proc.poll() is None}

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def rss(self) -> dict[str, float]:
        return {name: round(rss_mib(pid), 1) for name, pid in self.pids().items()}

    def stop_one(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.postgres_server:
            self._postgres_admin(f'DROP DATABASE IF EXISTS "{self.postgres_db}" WITH (FORCE)')


def new_stack(postgres_server: str | None = None) -> Stack:
    return Stack(data_dir=Path(tempfile.mkdtemp(prefix="herald-bench-")), postgres_server=postgres_server)
