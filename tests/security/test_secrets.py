"""Secrets at rest and in output, after one full tour of everything that handles a credential.

The tour (once per database) connects accounts on every OAuth platform through the real hosted flow (the
workspace's own OAuth apps with client secrets, and the quickstart app), connects Bluesky by app password
(over the API and on the hosted form), publishes (with a forced token refresh), disconnects an account,
creates and rotates webhooks that are then delivered to, and creates API keys, some with an
Idempotency-Key and replayed. The credentials are then taken from the sandbox platforms' own state (every
access and refresh token they issued, every app password and client secret they were shown) plus what the
API itself handed out (API keys, webhook secrets), and looked for:

- in the raw database: the SQLite file and its -wal (and -shm/-journal) bytes, or every text, JSON and
  bytea column of every table on PostgreSQL;
- in every log record the process wrote during the tour (API, worker and libraries, at the INFO level the
  product runs at, Herald's own loggers at DEBUG);
- in every answer of the API (body and headers, Location included), except an API key in the answer that
  creates it and a webhook secret in the create and rotate answers;
- in the webhook deliveries the receiver got.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.dialect_m.support import REDIRECT, allow_redirect, m_client
from tests.conftest import ready_stack
from tests.security.support import (
    LogRecorder,
    ResponseRecorder,
    app_password,
    connect_hosted,
    connect_hosted_bluesky,
    hosted_connect,
    leaks,
    marker,
    sandbox_secrets,
    webhook_outbox,
)
from tests.support.accounts import fault
from tests.support.servers import serve
from tests.webhooks.support import Receiver, wait_for

# Platforms connected with the workspace's own OAuth app (white-label), and with the quickstart app.
WHITE_LABEL = ("twitter", "facebook", "instagram", "threads", "linkedin")
QUICKSTART = ("youtube", "tiktok", "pinterest")
DELIVERED = ("account.connected", "connect_session.completed", "post.published", "account.disconnected")


@dataclass
class Tour:
    stack: object
    responses: ResponseRecorder
    logs: LogRecorder
    receiver: Receiver
    issued: dict[str, str] = field(default_factory=dict)  # every secret of the tour -> what it is
    from_sandbox: dict[str, str] = field(default_factory=dict)  # what the sandbox platforms' own state holds
    caption: str = ""


async def run_tour(stack, responses: ResponseRecorder, receiver: Receiver) -> Tour:
    tour = Tour(stack, responses, None, receiver)  # type: ignore[arg-type]
    issued = tour.issued
    tenant = stack.tenant
    issued[tenant.test_key] = "the tenant's test API key"
    issued[tenant.live_key] = "the tenant's live API key"
    async with responses.client(stack, tenant.test_key) as c, responses.browser() as http:
        # Webhooks first, so every later event is delivered (signed with these secrets).
        r = await c.post("/v1/webhooks", json={"url": receiver.hook, "events": ["*"]},
                         headers={"Idempotency-Key": "tour-webhook-1"})
        assert r.status_code == 201, r.text
        hook = r.json()["data"]
        issued[hook["secret"]] = "webhook secret (created)"
        replay = await c.post("/v1/webhooks", json={"url": receiver.hook, "events": ["*"]},
                              headers={"Idempotency-Key": "tour-webhook-1"})
        assert replay.headers.get("idempotent-replayed") == "true"
        rotated = await c.post(f"/v1/webhooks/{hook['id']}/rotate", headers={"Idempotency-Key": "tour-rotate-1"})
        assert rotated.status_code == 200, rotated.text
        issued[rotated.json()["data"]["secret"]] = "webhook secret (rotated)"
        second = await c.post("/v1/webhooks", json={"url": receiver.hook + "?second=1", "events": ["*"],
                                                    "idempotency_key": "tour-webhook-2"})
        issued[second.json()["data"]["secret"]] = "webhook secret (second, body idempotency key)"

        # API keys: over the API, with and without an idempotency key, in both modes.
        for body, headers in (({"name": "ci", "environment": "test"}, {"Idempotency-Key": "tour-key-1"}),
                              ({"name": "plain", "environment": "test"}, {}),
                              ({"name": "body-key", "environment": "test", "idempotency_key": "tour-key-2"}, {})):
            r = await c.post("/v1/api-keys", json=body, headers=headers)
            assert r.status_code == 201, r.text
            issued[r.json()["data"]["key"]] = f"API key {body['name']}"
        replay = await c.post("/v1/api-keys", json={"name": "ci", "environment": "test"},
                              headers={"Idempotency-Key": "tour-key-1"})
        assert replay.headers.get("idempotent-replayed") == "true"
        async with responses.client(stack, tenant.live_key) as live:
            r = await live.post("/v1/api-keys", json={"name": "live", "environment": "live"},
                                headers={"Idempotency-Key": "tour-live-key"})
            assert r.status_code == 201, r.text
            issued[r.json()["data"]["key"]] = "live API key"
            secret = marker("live-x-client-secret")
            issued[secret] = "twitter client secret (workspace, live)"
            r = await live.post("/v1/platform-credentials", json={
                "platform": "twitter", "client_id": "live-x-app", "client_secret": secret})
            assert r.status_code == 201, r.text
        revoked_key = (await c.post("/v1/api-keys", json={"name": "doomed", "environment": "test"})).json()["data"]
        issued[revoked_key["key"]] = "revoked API key"
        assert (await c.delete(f"/v1/api-keys/{revoked_key['id']}")).status_code == 200

        # The workspace's own OAuth apps: the client secret goes in, never comes out.
        for platform in WHITE_LABEL:
            secret = marker(f"{platform}-client-secret")
            issued[secret] = f"{platform} client secret (workspace)"
            r = await c.post("/v1/platform-credentials", json={
                "platform": platform, "client_id": f"acme-{platform}-app", "client_secret": secret},
                headers={"Idempotency-Key": f"tour-cred-{platform}"})
            assert r.status_code == 201 and "client_secret" not in r.json()["data"], r.text

        # Every OAuth platform through the hosted flow.
        accounts: dict[str, str] = {}
        for platform in WHITE_LABEL + QUICKSTART:
            session, landing = await connect_hosted(
                c, http, platform, external_user_id="tour-user", username=f"tour_{platform}",
                return_url="https://app.acme.test/done", allow_quickstart_creds=platform in QUICKSTART)
            assert landing.status_code == 303, (platform, landing.text)
            done = (await c.get(f"/v1/connect/sessions/{session['id']}")).json()["data"]
            assert done["status"] == "completed", (platform, done)
            accounts[platform] = done["completed_social_account_id"]

        # Bluesky by app password: over the API, and on the hosted form.
        password = app_password()
        issued[password] = "bluesky app password (API)"
        r = await c.post("/v1/accounts/connect", json={
            "platform": "bluesky", "credentials": {"handle": "tour-api.test", "app_password": password},
            "external_user_id": "tour-user"}, headers={"Idempotency-Key": "tour-bsky"})
        assert r.status_code == 201, r.text
        accounts["bluesky"] = r.json()["data"]["id"]
        password = app_password()
        issued[password] = "bluesky app password (hosted form)"
        session, answer = await connect_hosted_bluesky(c, http, external_user_id="tour-user",
                                                       handle="tour-hosted.test", password=password,
                                                       return_url="https://app.acme.test/done")
        assert answer.status_code == 303, answer.text
        # A wrong password on the hosted form is refused without echoing it.
        wrong = app_password()
        _, refused = await connect_hosted_bluesky(c, http, external_user_id="tour-user", handle="tour-api.test",
                                                  password=wrong)
        assert refused.status_code == 422, refused.text
        issued[wrong] = "a wrong bluesky app password"

        # Publish everywhere, with X's access token expiring on the way (a refresh with rotation).
        await fault(stack, "twitter", "expire_token", path_contains="/2/tweets")
        tour.caption = marker("tour caption")
        r = await c.post("/v1/social-posts", json={"caption": tour.caption,
                                                    "account_ids": [accounts[p] for p in ("twitter", "bluesky",
                                                                                          "linkedin", "facebook")]},
                         headers={"Idempotency-Key": "tour-post"})
        assert r.status_code == 200, r.text
        post = r.json()["data"]
        assert post["status"] == "published", post

        # Disconnect one account (revoked at the platform).
        assert (await c.delete(f"/v1/accounts/{accounts['linkedin']}")).status_code == 200
        # What the API shows of all this afterwards.
        for path in ("/v1/accounts", "/v1/platform-credentials", "/v1/webhooks", "/v1/api-keys", "/v1/users",
                     f"/v1/webhooks/{hook['id']}/deliveries", f"/v1/accounts/{accounts['bluesky']}/health"):
            assert (await c.get(path)).status_code == 200, path

    # Dialect M: an end user connects through an allowlisted redirect and posts.
    await allow_redirect(stack)
    async with m_client(stack, tenant.test_key) as m, responses.browser() as http:
        m.event_hooks["response"] = [responses.hook]
        assert (await m.post("/v1/end-users", json={"externalUserId": "tour-m-user"})).status_code == 200
        r = await m.post("/v1/connect-sessions", json={"externalUserId": "tour-m-user", "platform": "twitter",
                                                        "redirectUri": REDIRECT})
        assert r.status_code == 201, r.text
        landing = await hosted_connect(http, r.json()["connectUrl"], username="tour_m_twitter")
        assert landing.status_code == 303, landing.text
        r = await m.post("/v1/posts", json={"externalUserId": "tour-m-user", "content": marker("m caption"),
                                             "platforms": ["twitter"]})
        assert r.status_code == 201, r.text

    # The events of the tour reach the receiver (signed with the current and the previous secret).
    def delivered() -> bool:
        types = [json.loads(x.body)["type"] for x in receiver.requests]
        return set(DELIVERED) <= set(types) and types.count("post.published") >= 4  # 2 posts, 2 subscriptions

    await wait_for(delivered, timeout=30, what="the tour's webhook deliveries")
    return tour


@pytest.fixture(scope="module")
async def tour(module_database, temporal_env):
    receiver = Receiver()
    logs = LogRecorder()
    herald = logging.getLogger("herald")
    with serve(receiver.app()) as receiver_url, logs.installed(logging.INFO):
        herald.setLevel(logging.DEBUG)
        receiver.url = receiver_url
        try:
            async with ready_stack(module_database, temporal_env, immediate_publish_wait_seconds=30) as stack, \
                    webhook_outbox(stack):
                responses = ResponseRecorder(stack.url)
                result = await run_tour(stack, responses, receiver)
                result.logs = logs
                await asyncio.sleep(0.5)  # let the write-behind request logs and the last deliveries land
                result.from_sandbox = sandbox_secrets()
                result.issued.update({k: v for k, v in result.from_sandbox.items() if k not in result.issued})
                yield result
        finally:
            herald.setLevel(logging.NOTSET)


def test_the_tour_handled_every_kind_of_secret(tour):
    """The checks below are only worth something if the tour really produced every kind of credential:
    access and refresh tokens on every platform (a rotated one included), app passwords, client secrets,
    webhook secrets and API keys."""
    labels = set(tour.issued.values())
    for platform in ("twitter", "facebook", "instagram", "threads", "linkedin", "youtube", "tiktok",
                     "pinterest", "bluesky"):
        assert any(label.startswith(f"{platform} ") and "access token" in label for label in labels), platform
    values = list(tour.issued.values())
    # Two connects, then the forced refresh issued a new pair (X rotates refresh tokens).
    assert values.count("twitter refresh token") >= 3 and values.count("twitter access token") >= 3
    for kind in ("bluesky app password (API)", "bluesky app password (hosted form)", "webhook secret (created)",
                 "webhook secret (rotated)", "API key ci", "live API key", "facebook client secret (workspace)",
                 "the sandbox quickstart client secret"):
        assert kind in labels, kind
    # The app passwords and client secrets the tour gave are the ones the sandbox platforms hold.
    given = [k for k, v in tour.issued.items() if "app password (" in v or "client secret (workspace)" in v]
    assert given and all(k in tour.from_sandbox for k in given)


async def _raw_database(stack) -> tuple[bytes, str]:
    """Every byte Herald's database holds, and where they came from."""
    url = stack.settings.database_url
    if url.startswith("sqlite"):
        path = Path(urlsplit(url).path)
        files = [p for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal")))
                 if p.exists()]
        assert path in files and path.with_name(path.name + "-wal") in files, files
        return b"".join(p.read_bytes() for p in files), ", ".join(p.name for p in files)
    chunks = []
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type IN "
            "('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'USER-DEFINED', 'ARRAY')"
        ).fetchall()
        assert columns
        for table, column, kind in columns:
            expr = f'"{column}"' if kind == "bytea" else f'"{column}"::text'
            for (value,) in conn.execute(f'SELECT {expr} FROM "{table}" WHERE "{column}" IS NOT NULL'):
                chunks.append(bytes(value) if kind == "bytea" else value.encode())
    return b"\n".join(chunks), f"{len(columns)} columns"


