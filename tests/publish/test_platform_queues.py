"""A platform on its own task queue: its calls run only where that queue is polled, and never hold back others.

Two real worker processes: one polls only the main queue (workflows and the other platforms' calls), one only
Bluesky's queue. With the Bluesky worker down, a post to X and Bluesky publishes on X and waits on Bluesky;
once that worker starts, Bluesky publishes too.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import start_stack
from tests.support.accounts import connect_bluesky, connect_oauth, sandbox_posts
from tests.support.processes import spawn_worker, stop


def spawn(stack, queues: str, log):
    return spawn_worker(stack.settings, log, HERALD_PLATFORM_TASK_QUEUES=f"bluesky={stack.settings.task_queue}-bluesky",
                        HERALD_WORKER_QUEUES=queues)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_platform_queue_isolates_its_calls(database, temporal_env, tmp_path):
    stack, close = await start_stack(database, temporal_env, worker=False, immediate_publish_wait_seconds=0,
                                     rate_limit_per_minute=100_000)
    main_queue, bluesky_queue = stack.settings.task_queue, f"{stack.settings.task_queue}-bluesky"
    log = tmp_path / "workers.log"
    main = spawn(stack, main_queue, log)
    bluesky = None
    try:
        x = await connect_oauth(stack, "twitter", "queues")
        async with stack.client(stack.tenant.test_key) as c:
            bsky = await connect_bluesky(c, "queues.test")
            r = await c.post("/v1/social-posts", json={"caption": "queued apart", "account_ids": [x, bsky]})
            assert r.status_code == 200, r.text
            post_id = r.json()["data"]["id"]

            async def results() -> dict[str, str]:
                post = (await c.get(f"/v1/social-posts/{post_id}")).json()["data"]
                return {res["platform"]: res["status"] for res in post["results"]}

            for _ in range(150):
                if (await results())["twitter"] == "published":
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)  # time enough for a Bluesky call, had anything polled its queue
            assert await results() == {"twitter": "published", "bluesky": "publishing"}
            assert [p["text"] for p in await sandbox_posts(stack, "bluesky")] == []

            bluesky = spawn(stack, bluesky_queue, log)
            for _ in range(150):
                if (await results())["bluesky"] == "published":
                    break
                await asyncio.sleep(0.2)
            assert await results() == {"twitter": "published", "bluesky": "published"}
        history = await temporal_env.client.get_workflow_handle(f"post/{post_id}").fetch_history()
        queues = {e.activity_task_scheduled_event_attributes.activity_type.name + "@" +
                  e.activity_task_scheduled_event_attributes.task_queue.name
                  for e in history.events if e.HasField("activity_task_scheduled_event_attributes")}
        assert f"publish.publish_part@{bluesky_queue}" in queues and f"publish.publish_part@{main_queue}" in queues
    finally:
        stop(main)
        stop(bluesky)
        await close()
