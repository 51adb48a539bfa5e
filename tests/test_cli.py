"""The `herald` console command, run as a real subprocess against a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import TEST_KEY

BIN = Path(sys.executable).parent


def herald(database, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HERALD_DATABASE_URL": database.url, "HERALD_ENCRYPTION_KEYS": TEST_KEY,
           "HERALD_ENV": "test"}
    return subprocess.run([str(BIN / "herald"), *args], env=env, capture_output=True, text=True, timeout=60)


async def test_workspace_and_key_commands(stack, database):
    """`workspace create` prints an id, `key create` prints a working key alone, `key revoke` kills it."""
    ws = herald(database, "workspace", "create", "Console Co")
    assert ws.returncode == 0, ws.stderr
    ws_id = ws.stdout.strip()
    assert ws_id.startswith("ws_") and "\n" not in ws_id

    key = herald(database, "key", "create", "--workspace", ws_id, "--mode", "test")
    assert key.returncode == 0, key.stderr
    plaintext = key.stdout.strip()
    assert plaintext.startswith("hrld_test_") and len(key.stdout.splitlines()) == 1

    async with httpx.AsyncClient(base_url=stack.url, headers={"Authorization": f"Bearer {plaintext}"}) as c:
        r = await c.get("/v1/workspace")
        assert r.status_code == 200 and r.json()["data"]["id"] == ws_id
        key_id = (await c.get("/v1/api-keys")).json()["data"][0]["id"]

    revoked = herald(database, "key", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    async with httpx.AsyncClient(base_url=stack.url, headers={"Authorization": f"Bearer {plaintext}"}) as c:
        assert (await c.get("/v1/workspace")).status_code == 401

    engine = create_engine(stack.settings.sync_sqlalchemy_url)
    with engine.connect() as conn:
        dump = str(conn.execute(text("SELECT * FROM api_keys")).all())
    engine.dispose()
    assert plaintext not in dump


def test_errors_are_clear(database):
    missing = herald(database, "key", "create", "--workspace", "ws_nope", "--mode", "test")
    assert missing.returncode != 0 and "no workspace ws_nope" in missing.stderr
    bad_mode = herald(database, "key", "create", "--workspace", "ws_x", "--mode", "prod")
    assert bad_mode.returncode == 2 and "invalid choice" in bad_mode.stderr
