"""Deliveries end to end: outbox → WebhookOutboxWorkflow → WebhookDeliveryWorkflow → a real receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import timedelta

from sqlmodel import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from activities.webhooks import DeliveryPolicy
from store.models import OperatorLog, WebhookEvent, WebhookSubscription
from tests.support.accounts import connect_bluesky
from tests.support.histories import record_history
from tests.webhooks.support import create_webhook, deliveries, emit_event, wait_for
from workflows.webhooks import delivery_workflow_id, outbox_workflow_id


def verify_both_ways(secret: str, received) -> dict:
    """What a receiver does: the Standard Webhooks check, and the plain HMAC of X-Herald-Signature."""
    event = Webhook(secret).verify(received.body, received.headers)
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(received.headers["x-herald-signature"], expected)
    return event


async def test_signed_delivery_verifies_with_standard_webhooks_and_plain_hmac(stack, receiver, outbox):
    """An event reaches a matching subscription signed both ways; a wrong secret fails verification; the body
    is {id, type, created_at, livemode, data} with webhook-id = the event id; non-matching subscriptions and
    other workspaces get nothing."""
    await outbox()
    async with stack.client(stack.tenant.test_key) as c:
        sub = await create_webhook(c, receiver.hook, ["post.published"])
        await create_webhook(c, receiver.hook + "?other=1", ["account.connected"])
    other = await stack.new_tenant("Other")
    async with stack.client(other.test_key) as c:
        await create_webhook(c, receiver.hook + "?foreign=1", ["*"])
    event_id = await emit_event(stack, "post.published", {"post_id": "post_1", "status": "published"})
    await wait_for(lambda: receiver.requests, what="the delivery")
    got = receiver.requests[0]
    event = verify_both_ways(sub["secret"], got)
    assert event == {"id": event_id, "type": "post.published", "created_at": event["created_at"],
                     "livemode": False, "data": {"post_id": "post_1", "status": "published"}}
    assert event["created_at"].endswith("Z")
    assert got.headers["webhook-id"] == event_id and got.headers["content-type"] == "application/json"
    assert "x-herald-signature-previous" not in got.headers
    try:
        Webhook("whsec_" + "A" * 43 + "=").verify(got.body, got.headers)
        raise AssertionError("a wrong secret verified")
    except WebhookVerificationError:
        pass
    rows = await wait_for(lambda: deliveries(stack, sub["id"]), what="the delivery log")
    assert [(r.attempt, r.status, r.response_status) for r in rows] == [(1, "succeeded", 200)]
    await wait_for(lambda: _all_dispatched(stack), what="the event to be marked dispatched")
    await asyncio.sleep(1)  # room for a wrongly matched delivery to arrive
    assert len(receiver.requests) == 1


async def test_receiver_failing_three_times_gets_the_event_once_after_success(stack, receiver, outbox,
                                                                               temporal_env):
    """Three 500s then a 200: four attempts with the same event id and body, exactly one success, logged as
    attempts 1..4; the subscription's failure count is back at zero."""
    await outbox()
    receiver.plan = [500, 500, 503]
    async with stack.client(stack.tenant.test_key) as c:
        sub = await create_webhook(c, receiver.hook, ["post.failed"])
    event_id = await emit_event(stack, "post.failed", {"post_id": "post_2"})
    handle = temporal_env.client.get_workflow_handle(delivery_workflow_id(event_id, sub["id"]))
    await wait_for(lambda: len(receiver.requests) >= 4, what="four attempts")  # so the workflow exists
    assert await handle.result() == {"status": "succeeded", "attempts": 4}
    assert [r.answered for r in receiver.requests] == [500, 500, 503, 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event_id}
    assert len({r.body for r in receiver.requests}) == 1
    for r in receiver.requests:
        verify_both_ways(sub["secret"], r)
    rows = await deliveries(stack, sub["id"])
    assert [(r.attempt, r.status, r.response_status) for r in rows] == [
        (1, "failed", 500), (2, "failed", 500), (3, "failed", 503), (4, "succeeded", 200)]
    assert rows[0].error == "HTTP 500: receiver says no" and rows[3].error is None
    assert all(r.duration_ms is not None for r in rows)
    async with stack.client(stack.tenant.test_key) as c:
        assert (await c.get(f"/v1/webhooks/{sub['id']}")).json()["data"]["consecutive_failures"] == 0
    record_history(await handle.fetch_history(), "webhookdelivery_retried_then_succeeded.json")