async def test_database_holds_no_secret_in_plaintext(tour):
    """No token, refresh token, client secret, app password, webhook secret or API key the tour used or
    received is anywhere in the raw database (the SQLite file and its WAL; every text/JSON/bytea column on
    PostgreSQL). The scan itself is proven to see fresh writes: the tour's caption is found."""
    raw, where = await _raw_database(tour.stack)
    assert tour.caption.encode() in raw, f"the scan of {where} does not see the tour's post"
    found = leaks(raw, tour.issued)
    assert found == [], f"in plaintext in the database ({where}): {found}"


def test_logs_hold_no_secret(tour):
    """No credential appears in any log record of the API, the worker or the libraries they use."""
    log_text = tour.logs.text()
    lines = log_text.splitlines()
    # The capture saw Herald's own records and the HTTP clients' (the worker's token exchanges among them,
    # with their credentials redacted rather than the lines dropped).
    assert any(line.startswith("herald.") for line in lines) and any(line.startswith("httpx ") for line in lines)
    assert "fb_exchange_token=REDACTED" in log_text and "client_secret=REDACTED" in log_text
    found = [(label, line[:300]) for line in lines for label in leaks(line, tour.issued)]
    assert found == [], f"credentials in the logs: {found}"


def test_responses_and_locations_hold_no_secret(tour):
    """No API answer of the tour (bodies and headers of JSON answers, hosted pages, callbacks and their
    redirects) carries a credential, except the API key in the answer that creates it and the webhook
    secret in its create and rotate answers."""
    seen = tour.responses.seen
    assert len(seen) > 50 and any(s.exempt for s in seen)
    assert any("location: https://app.acme.test/done" in s.headers for s in seen)  # the callbacks' redirects
    assert any("/api/v1/" in s.url for s in seen) and any("/connect/" in s.url for s in seen)
    found = []
    for s in seen:
        allowed = {k: v for k, v in tour.issued.items() if k not in s.exempt}
        for label in leaks(s.headers + "\n" + s.body, allowed):
            found.append((s.method, s.url, s.status, label))
    assert found == [], f"credentials in API answers: {found}"


def test_webhook_deliveries_hold_no_secret(tour):
    """What the customer's receiver got (events about connected accounts and posts) carries no credential;
    only signatures derived from the webhook secrets."""
    bodies = [x.body for x in tour.receiver.requests]
    types = {json.loads(b)["type"] for b in bodies}
    assert set(DELIVERED) <= types
    found = [(json.loads(b)["type"], label) for b in bodies for label in leaks(b, tour.issued)]
    headers = [label for x in tour.receiver.requests for label in leaks(json.dumps(x.headers), tour.issued)]
    assert found == [] and headers == [], (found, headers)
