"""What the Temporal UI shows of a post: its summary, and one readable line per platform call."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.converter import PayloadConverter

from tests.conftest import start_stack
from tests.support.accounts import connect_oauth


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_each_platform_call_of_a_post_has_a_summary(database, temporal_env):
    """A two-part X thread with a first comment: the workflow's history names each scheduled platform call in
    order ("publish part 1 to twitter", ...), beside the post's own summary. Replaying recorded histories made
    without summaries is covered by tests/workflows/test_replay.py."""
    stack, close = await start_stack(database, temporal_env, immediate_publish_wait_seconds=30)
    try:
        x = await connect_oauth(stack, "twitter", "uma")
        async with stack.client(stack.tenant.test_key) as c:
            r = await c.post("/v1/social-posts", json={"platform_posts": [
                {"account_id": x, "caption": "first", "thread_position": 1, "first_comment": "and a comment"},
                {"account_id": x, "caption": "second", "thread_position": 2},
            ]})
            post = r.json()["data"]
            assert post["status"] == "published", post
    finally:
        await close()
    handle = temporal_env.client.get_workflow_handle(f"post/{post['id']}")
    assert await (await handle.describe()).static_summary() == f"Post {post['id']} to twitter"
    summaries = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            summary = event.user_metadata.summary
            summaries.append(PayloadConverter.default.from_payload(summary, str) if summary.data else None)
    assert summaries == ["publish part 1 to twitter", "publish part 2 to twitter", "post the first comment on twitter"]
