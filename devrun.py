"""`make run`: Temporal dev server, migrations, worker and API on one machine.

Everything is kept under the data directory (HERALD_DATA_DIR, default
./data), so a second run reuses the workflows, the database, the encryption
key and the test-mode API key. Ctrl-C stops every process this started.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from store.crypto import new_key
from store.settings import DEV_OPERATOR_PASSWORD_FILE, DEV_SECRET_FILE, Settings
from workflows.search_attributes import DEV_SERVER_FLAGS

BIN = Path(sys.executable).parent
CREDENTIALS_FILE = "dev-credentials.json"


def prepare_data_dir(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = data_dir / DEV_SECRET_FILE
    if not secret.exists():
        secret.write_text(new_key())
        secret.chmod(0o600)


def temporal_command(settings: Settings, data_dir: Path) -> list[str]:
    grpc = urlsplit(f"//{settings.temporal_address}")
    ui = urlsplit(settings.temporal_ui_url)
    cmd = [
        str(BIN / "temporal"), "server", "start-dev",
        "--db-filename", str(data_dir / "temporal.db"),
        "--ip", grpc.hostname or "127.0.0.1", "--port", str(grpc.port or 7233),
        "--ui-port", str(ui.port or 8233),
        "--namespace", settings.temporal_namespace,
        # DESIGN.md: without these the embedded server runs at about a third of its speed.
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn",
    ]
    for name, kind in DEV_SERVER_FLAGS.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


def wait_for_port(host: str, port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on {host}:{port} within {timeout:.0f}s")


async def bootstrap_tenant(settings: Settings, data_dir: Path) -> dict[str, str]:
    """The default workspace and its test key: created on first run, then reused."""
    from store import crypto
    from store.db import Database
    from store.models import ApiKey, Workspace
    from store.crypto import hash_api_key
    from store.tenancy import create_workspace, issue_key

    crypto.configure(settings.encryption_key_list())
    path = data_dir / CREDENTIALS_FILE
    db = Database(settings.sqlalchemy_url)
    try:
        async with db.session() as s:
            if path.exists():
                saved = json.loads(path.read_text())
                key = await s.get(ApiKey, saved.get("api_key_id", ""))
                if (key is not None and key.revoked_at is None
                        and key.key_hash == hash_api_key(saved.get("test_api_key", ""))):
                    return saved
            ws_id = json.loads(path.read_text()).get("workspace_id") if path.exists() else None
            ws = await s.get(Workspace, ws_id) if ws_id else None
            if ws is None:
                ws = await create_workspace(s, "Default workspace")
            row, plaintext = await issue_key(s, ws.id, livemode=False, prefix=settings.api_key_prefix,
                                             name="make run")
            await s.commit()
    finally:
        await db.close()
    saved = {"workspace_id": ws.id, "api_key_id": row.id, "test_api_key": plaintext}
    path.write_text(json.dumps(saved, indent=2))
    path.chmod(0o600)  # the plaintext key lives only here, for the developer who ran `make run`
    return saved


def dashboard_login(settings: Settings, data_dir: Path) -> str:
    """How to log in to the dashboard; in development this also creates the password file before the API reads it."""
    if settings.operator_password is not None and settings.operator_password.get_secret_value():
        return f"user {settings.operator_username}, password from HERALD_OPERATOR_PASSWORD"
    if settings.operator_password_value() is None:
        return "disabled until HERALD_OPERATOR_PASSWORD is set"
    return f"user {settings.operator_username}, password: cat {data_dir / DEV_OPERATOR_PASSWORD_FILE}"


def wait_ready(base_url: str, procs: dict[str, subprocess.Popen], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with code {proc.returncode}")
        try:
            resp = httpx.get(f"{base_url}/readyz", timeout=2)
            if resp.status_code == 200:
                return
            last = resp.text
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.3)
    raise SystemExit(f"API not ready within {timeout:.0f}s: {last}")


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for proc in reversed(list(procs.values())):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    os.environ.setdefault("HERALD_ENV", "development")
    data_dir = Path(os.environ.get("HERALD_DATA_DIR", "data")).resolve()
    os.environ["HERALD_DATA_DIR"] = str(data_dir)
    prepare_data_dir(data_dir)
    settings = Settings()

    procs: dict[str, subprocess.Popen] = {}
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        grpc = urlsplit(f"//{settings.temporal_address}")
        print(f"▶ starting Temporal dev server ({data_dir / 'temporal.db'})", flush=True)
        procs["temporal"] = subprocess.Popen(temporal_command(settings, data_dir), stdout=subprocess.DEVNULL,
                                             start_new_session=True)
        wait_for_port(grpc.hostname or "127.0.0.1", grpc.port or 7233, procs["temporal"], "temporal")

        print("▶ applying database migrations", flush=True)
        from store.migrate import upgrade

        upgrade(settings.sync_sqlalchemy_url)
        tenant = asyncio.run(bootstrap_tenant(settings, data_dir))
        login = dashboard_login(settings, data_dir)

        api = urlsplit(settings.public_base_url)
        print("▶ starting worker and API", flush=True)
        procs["worker"] = subprocess.Popen([sys.executable, "worker.py"], start_new_session=True)
        procs["api"] = subprocess.Popen(
            [str(BIN / "uvicorn"), "api.app:create_app", "--factory", "--host", api.hostname or "127.0.0.1",
             "--port", str(api.port or 8000), "--log-level", "warning"], start_new_session=True)
        wait_ready(settings.public_base_url, procs)

        base = settings.public_base_url.rstrip("/")
        print(f"""
Herald is running.
  API            {base}
  API docs       {base}/docs
  Dashboard      {base}/dashboard  ({login})
  Temporal UI    {settings.temporal_ui_url}
  Workspace      {tenant['workspace_id']}
  Test API key   {tenant['test_api_key']}

Try:  curl -H "Authorization: Bearer {tenant['test_api_key']}" {base}/v1/workspace
Press Ctrl-C to stop.""", flush=True)
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping", flush=True)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("▶ stopping", flush=True)
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
