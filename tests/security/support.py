"""Helpers shared by the security tests: the real hosted connect flow, what the sandbox platforms issued,
and recorders for every API answer and every log record of a tour."""

from __future__ import annotations

import contextlib
import html
import logging
import re
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urljoin

import httpx

from adapters.sandbox.core import WORLD
from store.credentials import SANDBOX_QUICKSTART
from temporal_client import connect
from tests.webhooks.support import FAST
from workflows.webhooks import OutboxInput, ensure_outbox, outbox_workflow_id

# Values shorter than this are not searched for: they would match by chance.
MIN_SECRET_LENGTH = 12


def marker(label: str) -> str:
    """A distinctive value (a caption, a handle...) whose appearance anywhere can only be a leak."""
    return f"{label}-{secrets.token_hex(6)}"


def app_password() -> str:
    """A fresh Bluesky-shaped app password (xxxx-xxxx-xxxx-xxxx)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


# --- the hosted connect flow, as an end user's browser goes through it --------------------------------


async def connect_hosted(client: httpx.AsyncClient, http: httpx.AsyncClient, platform: str, *,
                         external_user_id: str, username: str, **session_fields) -> tuple[dict, httpx.Response]:
    """Create a connect session (dialect U), open its hosted page, consent at the sandbox platform and come
    back through Herald's callback. Returns the session as created and Herald's answer to the callback."""
    r = await client.post("/v1/connect/sessions", json={"platform": platform, "external_user_id": external_user_id,
                                                         **session_fields})
    assert r.status_code == 201, r.text
    session = r.json()["data"]
    landing = await hosted_connect(http, session["url"], username=username)
    return session, landing


async def connect_hosted_bluesky(client: httpx.AsyncClient, http: httpx.AsyncClient, *, external_user_id: str,
                                 handle: str, password: str, **session_fields) -> tuple[dict, httpx.Response]:
    """The hosted Bluesky form: handle and app password posted to Herald's own page."""
    r = await client.post("/v1/connect/sessions", json={"platform": "bluesky", "external_user_id": external_user_id,
                                                         **session_fields})
    assert r.status_code == 201, r.text
    session = r.json()["data"]
    page = await http.get(session["url"])
    token = html.unescape(re.search(r'name="form_token" value="([^"]+)"', page.text).group(1))
    answer = await http.post(f"{session['url']}/bluesky",
                             data={"form_token": token, "handle": handle, "app_password": password})
    return session, answer


async def consent_redirect(http: httpx.AsyncClient, authorize_url: str, *, username: str,
                           decision: str = "approve") -> str:
    """Decide on the sandbox platform's consent screen; returns where the platform sends the browser back."""
    page = await http.get(authorize_url)
    assert page.status_code == 200, page.text
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    hidden = {html.unescape(k): html.unescape(v)
              for k, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text)}
    decided = await http.post(urljoin(authorize_url, action),
                              data={**hidden, "sandbox_username": username, "decision": decision})
    assert decided.status_code in (302, 303), decided.text
    return decided.headers["location"]


async def hosted_connect(http: httpx.AsyncClient, hosted_url: str, *, username: str,
                         decision: str = "approve") -> httpx.Response:
    """Open the hosted page, press Continue, decide at the platform, come back: Herald's callback answer."""
    return await http.get(await consent_redirect(http, await oauth_authorize_url(http, hosted_url),
                                                 username=username, decision=decision))


async def oauth_authorize_url(http: httpx.AsyncClient, hosted_url: str) -> str:
    """Open the hosted page and press Continue: the platform's authorize URL (with Herald's state)."""
    page = await http.get(hosted_url)
    assert page.status_code == 200, page.text
    token = html.unescape(re.search(r'name="form_token" value="([^"]+)"', page.text).group(1))
    started = await http.post(f"{hosted_url}/authorize", data={"form_token": token})
    assert started.status_code == 303, started.text
    return started.headers["location"]


# --- what the sandbox platforms hold -----------------------------------------------------------------


