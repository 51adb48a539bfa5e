"""A scheduled post prepares ahead of its due time: media uploaded and the platform's container staged
`prep_lead_seconds` early, so that only the publish call is left when it falls due. An edit after that
discards the prepared work; a cancel stops it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from adapters.sandbox.core import WORLD
from tests.media.conftest import create, media_stack, upload
from tests.support.accounts import connect_oauth, sandbox_posts
from tests.support.histories import record_history
from tests.support.media import jpeg
from tests.support.posts import wait_status

LEAD = 6.0  # prepared this long before due
DUE_IN = 10.0


@pytest.fixture
async def stack(database, temporal_env, tmp_path):
    async with media_stack(database, temporal_env, tmp_path / "data", schedule_lead_seconds=1,
                           prep_lead_seconds=LEAD) as s:
        yield s


async def scheduled_photo(stack, c, account: str, caption: str) -> tuple[dict, datetime]:
    image = jpeg(4096)
    media = await create(c, f"{caption}.jpg", "image/jpeg", size_bytes=len(image))
    assert (await upload(c, media, image)).status_code == 200
    due = datetime.now(UTC) + timedelta(seconds=DUE_IN)
    r = await c.post("/v1/social-posts", json={"caption": caption, "account_ids": [account],
                                                "media_ids": [media["id"]], "scheduled_at": due.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "scheduled"
    return r.json()["data"], due


def containers_of(account_external_id: str | None = None) -> list[dict]:
    with WORLD.lock:
        return sorted((c for c in WORLD.state("instagram").table("containers").values()
                       if account_external_id is None or c["owner"] == account_external_id),
                      key=lambda c: c["created_at"])


async def wait_for_container(owner: str, n: int, timeout: float = DUE_IN) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(found := containers_of(owner)) < n:
        assert asyncio.get_running_loop().time() < deadline, f"no container staged ahead for {owner}"
        await asyncio.sleep(0.1)
    return found


async def owner_of(stack, account_id: str) -> str:
    async with stack.client(stack.tenant.test_key) as c:
        return (await c.get(f"/v1/accounts/{account_id}")).json()["data"]["external_account_id"]


async def scheduled_times(temporal_env, post_id: str) -> dict[str, list[datetime]]:
    """When each activity type was scheduled, from the workflow's history."""
    history = await temporal_env.client.get_workflow_handle(f"post/{post_id}").fetch_history()
    out: dict[str, list[datetime]] = {}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            out.setdefault(name, []).append(event.event_time.ToDatetime().replace(tzinfo=UTC))
    return out


async def test_media_and_container_are_ready_before_the_due_time(stack, temporal_env):
    ig = await connect_oauth(stack, "instagram", "early")
    owner = await owner_of(stack, ig)
    async with stack.client(stack.tenant.test_key) as c:
        post, due = await scheduled_photo(stack, c, ig, "ready early")
        post = await wait_status(c, post["id"], {"published", "partial", "failed"}, timeout=60)
    assert post["status"] == "published", post["results"]
    [container] = containers_of(owner)
    assert container["created_at"] < due.timestamp(), "the container was not staged ahead"
    [gram] = await sandbox_posts(stack, "instagram")
    assert gram["text"] == "ready early" and gram["created_at"] >= due.timestamp()
    times = await scheduled_times(temporal_env, post["id"])
    assert max(times["publish.upload_media"] + times["publish.prepare"]) < due
    assert min(times["publish.publish_part"]) >= due - timedelta(milliseconds=50)
    history = await temporal_env.client.get_workflow_handle(f"post/{post['id']}").fetch_history()
    assert started_with(history)["prep_lead_seconds"] == LEAD
    record_history(history, "publish_prepared_ahead.json")


async def test_a_text_post_has_nothing_to_prepare(stack, temporal_env):
    """Text alone needs no preparation: its workflow is started without any (and so never looks)."""
    x = await connect_oauth(stack, "twitter", "plain")
    async with stack.client(stack.tenant.test_key) as c:
        due = datetime.now(UTC) + timedelta(seconds=3)
        r = await c.post("/v1/social-posts", json={"caption": "just words", "account_ids": [x],
                                                    "scheduled_at": due.isoformat()})
        post = await wait_status(c, r.json()["data"]["id"], {"published", "partial", "failed"}, timeout=60)
    assert post["status"] == "published", post["results"]
    history = await temporal_env.client.get_workflow_handle(f"post/{post['id']}").fetch_history()
    assert started_with(history)["prep_lead_seconds"] is None


def started_with(history) -> dict:
    """The workflow's input, as the API started it."""
    [payload] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    return json.loads(payload.data)


async def test_an_edit_after_preparing_publishes_the_edited_post(stack):
    ig = await connect_oauth(stack, "instagram", "editor")
    owner = await owner_of(stack, ig)
    async with stack.client(stack.tenant.test_key) as c:
        post, due = await scheduled_photo(stack, c, ig, "before the edit")
        [staged] = await wait_for_container(owner, 1)
        assert staged["params"].get("caption") == "before the edit"
        r = await c.patch(f"/v1/social-posts/{post['id']}", json={"caption": "after the edit"})
        assert r.status_code == 200, r.text
        post = await wait_status(c, post["id"], {"published", "partial", "failed"}, timeout=60)
    assert post["status"] == "published", post["results"]
    [gram] = await sandbox_posts(stack, "instagram")
    assert gram["text"] == "after the edit"
    old, new = containers_of(owner)
    assert old["params"].get("caption") == "before the edit" and old["published_id"] is None
    assert new["params"].get("caption") == "after the edit" and new["published_id"] is not None


async def test_cancelling_after_preparing_publishes_nothing(stack, temporal_env):
    ig = await connect_oauth(stack, "instagram", "quitter")
    owner = await owner_of(stack, ig)
    async with stack.client(stack.tenant.test_key) as c:
        post, _ = await scheduled_photo(stack, c, ig, "never mind")
        await wait_for_container(owner, 1)
        assert (await c.post(f"/v1/social-posts/{post['id']}/cancel")).status_code == 200
        outcome = await temporal_env.client.get_workflow_handle(f"post/{post['id']}").result()
        assert outcome["status"] == "cancelled"
        assert (await c.get(f"/v1/social-posts/{post['id']}")).json()["data"]["status"] == "cancelled"
    await asyncio.sleep(0.5)
    assert await sandbox_posts(stack, "instagram") == []
    assert [c["published_id"] for c in containers_of(owner)] == [None]
