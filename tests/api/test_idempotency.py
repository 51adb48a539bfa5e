"""Idempotency keys on creating POSTs: replay, conflict, in-flight, scope and limits."""

from __future__ import annotations

import asyncio

from sqlalchemy import text


async def _count_profiles(stack) -> int:
    async with stack.db.session() as s:
        return (await s.execute(text("SELECT count(*) FROM profiles"))).scalar_one()


async def test_same_key_same_body_replays_the_original(stack):
    """The second request returns the first answer with Idempotent-Replayed and creates nothing."""
    async with stack.client(stack.tenant.test_key) as c:
        h = {"Idempotency-Key": "create-profile-1"}
        first = await c.post("/v1/profiles", json={"name": "Brand"}, headers=h)
        second = await c.post("/v1/profiles", json={"name": "Brand"}, headers=h)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
    assert await _count_profiles(stack) == 1


async def test_body_field_works_like_the_header(stack):
    async with stack.client(stack.tenant.test_key) as c:
        body = {"name": "Brand", "idempotency_key": "body-key-1"}
        a = await c.post("/v1/profiles", json=body)
        b = await c.post("/v1/profiles", json=body)
        assert a.json() == b.json() and b.headers["idempotent-replayed"] == "true"
    assert await _count_profiles(stack) == 1


async def test_same_key_different_body_is_409(stack):
    async with stack.client(stack.tenant.test_key) as c:
        h = {"Idempotency-Key": "k-conflict"}
        assert (await c.post("/v1/profiles", json={"name": "A"}, headers=h)).status_code == 201
        r = await c.post("/v1/profiles", json={"name": "B"}, headers=h)
        assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    assert await _count_profiles(stack) == 1


async def test_concurrent_requests_with_one_key_create_one_object(stack):
    """Ten simultaneous requests with one key: one creates, the rest replay or get 409 in flight."""
    async with stack.client(stack.tenant.test_key) as c:
        h = {"Idempotency-Key": "k-race"}
        results = await asyncio.gather(*[c.post("/v1/profiles", json={"name": "R"}, headers=h) for _ in range(10)])
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    created_ids = {r.json()["data"]["id"] for r in results if r.status_code == 201}
    assert len(created_ids) == 1
    assert await _count_profiles(stack) == 1


async def test_validation_errors_are_remembered_and_keys_are_scoped(stack):
    """A 422 replays as a 422; the same key in another workspace or mode is independent."""
    async with stack.client(stack.tenant.test_key) as c:
        h = {"Idempotency-Key": "k-scope"}
        bad = await c.post("/v1/profiles", json={"name": ""}, headers=h)
        again = await c.post("/v1/profiles", json={"name": ""}, headers=h)
        assert bad.status_code == again.status_code == 422 and again.headers["idempotent-replayed"] == "true"
    async with stack.client(stack.tenant.live_key) as c:
        assert (await c.post("/v1/profiles", json={"name": "L"}, headers={"Idempotency-Key": "k-scope"})).status_code == 201
    other = await stack.new_tenant("Other")
    async with stack.client(other.test_key) as c:
        assert (await c.post("/v1/profiles", json={"name": "O"}, headers={"Idempotency-Key": "k-scope"})).status_code == 201


async def test_key_longer_than_64_is_422(stack):
    async with stack.client(stack.tenant.test_key) as c:
        r = await c.post("/v1/profiles", json={"name": "x"}, headers={"Idempotency-Key": "k" * 65})
        assert r.status_code == 422
        assert r.json()["error"]["issues"][0]["field"] == "Idempotency-Key"
        r = await c.post("/v1/profiles", json={"name": "x", "idempotency_key": "k" * 65})
        assert r.status_code == 422
    assert await _count_profiles(stack) == 0