async def test_410_gone_disables_the_subscription_at_once(stack, receiver, outbox):
    """A 410 answer ends the delivery after one attempt, disables the subscription with a reason, writes a
    pipeline warning to the operator log, and later events are no longer sent."""
    await outbox()
    receiver.default = 410
    async with stack.client(stack.tenant.test_key) as c:
        sub = await create_webhook(c, receiver.hook)
        await emit_event(stack, "post.published", {"post_id": "post_3"})

        async def disabled():
            data = (await c.get(f"/v1/webhooks/{sub['id']}")).json()["data"]
            return data if not data["active"] else None

        data = await wait_for(disabled, what="the subscription to be disabled")
        assert "410" in data["disabled_reason"]
        await emit_event(stack, "post.published", {"post_id": "post_4"})
        await wait_for(lambda: _all_dispatched(stack), what="the second event to be dispatched")
    assert len(receiver.requests) == 1
    assert [(r.attempt, r.status, r.response_status) for r in await deliveries(stack, sub["id"])] == [
        (1, "failed", 410)]
    async with stack.db.session() as s:
        logs = (await s.exec(select(OperatorLog).where(OperatorLog.kind == "pipeline"))).all()
    assert [(log.level, log.workspace_id, log.livemode) for log in logs] == [
        ("warn", stack.tenant.workspace_id, False)]
    assert sub["id"] in logs[0].message and "410" in logs[0].message


async def _all_dispatched(stack) -> bool:
    async with stack.db.session() as s:
        return not (await s.exec(select(WebhookEvent).where(WebhookEvent.dispatched_at.is_(None)))).all()


async def test_failed_deliveries_in_a_row_disable_the_subscription(stack, receiver, outbox):
    """With a limit of 2, two deliveries that use up all their attempts disable the subscription; a success in
    between would have reset the count. Re-enabling clears the count and the reason."""
    await outbox(DeliveryPolicy(first_retry=timedelta(milliseconds=100),
                                max_retry_interval=timedelta(milliseconds=100), max_attempts=2, failure_limit=2))
    receiver.default = 500
    async with stack.client(stack.tenant.test_key) as c:
        sub = await create_webhook(c, receiver.hook)
        await emit_event(stack, "post.published", {"n": 1})
        await wait_for(lambda: len(receiver.requests) == 2, what="the first delivery to fail")

        async def state():
            return (await c.get(f"/v1/webhooks/{sub['id']}")).json()["data"]

        await wait_for(lambda: _failures(stack, sub["id"], 1), what="one failed delivery")
        assert (await state())["active"] is True
        await emit_event(stack, "post.published", {"n": 2})

        async def disabled():
            data = await state()
            return data if not data["active"] else None

        data = await wait_for(disabled, what="the subscription to be disabled")
        assert data["disabled_reason"] == "2 deliveries in a row failed" and data["consecutive_failures"] == 2
        r = await c.patch(f"/v1/webhooks/{sub['id']}", json={"active": True})
        assert r.json()["data"]["consecutive_failures"] == 0 and r.json()["data"]["disabled_reason"] is None
    assert len(receiver.requests) == 4


async def _failures(stack, subscription_id: str, count: int) -> bool:
    async with stack.db.session() as s:
        return (await s.get(WebhookSubscription, subscription_id)).consecutive_failures == count


