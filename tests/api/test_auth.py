"""API keys: hashed storage, expiry, revocation, last use, modes and workspace isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from store.crypto import hash_api_key


async def test_missing_malformed_and_unknown_keys_are_401_in_the_envelope(stack):
    """Every kind of bad Authorization header gets 401 UNAUTHORIZED with a request id, never a 500."""
    headers = [
        {},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer hrld_test_" + "A" * 43},  # well formed, unknown
        {"Authorization": "Bearer hrld_prod_" + "A" * 43},
        {"Authorization": "Bearer " + "x" * 5000},
    ]
    async with stack.client() as c:
        for h in headers:
            r = await c.get("/v1/workspace", headers=h)
            assert r.status_code == 401, (h, r.text)
            body = r.json()
            assert body["error"]["code"] == "UNAUTHORIZED"
            assert body["error"]["normalized_code"] == "unauthorized"
            assert body["request_id"] == r.headers["x-request-id"]


async def test_keys_are_stored_only_as_hashes(stack):
    """The database holds the SHA-256 of a key and a short preview, never the key itself."""
    async with stack.db.session() as s:
        rows = (await s.execute(text("SELECT key_hash, preview FROM api_keys"))).all()
        dump = " ".join(str(v) for row in rows for v in row)
    assert hash_api_key(stack.tenant.test_key) in dump
    assert stack.tenant.test_key not in dump
    assert stack.tenant.test_key.split("_", 2)[2] not in dump


async def test_create_list_revoke_and_last_used(stack):
    """A key created over the API works at once, shows once, records its last use, and dies when revoked."""
    async with stack.client(stack.tenant.test_key) as c:
        r = await c.post("/v1/api-keys", json={"name": "ci", "environment": "test"})
        assert r.status_code == 201, r.text
        created = r.json()["data"]
        assert created["key"].startswith("hrld_test_") and created["livemode"] is False
        assert created["last_used_at"] is None
    async with stack.client(created["key"]) as c2:
        assert (await c2.get("/v1/workspace")).status_code == 200
    async with stack.client(stack.tenant.test_key) as c:
        listed = (await c.get("/v1/api-keys")).json()["data"]
        mine = next(k for k in listed if k["id"] == created["id"])
        assert mine["key"] is None, "the plaintext is shown only at creation"
        assert mine["last_used_at"] is not None
        r = await c.delete(f"/v1/api-keys/{created['id']}")
        assert r.status_code == 200 and r.json()["data"]["revoked_at"]
    async with stack.client(created["key"]) as c2:
        r = await c2.get("/v1/workspace")
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


async def test_expired_key_is_refused(stack):
    """A key past its expires_at is refused with 401."""
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    async with stack.client(stack.tenant.live_key) as c:
        r = await c.post("/v1/api-keys", json={"environment": "test", "expires_at": soon})
        assert r.status_code == 201, r.text
        key = r.json()["data"]["key"]
    async with stack.db.session() as s:
        await s.execute(text("UPDATE api_keys SET expires_at = :t WHERE key_hash = :h"),
                        {"t": datetime.now(UTC) - timedelta(seconds=5), "h": hash_api_key(key)})
        await s.commit()
    async with stack.client(key) as c:
        r = await c.get("/v1/workspace")
        assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


async def test_test_key_cannot_mint_live_keys_and_modes_do_not_mix(stack):
    """A test key may not create a live key, and each mode lists only its own keys."""
    async with stack.client(stack.tenant.test_key) as c:
        r = await c.post("/v1/api-keys", json={"environment": "live"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
        test_list = (await c.get("/v1/api-keys")).json()["data"]
    assert test_list and all(k["livemode"] is False for k in test_list)
    async with stack.client(stack.tenant.live_key) as c:
        live_list = (await c.get("/v1/api-keys")).json()["data"]
    assert live_list and all(k["livemode"] is True for k in live_list)


async def test_one_workspace_never_sees_anothers_keys(stack):
    """Workspace B cannot list, revoke or learn about workspace A's keys: its ids are 404."""
    other = await stack.new_tenant("Other")
    async with stack.client(stack.tenant.test_key) as c:
        a_keys = (await c.get("/v1/api-keys")).json()["data"]
    async with stack.client(other.test_key) as c:
        b_keys = (await c.get("/v1/api-keys")).json()["data"]
        assert {k["id"] for k in a_keys}.isdisjoint({k["id"] for k in b_keys})
        r = await c.delete(f"/v1/api-keys/{a_keys[0]['id']}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    async with stack.client(stack.tenant.test_key) as c:
        assert (await c.get("/v1/workspace")).status_code == 200
