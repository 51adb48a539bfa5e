"""A scheduled post's run is held by the Temporal server until the post is due (a start delay), instead of
waiting on its own timer: no workflow task, no timer and no cached run while it waits. An edit or cancel (an
update) starts a held run at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError

from tests.support.accounts import connect_oauth, sandbox_posts
from tests.support.histories import record_history
from tests.support.posts import wait_status
from temporal_client import start_delay
from workflows import search_attributes as sa


def test_the_delay_runs_to_the_due_time_less_the_preparation():
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert start_delay(now + timedelta(minutes=10), None, now) == timedelta(minutes=10)
    assert start_delay(now + timedelta(minutes=10), 120.0, now) == timedelta(minutes=8)
    assert start_delay(now + timedelta(seconds=30), 120.0, now) is None  # preparation is due already
    assert start_delay(now - timedelta(seconds=1), None, now) is None
    assert start_delay(None, 120.0, now) is None


async def started(temporal_env, post_id: str):
    handle = temporal_env.client.get_workflow_handle(f"post/{post_id}")
    for _ in range(100):  # the API starts the workflow after it has answered
        try:
            return handle, await handle.describe()
        except RPCError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"post/{post_id} was never started")


def event_types(history) -> list[int]:
    return [e.event_type for e in history.events]


async def test_a_held_run_starts_when_due_and_an_edit_starts_it_at_once(pstack, temporal_env):
    x = await connect_oauth(pstack, "twitter", "held")
    async with pstack.client(pstack.tenant.test_key) as c:
        due = datetime.now(UTC) + timedelta(seconds=10)  # room for a slow machine before the edit
        held = (await c.post("/v1/social-posts", json={"caption": "held", "account_ids": [x],
                                                        "scheduled_at": due.isoformat()})).json()["data"]
        edited = (await c.post("/v1/social-posts", json={"caption": "to edit", "account_ids": [x],
                                                          "scheduled_at": due.isoformat()})).json()["data"]
        handle, desc = await started(temporal_env, held["id"])
        # Running and filterable in the Temporal UI while held, with no workflow task yet.
        assert desc.status.name == "RUNNING"
        assert desc.typed_search_attributes.get(sa.STATUS) == "scheduled"
        history = await handle.fetch_history()
        assert event_types(history) == [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
        backoff = history.events[0].workflow_execution_started_event_attributes.first_workflow_task_backoff
        assert 4 < backoff.ToTimedelta().total_seconds() <= 10

        await started(temporal_env, edited["id"])
        r = await c.patch(f"/v1/social-posts/{edited['id']}", json={"caption": "edited while held"})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["caption"] == "edited while held"
        assert datetime.now(UTC) < due, "the edit waited for the due time"

        for post in (held, edited):
            done = await wait_status(c, post["id"], {"published", "failed", "partial"})
            assert done["status"] == "published", done
    posts = await sandbox_posts(pstack, "twitter")
    assert sorted(p["text"] for p in posts) == ["edited while held", "held"]
    assert all(p["created_at"] >= due.timestamp() for p in posts), "published before it was due"

    history = await handle.fetch_history()
    first_task = next(e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
    assert first_task.event_time.ToDatetime().replace(tzinfo=UTC) >= due - timedelta(milliseconds=50)
    assert EventType.EVENT_TYPE_TIMER_STARTED not in event_types(history), "a held run needs no timer"
    record_history(history, "publish_held_until_due.json")
    record_history(await temporal_env.client.get_workflow_handle(f"post/{edited['id']}").fetch_history(),
                   "publish_held_then_edited.json")
