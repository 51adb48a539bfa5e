"""`herald post replay ID`, run as a real subprocess against the Temporal server: it replays every run of the
post's workflow with the current code and says which ones the code can no longer reproduce."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from tests.conftest import settings_env
from tests.support.accounts import connect_oauth
from tests.support.older_publish import OlderPublishPost
from tests.support.posts import wait_status
from temporal_client import DATA_CONVERTER
from workflows.publish_payloads import PublishPostInput

BIN = Path(sys.executable).parent


async def replay(stack, post_id: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(subprocess.run, [str(BIN / "herald"), "post", "replay", post_id],
                                   env=settings_env(stack.settings), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_replay_reports_each_run(pstack, temporal_env):
    x = await connect_oauth(pstack, "twitter", "replayer")
    async with pstack.client(pstack.tenant.test_key) as c:
        post = (await c.post("/v1/social-posts", json={"caption": "to replay", "account_ids": [x]})).json()["data"]
        assert (await wait_status(c, post["id"], {"published", "partial", "failed"}))["status"] == "published"
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        held = (await c.post("/v1/social-posts", json={"caption": "held", "account_ids": [x],
                                                        "scheduled_at": later})).json()["data"]

        done = await replay(pstack, post["id"])
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith(f"ok    post/{post['id']} run ") and "events)" in done.stdout

        waiting = await replay(pstack, held["id"])
        assert waiting.returncode == 0, waiting.stdout + waiting.stderr
        assert f"held  post/{held['id']}" in waiting.stdout and "nothing to replay" in waiting.stdout
        assert (await c.post(f"/v1/social-posts/{held['id']}/cancel")).status_code == 200

    unknown = await replay(pstack, "post_doesnotexist")
    assert unknown.returncode == 1 and "no workflow found for post post_doesnotexist" in unknown.stderr

    # A run made by different code under the same workflow name: the command names it and exits non-zero.
    client = temporal_env.client
    queue, post_id = f"older-{uuid.uuid4().hex[:6]}", f"post_older{uuid.uuid4().hex[:8]}"
    older = Client(**{**client.config(), "data_converter": DATA_CONVERTER})
    async with Worker(older, task_queue=queue, workflows=[OlderPublishPost]):
        await older.execute_workflow(OlderPublishPost.run, PublishPostInput(post_id=post_id),
                                     id=f"post/{post_id}", task_queue=queue)
    failed = await replay(pstack, post_id)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.stdout.startswith(f"FAIL  post/{post_id} run ") and "ondetermin" in failed.stdout
