"""`/v1/webhooks` over HTTP: secrets shown once, validation, scoping, rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.events import EVENT_TYPES


async def test_create_shows_the_secret_once_then_only_a_preview(stack):
    """The secret is in the create response only; reads and lists show `secret_preview`; CRUD round-trips."""
    async with stack.client(stack.tenant.test_key) as c:
        r = await c.post("/v1/webhooks", json={"name": "prod", "url": "https://example.com/hooks",
                                               "events": ["post.published", "post.failed", "post.published"]})
        assert r.status_code == 201, r.text
        created = r.json()["data"]
        assert created["id"].startswith("wh_") and created["object"] == "webhook"
        assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
        assert created["secret_preview"] == created["secret"][:10] + "…"
        assert created["events"] == ["post.published", "post.failed"]
        assert created["active"] is True and created["livemode"] is False

        got = (await c.get(f"/v1/webhooks/{created['id']}")).json()["data"]
        assert got["secret"] is None and got["secret_preview"] == created["secret_preview"]
        listed = (await c.get("/v1/webhooks")).json()
        assert [w["id"] for w in listed["data"]] == [created["id"]] and listed["meta"]["has_more"] is False
        assert created["secret"] not in (await c.get("/v1/webhooks")).text

        r = await c.patch(f"/v1/webhooks/{created['id']}", json={"events": ["*"], "active": False, "name": "x"})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["events"] == ["*"] and r.json()["data"]["active"] is False
        assert r.json()["data"]["secret"] is None

        assert (await c.delete(f"/v1/webhooks/{created['id']}")).json()["data"] == {
            "id": created["id"], "object": "webhook", "deleted": True}
        assert (await c.get(f"/v1/webhooks/{created['id']}")).status_code == 404


async def test_bad_input_is_422_with_the_field(stack):
    """A non-http URL, an unknown event type, no events or a null field are 422s naming the field."""
    async with stack.client(stack.tenant.test_key) as c:
        cases = [
            ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
            ({"url": "javascript:alert(1)", "events": ["*"]}, "url"),
            ({"url": "https://example.com/x", "events": ["post.published", "post.exploded"]}, "events[1]"),
            ({"url": "https://example.com/x", "events": []}, "events"),
        ]
        for body, field in cases:
            r = await c.post("/v1/webhooks", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["issues"][0]["field"] == field, r.text
        assert (await c.get("/v1/webhooks")).json()["data"] == []
        sub = (await c.post("/v1/webhooks", json={"url": "https://example.com/x", "events": ["*"]})).json()["data"]
        for body, field in (({"url": "gopher://x"}, "url"), ({"events": ["nope"]}, "events[0]"),
                            ({"url": None}, "url")):
            r = await c.patch(f"/v1/webhooks/{sub['id']}", json=body)
            assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == field, r.text
        every = (await c.post("/v1/webhooks", json={"url": "https://example.com/y",
                                                     "events": list(EVENT_TYPES)})).json()["data"]
        assert every["events"] == list(EVENT_TYPES)


async def test_another_workspace_or_mode_never_sees_a_webhook(stack):
    """Another workspace's webhook id is a 404 on every route; the live key does not see test webhooks."""
    other = await stack.new_tenant("Other")
    async with stack.client(other.test_key) as c:
        sub = (await c.post("/v1/webhooks", json={"url": "https://example.com/x", "events": ["*"]})).json()["data"]
    for key in (stack.tenant.test_key, other.live_key):
        async with stack.client(key) as c:
            wid = sub["id"]
            for method, path in (("GET", f"/v1/webhooks/{wid}"), ("PATCH", f"/v1/webhooks/{wid}"),
                                 ("DELETE", f"/v1/webhooks/{wid}"), ("POST", f"/v1/webhooks/{wid}/rotate"),
                                 ("GET", f"/v1/webhooks/{wid}/deliveries"),
                                 ("POST", f"/v1/webhooks/{wid}/deliveries/del_x/redeliver")):
                r = await c.request(method, path, json={"name": "mine"} if method == "PATCH" else None)
                assert r.status_code == 404, (key, method, path, r.text)
                assert r.json()["error"]["code"] == "NOT_FOUND"
            assert (await c.get("/v1/webhooks")).json()["data"] == []


async def test_rotate_returns_a_new_secret_and_keeps_the_old_one_for_a_day(stack):
    """Rotation shows the new secret once; the previous one is honoured for 24 hours."""
    async with stack.client(stack.tenant.test_key) as c:
        sub = (await c.post("/v1/webhooks", json={"url": "https://example.com/x", "events": ["*"]})).json()["data"]
        r = await c.post(f"/v1/webhooks/{sub['id']}/rotate")
        assert r.status_code == 200, r.text
        rotated = r.json()["data"]
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != sub["secret"]
        assert rotated["secret_preview"] == rotated["secret"][:10] + "…"
        until = datetime.fromisoformat(rotated["previous_secret_expires_at"])
        assert timedelta(hours=23, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=24)
        assert (await c.get(f"/v1/webhooks/{sub['id']}")).json()["data"]["secret"] is None