async def test_after_rotation_both_secrets_verify_for_24_hours(stack, receiver, outbox):
    """After a rotation each delivery carries two v1 signatures (new and previous secret) and both
    X-Herald-Signature headers; once the grace period is over only the new secret signs."""
    await outbox()
    async with stack.client(stack.tenant.test_key) as c:
        sub = await create_webhook(c, receiver.hook)
        new = (await c.post(f"/v1/webhooks/{sub['id']}/rotate")).json()["data"]["secret"]
    await emit_event(stack, "post.published", {"n": 1})
    await wait_for(lambda: receiver.requests, what="the delivery")
    got = receiver.requests[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verify_both_ways(new, got)
    Webhook(sub["secret"]).verify(got.body, got.headers)
    previous = "sha256=" + hmac.new(sub["secret"].encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-herald-signature-previous"] == previous

    async with stack.db.session() as s:
        row = await s.get(WebhookSubscription, sub["id"])
        row.previous_secret_expires_at = row.created_at
        s.add(row)
        await s.commit()
    await emit_event(stack, "post.published", {"n": 2})
    await wait_for(lambda: len(receiver.requests) == 2, what="the second delivery")
    later = receiver.requests[1]
    verify_both_ways(new, later)
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    assert "x-herald-signature-previous" not in later.headers
    try:
        Webhook(sub["secret"]).verify(later.body, later.headers)
        raise AssertionError("the expired secret still verified")
    except WebhookVerificationError:
        pass


async def test_delivery_log_lists_attempts_and_redeliver_sends_again(stack, receiver, outbox, temporal_env):
    """The log lists every attempt newest first with cursor paging and filters; redeliver sends the same
    event (same webhook-id) again as a new run whose attempts continue the numbering."""
    await outbox()
    receiver.plan = [500, 500]
    async with stack.client(stack.tenant.test_key) as c:
        sub = await create_webhook(c, receiver.hook, ["post.published"])
        event_id = await emit_event(stack, "post.published", {"post_id": "post_9"})
        await wait_for(lambda: len(receiver.requests) == 3, what="three attempts")
        await temporal_env.client.get_workflow_handle(delivery_workflow_id(event_id, sub["id"])).result()

        first = (await c.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"limit": 2})).json()
        assert first["meta"]["has_more"] is True and len(first["data"]) == 2
        second = (await c.get(f"/v1/webhooks/{sub['id']}/deliveries",
                              params={"limit": 2, "cursor": first["meta"]["next_cursor"]})).json()
        log = first["data"] + second["data"]
        assert second["meta"]["has_more"] is False
        assert [(d["attempt"], d["status"], d["response_status"]) for d in log] == [
            (3, "succeeded", 200), (2, "failed", 500), (1, "failed", 500)]
        assert all(d["event_id"] == event_id and d["event_type"] == "post.published" and d["livemode"] is False
                   and d["webhook_id"] == sub["id"] and d["duration_ms"] is not None for d in log)
        assert log[1]["error"] == "HTTP 500: receiver says no"
        failed = (await c.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"status": "failed"})).json()["data"]
        assert [d["attempt"] for d in failed] == [2, 1]

        r = await c.post(f"/v1/webhooks/{sub['id']}/deliveries/{log[2]['id']}/redeliver")
        assert r.status_code == 202, r.text
        assert r.json()["data"]["event_id"] == event_id and r.json()["data"]["first_attempt"] == 4
        await wait_for(lambda: len(receiver.requests) == 4, what="the redelivery")
        assert {x.headers["webhook-id"] for x in receiver.requests} == {event_id}
        verify_both_ways(sub["secret"], receiver.requests[3])

        async def logged():
            rows = (await c.get(f"/v1/webhooks/{sub['id']}/deliveries")).json()["data"]
            return rows if len(rows) == 4 else None
        newest = (await wait_for(logged, what="the redelivery log"))[0]
        assert (newest["attempt"], newest["status"]) == (4, "succeeded")
        assert (await c.post(f"/v1/webhooks/{sub['id']}/deliveries/del_nope/redeliver")).status_code == 404


async def test_connecting_an_account_and_publishing_reach_the_receiver(stack, receiver, outbox, temporal_env):
    """End to end: connecting a Bluesky account and publishing a post through the API deliver
    `account.connected` and `post.published` to the workspace's webhook; the outbox loop's first run
    (continued as new) is recorded for replay."""
    loop = await outbox(rounds=3)
    first_run = loop.result_run_id
    async with stack.client(stack.tenant.test_key) as c:
        sub = await create_webhook(c, receiver.hook, ["account.connected", "post.published"])
        account_id = await connect_bluesky(c)
        r = await c.post("/v1/social-posts", json={"caption": "Webhooks that arrive", "account_ids": [account_id]})
        assert r.status_code == 200 and r.json()["data"]["status"] == "published", r.text
        post_id = r.json()["data"]["id"]

    def types():
        return [json.loads(x.body)["type"] for x in receiver.requests]

    await wait_for(lambda: {"account.connected", "post.published"} <= set(types()), what="both events")
    by_type = {json.loads(x.body)["type"]: verify_both_ways(sub["secret"], x) for x in receiver.requests}
    assert by_type["account.connected"]["data"]["id"] == account_id
    assert by_type["post.published"]["data"]["post_id"] == post_id
    assert sorted(types()) == ["account.connected", "post.published"]

    handle = temporal_env.client.get_workflow_handle(outbox_workflow_id(stack.settings.task_queue),
                                                     run_id=first_run)

    async def continued():
        return (await handle.describe()).status.name == "CONTINUED_AS_NEW"

    await wait_for(continued, what="the outbox loop to continue as new")
    record_history(await handle.fetch_history(), "webhookoutbox_continued_as_new.json")
