"""Structured logs: every line one JSON object, with the ids of its context, and no credentials."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from sqlmodel import select

from observability import logs
from store.models import SocialAccount
from tests.conftest import start_stack
from tests.observability.support import spawn_worker, stop_worker
from tests.support.accounts import connect_bluesky, connect_oauth, fault

APP_PASSWORD = "abcd-efgh-ijkl-mnop"  # what connect_bluesky sends


def parse(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(parsed[-1], dict) and {"ts", "level", "logger", "message"} <= set(parsed[-1]), line
    return parsed


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_publish_logs_json_lines_with_request_and_workflow_ids_and_no_tokens(database, temporal_env,
                                                                                      tmp_path):
    """API lines carry the request id (the one the response returned) and the workspace; the worker's lines
    written inside an activity, httpx's included, carry the workflow id and the post id. Neither holds an
    access token, the refreshed one, the refresh token, the app password or the API key."""
    stack, close = await start_stack(database, temporal_env, worker=False, immediate_publish_wait_seconds=30)
    api_lines = io.StringIO()
    # The handler create_app installs, writing to a buffer instead of stderr.
    handler = logs.make_handler(json_lines=True, stream=api_lines)
    logging.getLogger().addHandler(handler)
    worker_log = tmp_path / "worker.log"
    worker = spawn_worker(stack, worker_log, log_format="json")
    try:
        x = await connect_oauth(stack, "twitter", "logan")
        await fault(stack, "twitter", "expire_token", path_contains="/2/tweets")
        async with stack.client(stack.tenant.test_key) as c:
            await connect_bluesky(c, "logan.test")
            r = await c.post("/v1/social-posts", json={"caption": "logged", "account_ids": [x]})
            post = r.json()["data"]
            assert post["status"] == "published", post
            create_request_id = r.headers["x-request-id"]
            r = await c.get(f"/v1/social-posts/{post['id']}")
            read_request_id = r.headers["x-request-id"]
        secrets = {stack.tenant.test_key, APP_PASSWORD}
        async with stack.db.session() as s:
            for account in (await s.exec(select(SocialAccount))).all():
                secrets |= {t for t in (account.access_token, account.refresh_token) if t}
    finally:
        logging.getLogger().removeHandler(handler)
        stop_worker(worker)
        await close()

    api = parse(api_lines.getvalue())
    requests = [line for line in api if line["logger"] == "herald.requests"]
    by_id = {line["request_id"]: line for line in requests}
    assert by_id[create_request_id]["message"].startswith("POST /v1/social-posts 200")
    assert by_id[create_request_id]["workspace_id"] == stack.tenant.workspace_id
    assert by_id[read_request_id]["workspace_id"] == stack.tenant.workspace_id
    assert by_id[read_request_id]["post_id"] == post["id"]
    assert all(line.get("request_id") for line in requests), requests
    # A line that knows nothing of the request (httpx, while connecting Bluesky) gets its ids from the context.
    [connect] = [line for line in requests if line["message"].startswith("POST /v1/accounts/connect 201")]
    [session] = [line for line in api if "createSession" in line["message"]]
    assert (session["request_id"], session["workspace_id"]) == (connect["request_id"], stack.tenant.workspace_id)

    worker_text = worker_log.read_text()
    worker_lines = parse(worker_text)
    in_activity = [line for line in worker_lines if line.get("activity")]
    assert in_activity, worker_text[-3000:]
    for line in in_activity:
        assert line["workflow_id"] and line["run_id"], line
        if line["activity"].startswith("publish."):
            assert line["workflow_id"] == f"post/{post['id']}" and line["post_id"] == post["id"], line
    # httpx knows nothing of Temporal: its line of the platform call gets the ids from the activity context.
    platform_calls = [line for line in in_activity if line["logger"] == "httpx" and "/sandbox/twitter/2/tweets"
                      in line["message"]]
    assert platform_calls and platform_calls[0]["activity"] == "publish.publish_part", in_activity
    # The refresh happened (the expired token was replaced), so there was a new token to leak.
    assert any("/sandbox/twitter/2/oauth2/token" in line["message"] for line in in_activity), in_activity

    assert len(secrets) >= 4
    for secret in secrets:
        assert secret not in api_lines.getvalue() and secret not in worker_text


def test_credentials_in_a_message_or_an_extra_never_reach_the_line():
    """Query-string credentials of httpx's URL lines (redacted by the httpx logger's filter, and again by the
    formatter), bearer tokens and API keys in messages, and extras that are not context ids, stay out."""
    out = io.StringIO()
    handler = logs.make_handler(json_lines=True, stream=out)
    logger = logging.getLogger("httpx")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        logger.info('HTTP Request: %s %s "%s"', "GET",
                    httpx.URL("https://graph.example/oauth/access_token?client_secret=s3cr3t-v4lue&fb_exchange_token"
                              "=EAAtok3n&grant_type=fb_exchange_token"), "HTTP/1.1 200 OK")
        logging.getLogger("httpx").warning("retrying with Authorization: Bearer ya29.sEcReTtOkEn123")
        logging.getLogger("httpx").warning("key hrld_test_0123456789abcdefghijABCDEFGHIJ was rejected",
                                           extra={"access_token": "xtra-secret", "request_id": "req_1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    lines = parse(out.getvalue())
    assert len(lines) == 3
    text = out.getvalue()
    for secret in ("s3cr3t-v4lue", "EAAtok3n", "sEcReTtOkEn123", "0123456789abcdefghijABCDEFGHIJ", "xtra-secret"):
        assert secret not in text, text
    assert "grant_type=fb_exchange_token" in lines[0]["message"]
    assert lines[2]["request_id"] == "req_1"