def sandbox_secrets() -> dict[str, str]:
    """Every credential the sandbox platforms issued or were shown, from their own state: access and refresh
    tokens, app passwords, and client secrets. Keyed by a label that says what the value is."""
    found: dict[str, str] = {}
    with WORLD.lock:
        for platform, st in WORLD.platforms.items():
            for grant in st.grants.values():
                found[grant.token] = f"{platform} {grant.kind} token"
            for user in st.users.values():
                if user.password:
                    found[user.password] = f"{platform} app password of {user.username}"
            for client_id, secret in st.apps.items():
                if secret:
                    found[secret] = f"{platform} client secret of {client_id}"
    found[SANDBOX_QUICKSTART[1]] = "the sandbox quickstart client secret"
    return {value: label for value, label in found.items() if len(value) >= MIN_SECRET_LENGTH}


def leaks(haystack: bytes | str, needles: dict[str, str]) -> list[str]:
    """The labels of the needles found in the haystack."""
    data = haystack.encode() if isinstance(haystack, str) else haystack
    return sorted({label for value, label in needles.items() if value.encode() in data})


# --- recorders ------------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    url: str
    status: int
    headers: str  # every response header, "name: value" per line (Location among them)
    body: str
    exempt: set[str] = field(default_factory=set)  # secrets this very answer is meant to show


class ResponseRecorder:
    """An httpx response hook that keeps every answer of the API under test (not of the sandbox platforms).

    An API key is allowed in the answer that creates it, and a webhook secret in the create and rotate
    answers (and their idempotent replays): `exempt` holds exactly those values for that one answer."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.seen: list[Seen] = []

    async def hook(self, response: httpx.Response) -> None:
        url = str(response.url)
        if not url.startswith(self.base_url) or response.url.path.startswith("/sandbox"):
            return
        await response.aread()
        request = response.request
        exempt: set[str] = set()
        path = response.url.path
        if request.method == "POST" and response.status_code in (200, 201) and (
                path == "/v1/api-keys" or path == "/v1/webhooks"
                or (path.startswith("/v1/webhooks/") and path.endswith("/rotate"))):
            data = response.json().get("data", {})
            exempt = {v for v in (data.get("key"), data.get("secret")) if v}
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.seen.append(Seen(request.method, url, response.status_code, headers, response.text, exempt))

    def client(self, stack, key: str | None = None) -> httpx.AsyncClient:
        return stack.client(key, event_hooks={"response": [self.hook]})

    def browser(self) -> httpx.AsyncClient:
        """An end user's browser (no API key), recorded the same way."""
        return httpx.AsyncClient(timeout=30, event_hooks={"response": [self.hook]})


class LogRecorder(logging.Handler):
    """Every log record of the process (API, worker, adapters, libraries), formatted with its exception."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            extra = " ".join(f"{k}={v!r}" for k, v in record.__dict__.items()
                             if k in ("request_id", "workspace_id") and v)
        except Exception:  # a record that cannot be formatted is kept raw
            line, extra = repr(record.__dict__), ""
        with self._lock:
            self.lines.append(f"{line} {extra}".rstrip())

    @contextlib.contextmanager
    def installed(self, level: int = logging.DEBUG):
        """Attach to the root logger and let every record through at `level` for the duration."""
        root = logging.getLogger()
        old = root.level
        root.addHandler(self)
        root.setLevel(level)
        try:
            yield self
        finally:
            root.removeHandler(self)
            root.setLevel(old)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


@contextlib.asynccontextmanager
async def webhook_outbox(stack) -> AsyncIterator[None]:
    """The outbox loop on the stack's task queue with short retries (schedules are off in tests)."""
    client = await connect(stack.settings)
    await ensure_outbox(client, stack.settings.task_queue, OutboxInput(
        policy=FAST, poll_interval=timedelta(milliseconds=200), rounds=500))
    try:
        yield
    finally:
        await client.get_workflow_handle(outbox_workflow_id(stack.settings.task_queue)).terminate()
