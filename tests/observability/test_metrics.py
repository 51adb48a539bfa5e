"""Prometheus metrics of the API (/metrics) and of a real worker process (its own port), after a publish.

The worker runs as `python worker.py` with HERALD_WORKER_METRICS_PORT and HERALD_TEMPORAL_METRICS_PORT, so
its counters come from its own registry and the SDK's from its own endpoint, as in production. The API runs
in the test process, whose registry other tests share: its counters are compared before and after.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from temporal_client import connect
from tests.conftest import start_stack
from tests.observability.support import names, scrape, spawn_worker, stop_worker, value, wait_for_value
from tests.support.accounts import connect_bluesky, connect_oauth, fault
from tests.support.servers import free_port, serve
from tests.webhooks.support import FAST, Receiver, create_webhook
from workflows.webhooks import OutboxInput, ensure_outbox, outbox_workflow_id

POST_ROUTE = "/v1/social-posts/{post_id}"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_publish_moves_the_api_worker_and_sdk_metrics(database, temporal_env, tmp_path):
    """One post to X and Bluesky with three faults: X's token expires (one refresh), Bluesky's connection drops
    after it accepted (one retry that reconciles and finds the post), and a webhook subscriber is told.
    Each shows in the counter meant for it, under bounded labels (the route template, never the post id)."""
    stack, close = await start_stack(database, temporal_env, worker=False, immediate_publish_wait_seconds=30)
    worker_port, sdk_port = free_port(), free_port()
    worker = spawn_worker(stack, tmp_path / "worker.log", worker_metrics_port=worker_port,
                          temporal_metrics_port=sdk_port, metrics_host="127.0.0.1")
    worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
    client = await connect(stack.settings)
    receiver = Receiver()
    try:
        with serve(receiver.app()) as receiver_url:
            receiver.url = receiver_url
            await ensure_outbox(client, stack.settings.task_queue,
                                OutboxInput(policy=FAST, poll_interval=timedelta(milliseconds=200)))
            x = await connect_oauth(stack, "twitter", "gauge")
            await fault(stack, "twitter", "expire_token", path_contains="/2/tweets")
            async with stack.client(stack.tenant.test_key) as c:
                bsky = await connect_bluesky(c, "gauge.test")
                await fault(stack, "bluesky", "drop_after_accept", path_contains="createRecord")
                await create_webhook(c, receiver.hook, ["post.published"])
                api_before = (await c.get("/metrics")).text
                r = await c.post("/v1/social-posts", json={"caption": "counted", "account_ids": [x, bsky]})
                assert r.status_code == 200, r.text
                post = r.json()["data"]
                assert post["status"] == "published", post
                assert (await c.get(f"/v1/social-posts/{post['id']}")).status_code == 200
                missing = await c.get("/v1/social-posts/post_doesnotexist")
                assert missing.status_code == 404
                api_after = (await c.get("/metrics")).text

            # The API: one series per route template, whatever the id in the path.
            def moved(name: str, **labels: str) -> float:
                return value(api_after, name, **labels) - value(api_before, name, **labels)

            assert moved("herald_http_requests_total", method="GET", route=POST_ROUTE, status="200") == 1
            assert value(api_after, "herald_gc_frozen_objects") > 1000  # what its startup built
            assert moved("herald_http_requests_total", method="GET", route=POST_ROUTE, status="404") == 1
            assert moved("herald_http_requests_total", method="POST", route="/v1/social-posts", status="200") == 1
            assert moved("herald_http_request_duration_seconds_count", method="POST", route="/v1/social-posts") == 1
            # A route of a router included under a prefix (the sandbox X, called by the worker) keeps it.
            assert moved("herald_http_requests_total", method="POST", route="/sandbox/twitter/2/tweets",
                         status="201") == 1
            assert post["id"] not in api_after and "post_doesnotexist" not in api_after

            # The worker, from its own process and port.
            text = await wait_for_value(worker_metrics, "herald_webhook_delivery_attempts_total", 1,
                                        worker=worker, outcome="succeeded")
            assert value(text, "herald_post_results_total", platform="twitter", status="published") == 1
            assert value(text, "herald_post_results_total", platform="bluesky", status="published") == 1
            assert value(text, "herald_posts_total", status="published") == 1
            assert value(text, "herald_token_refreshes_total", platform="twitter", outcome="succeeded") == 1
            assert value(text, "herald_reconciliations_total", platform="bluesky", outcome="found") == 1
            assert value(text, "herald_activity_retries_total", activity="publish.publish_part") == 1
            # The worker times its garbage collector (observability/gc_pauses.py), left as Python sets it.
            assert value(text, "herald_gc_threshold", generation="0") == 700
            assert value(text, "herald_gc_pause_seconds_total", generation="0") > 0
            assert value(text, "herald_gc_frozen_objects") == 0
            # Each process counts only its own work: the worker served no API request.
            assert value(text, "herald_http_requests_total") == 0
            assert len(receiver.requests) == 1

            # The Temporal SDK's own metrics, on the port the worker's runtime serves them on.
            # The SDK exposes counters without the _total suffix; the parser reads them with it.
            sdk = await scrape(f"http://127.0.0.1:{sdk_port}/metrics", worker=worker)
            assert "\ntemporal_workflow_completed{" in sdk, sorted(names(sdk))
            assert value(sdk, "temporal_workflow_completed_total", workflow_type="PublishPostWorkflow") >= 1
            assert value(sdk, "temporal_activity_execution_failed_total", activity_type="publish.publish_part") == 1
    finally:
        try:
            await client.get_workflow_handle(outbox_workflow_id(stack.settings.task_queue)).terminate()
        finally:
            stop_worker(worker)
            await close()
