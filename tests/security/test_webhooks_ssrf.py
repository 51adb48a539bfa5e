"""Webhook deliveries cannot be pointed at internal services.

Already covered in tests/webhooks/test_ssrf.py, not repeated here: the address rules one by one (loopback,
private, link-local, CGNAT, multicast, reserved, IPv6 forms carrying an IPv4 address), a name resolving to a
public and a private address, test mode reaching `localhost`, and live subscriptions to 127.0.0.1, 10.0.0.1,
169.254.169.254, [::1] and `localhost` refused at delivery (they are accepted at creation: the check runs
on the resolved address when delivering, which also defeats DNS rebinding).

Added here, end to end through the outbox and the delivery workflow:
- live subscriptions to loopback spelled other ways (decimal, hex and short IPv4, 0.0.0.0, IPv4-mapped and
  long-form IPv6, and a mixed-case `localhost`) are refused (at creation or at delivery) and never reach the
  receiver listening on loopback;
- test-mode subscriptions to the metadata address and private ranges are refused too (test mode only widens
  the rule to loopback);
- a receiver's redirect is not followed, even to an address the subscription may reach.

A network fence turns any connection attempt to a non-loopback address during these tests into an error and
records it, so a broken guard fails the test without sending anything off this machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading

import pytest
from fastapi import FastAPI, Request, Response

from tests.conftest import ready_stack
from tests.security.support import webhook_outbox
from tests.support.servers import serve
from tests.webhooks.conftest import receiver  # noqa: F401  (the loopback receiver fixture)
from tests.webhooks.support import deliveries, dispatched, emit_event, wait_for
from workflows.webhooks import delivery_workflow_id


@pytest.fixture(scope="module")
async def wstack(module_database, temporal_env):
    async with ready_stack(module_database, temporal_env) as stack, webhook_outbox(stack):
        yield stack


@pytest.fixture
def fence(monkeypatch):
    """Refuse (and record) every socket connection to an address that is not this machine's loopback."""
    attempts: list[str] = []
    lock = threading.Lock()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def allowed(address) -> bool:
        if not isinstance(address, tuple):
            return True  # unix sockets
        try:
            ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)
        return ip.is_loopback or ip.is_unspecified or (mapped is not None and mapped.is_loopback)

    def connect(self, address):
        if not allowed(address):
            with lock:
                attempts.append(str(address))
            raise ConnectionRefusedError(f"fenced: {address}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not allowed(address):
            with lock:
                attempts.append(str(address))
            return 111
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts


async def _deliver_once(stack, temporal_env, tenant, livemode: bool, urls: list[str]) -> dict[str, tuple]:
    """Subscribe each URL (in the tenant's mode), emit one event, and return per URL either ("refused at
    creation", status) or (workflow result, logged attempts)."""
    out: dict[str, tuple] = {}
    subs = {}
    async with stack.client(tenant.live_key if livemode else tenant.test_key) as c:
        for url in urls:
            r = await c.post("/v1/webhooks", json={"url": url, "events": ["*"]})
            if r.status_code == 201:
                subs[url] = r.json()["data"]
            else:
                assert r.status_code == 422, (url, r.text)
                out[url] = ("refused at creation", r.json()["error"]["issues"][0]["field"])
    if subs:
        event_id = await emit_event(stack, "post.published", {"post_id": "post_probe"}, livemode=livemode,
                                    workspace_id=tenant.workspace_id)
        await wait_for(lambda: dispatched(stack, event_id), what="the event to be dispatched")
        for url, sub in subs.items():
            handle = temporal_env.client.get_workflow_handle(delivery_workflow_id(event_id, sub["id"]))
            result = await asyncio.wait_for(handle.result(), 20)
            out[url] = (result, [(r.attempt, r.status, r.response_status, r.error) for r in
                                 await deliveries(stack, sub["id"])])
    return out


def assert_refused(outcome: dict[str, tuple]) -> None:
    for url, (result, detail) in outcome.items():
        if result == "refused at creation":
            assert detail == "url", (url, detail)
            continue
        assert result == {"status": "failed", "attempts": 1}, (url, result, detail)
        [(attempt, status, response_status, error)] = detail
        assert (attempt, status, response_status) == (1, "failed", None), (url, detail)
        assert error.startswith("Refused: ") and "public addresses" in error, (url, error)


async def test_loopback_spelled_other_ways_is_refused_in_live_mode(wstack, temporal_env, receiver, fence):
    """Decimal (2130706433), hex (0x7f000001) and short (127.1) IPv4, 0.0.0.0, IPv4-mapped and long-form IPv6
    loopback, and `LocalHost`: each live subscription is refused, at creation or at its first
    delivery attempt for good, and the receiver on loopback hears nothing."""
    port = receiver.url.rsplit(":", 1)[1]
    hosts = ["2130706433", "0x7f000001", "127.1", "0.0.0.0", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
             "[0:0:0:0:0:0:0:1]", "LocalHost"]
    tenant = await wstack.new_tenant("Spellings")
    outcome = await _deliver_once(wstack, temporal_env, tenant, True, [f"http://{h}:{port}/hook" for h in hosts])
    assert len(outcome) == len(hosts)
    assert_refused(outcome)
    assert any(result != "refused at creation" for result, _ in outcome.values())
    await asyncio.sleep(0.5)
    assert receiver.requests == []
    assert fence == []


async def test_test_mode_still_refuses_metadata_and_private_addresses(wstack, temporal_env, fence):
    """Test mode may reach loopback (so a tour runs on one machine) but a test-mode subscription to the cloud
    metadata address or a private range is refused at delivery all the same, and nothing is sent."""
    urls = ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook", "http://192.168.1.1/hook",
            "http://[fd00::1]/hook", "http://[::ffff:169.254.169.254]/hook"]
    tenant = await wstack.new_tenant("TestMode")
    outcome = await _deliver_once(wstack, temporal_env, tenant, False, urls)
    assert_refused(outcome)
    assert fence == [], f"a delivery tried to connect to {fence}"


async def test_a_receivers_redirect_is_not_followed(wstack, temporal_env, fence):
    """A test-mode receiver answering 307 (to another path on loopback, which the subscription could reach):
    the delivery logs the 307 as a failed attempt and the redirect target is never requested."""
    landed: list[str] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook() -> Response:
        return Response(status_code=307, headers={"Location": "/landed"})

    @app.api_route("/landed", methods=["GET", "POST"])
    async def land(request: Request) -> Response:
        landed.append(request.method)
        return Response(status_code=200)

    tenant = await wstack.new_tenant("Redirected")
    with serve(app) as url:
        async with wstack.client(tenant.test_key) as c:
            r = await c.post("/v1/webhooks", json={"url": f"{url}/hook", "events": ["*"]})
            assert r.status_code == 201, r.text
            sub = r.json()["data"]
        await emit_event(wstack, "post.published", {"post_id": "post_redirect"}, workspace_id=tenant.workspace_id)
        rows = await wait_for(lambda: deliveries(wstack, sub["id"]), what="the first attempt")
        await asyncio.sleep(0.5)
    assert (rows[0].status, rows[0].response_status) == ("failed", 307), rows[0]
    assert landed == []
    assert fence == []
