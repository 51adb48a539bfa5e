"""Deliveries never reach internal networks in live mode: the check runs on the resolved address."""

from __future__ import annotations

import asyncio

import pytest

from store.webhooks import AddressRefused, address_allowed, check_resolved
from tests.webhooks.support import create_webhook, deliveries, dispatched, emit_event, wait_for


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.9.9.9", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "240.0.0.1", "192.0.2.10", "::1", "::", "fe80::1%eth0",
    "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
    "64:ff9b::a9fe:a9fe", "2001:db8::1",
])
def test_internal_addresses_are_refused_in_live_mode(address):
    """Private, loopback, link-local, shared, multicast, reserved and documentation addresses, and IPv6 forms
    that carry one (mapped, 6to4), are refused for live deliveries."""
    assert not address_allowed(address, livemode=True)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d822::1"])
def test_public_addresses_are_allowed(address):
    """Public unicast addresses (and a 6to4 address carrying a public one) are deliverable in both modes."""
    assert address_allowed(address, livemode=True) and address_allowed(address, livemode=False)


def test_test_mode_may_reach_loopback_but_nothing_else_internal():
    """Test mode allows loopback, so a tour runs on one machine, and still refuses metadata and private ranges."""
    assert address_allowed("127.0.0.1", livemode=False) and address_allowed("::1", livemode=False)
    for address in ("169.254.169.254", "10.0.0.1", "192.168.0.1", "0.0.0.0"):
        assert not address_allowed(address, livemode=False), address


def test_one_bad_answer_refuses_the_whole_host():
    """A name that resolves to a public and a private address is refused (no picking the good one)."""
    with pytest.raises(AddressRefused, match="10.0.0.7"):
        check_resolved("mixed.example", ["93.184.216.34", "10.0.0.7"], livemode=True)
    assert check_resolved("ok.example", ["93.184.216.34", "93.184.216.34"], livemode=True) == ["93.184.216.34"]


async def test_live_subscriptions_to_internal_addresses_are_refused_at_delivery(stack, receiver, outbox,
                                                                                temporal_env):
    """Live-mode webhooks to 127.0.0.1, 10.x, 169.254.169.254, [::1] and a name resolving to loopback are
    accepted when created (the check is at delivery), then each delivery fails at once and for good with a
    clear error, without a request ever reaching the receiver listening on loopback."""
    await outbox()
    port = receiver.url.rsplit(":", 1)[1]
    urls = [f"http://127.0.0.1:{port}/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/",
            f"http://[::1]:{port}/hook", f"http://localhost:{port}/hook", f"https://localhost:{port}/hook"]
    async with stack.client(stack.tenant.live_key) as c:
        subs = [await create_webhook(c, url) for url in urls]
    assert all(s["livemode"] for s in subs)
    event_id = await emit_event(stack, "post.published", {"post_id": "post_live"}, livemode=True)
    await wait_for(lambda: dispatched(stack, event_id), what="the event to be dispatched")
    for sub in subs:
        handle = temporal_env.client.get_workflow_handle(f"webhook/{event_id}/{sub['id']}")
        assert await asyncio.wait_for(handle.result(), 20) == {"status": "failed", "attempts": 1}, sub["url"]
        rows = await deliveries(stack, sub["id"])
        assert [(r.attempt, r.status, r.response_status) for r in rows] == [(1, "failed", None)], sub["url"]
        assert rows[0].error.startswith("Refused: ") and "public addresses" in rows[0].error, rows[0].error
    assert receiver.requests == []


async def test_test_mode_delivers_to_a_loopback_name(stack, receiver, outbox):
    """In test mode a receiver on `localhost` gets its events (resolved, checked, then reached by IP)."""
    await outbox()
    port = receiver.url.rsplit(":", 1)[1]
    async with stack.client(stack.tenant.test_key) as c:
        sub = await create_webhook(c, f"http://localhost:{port}/hook")
    await emit_event(stack, "post.published", {"post_id": "post_test"})
    await wait_for(lambda: receiver.requests, what="the delivery")
    assert receiver.requests[0].headers["host"] == f"localhost:{port}"
    rows = await wait_for(lambda: deliveries(stack, sub["id"]), what="the log")
    assert rows[0].status == "succeeded"
