"""Dialect M end users, hosted connect sessions and disconnects, driven with the seed's own requests."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import text

from adapters.sandbox.core import WORLD
from tests.dialect_m.support import END_USER, REDIRECT, allow_redirect, connect_platform, hosted_connect, m_client

SESSION_BODY = {"externalUserId": "user_123", "platform": "linkedin",
                "redirectUri": "https://client.example.com/oauth/callback"}


async def count(stack, table: str) -> int:
    async with stack.db.session() as s:
        return (await s.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()


async def test_seed_end_user_upsert_and_get(mstack):
    """The seed's upsert body answers 200 with the stored object; a second upsert updates it in place;
    GET returns it with a connection summary."""
    async with m_client(mstack, mstack.tenant.test_key) as m:
        r = await m.post("/v1/end-users", json=END_USER)
        assert r.status_code == 200, r.text
        created = r.json()
        assert set(created) == {"id", "externalUserId", "displayName", "email", "metadata", "createdAt",
                                "updatedAt"}
        assert {k: created[k] for k in ("externalUserId", "displayName", "email", "metadata")} == END_USER
        assert created["createdAt"].endswith("Z") and len(created["createdAt"]) == len("2026-03-21T08:00:00.000Z")

        r = await m.post("/v1/end-users", json={"externalUserId": "user_123", "displayName": "Alex M."})
        assert r.status_code == 200
        updated = r.json()
        assert updated["id"] == created["id"] and updated["displayName"] == "Alex M."
        assert updated["email"] == "alex@example.com" and updated["metadata"] == END_USER["metadata"]
        assert updated["updatedAt"] >= created["updatedAt"]

        r = await m.get("/v1/end-users/user_123")
        assert r.status_code == 200
        assert r.json()["connectionSummary"] == {"total": 0, "connected": 0, "failed": 0}
        assert r.json()["id"] == created["id"]
        assert (await m.get("/v1/end-users/user_123/connections")).json() == []

        r = await m.get("/v1/end-users/nobody")
        assert r.status_code == 404 and r.json()["error"]["message"] == "End user nobody not found"
    async with mstack.client(mstack.tenant.test_key) as u:  # the same row, seen through dialect U
        assert (await u.get("/v1/users/user_123")).json()["data"]["external_user_email"] == "alex@example.com"


async def test_seed_hosted_connect_lists_connection_and_disconnects(mstack):
    """The seed's connect-session request: pending + connectUrl on Herald's hosted page; the end user
    consents at the (sandbox) platform and lands on the allowlisted redirectUri with non-secret fields only;
    the session reads connected and the connection is listed; DELETE disconnects it (204, revoked)."""
    await allow_redirect(mstack)
    async with m_client(mstack, mstack.tenant.test_key) as m, httpx.AsyncClient(timeout=30) as http:
        assert (await m.post("/v1/end-users", json=END_USER)).status_code == 200
        r = await m.post("/v1/connect-sessions", json=SESSION_BODY)
        assert r.status_code == 201, r.text
        session = r.json()
        assert set(session) == {"id", "status", "platform", "connectUrl"}
        assert session["status"] == "pending" and session["platform"] == "linkedin"
        assert session["connectUrl"] == f"{mstack.url}/connect/{session['id']}"
        r = await m.get(f"/v1/connect-sessions/{session['id']}")
        assert r.json()["status"] == "pending" and r.json()["errorCode"] is None

        landing = await hosted_connect(http, session["connectUrl"])
        assert landing.status_code == 303, landing.text
        location = landing.headers["location"]
        assert location.startswith(REDIRECT + "?")
        params = parse_qs(urlsplit(location).query)
        assert set(params) == {"session_id", "status", "account_id"}
        assert params["session_id"] == [session["id"]]

        r = await m.get(f"/v1/connect-sessions/{session['id']}")
        assert r.status_code == 200
        polled = r.json()
        assert set(polled) == {"id", "status", "platform", "externalUserId", "errorCode", "updatedAt"}
        assert polled == {**polled, "id": session["id"], "status": "connected", "platform": "linkedin",
                          "externalUserId": "user_123", "errorCode": None}

        [conn] = (await m.get("/v1/end-users/user_123/connections")).json()
        assert conn == {"id": params["account_id"][0], "platform": "linkedin", "status": "connected",
                        "remoteAccountId": conn["remoteAccountId"], "remoteUsername": conn["remoteUsername"],
                        "accountType": "person"}
        assert conn["remoteAccountId"] and conn["remoteUsername"]
        user = (await m.get("/v1/end-users/user_123")).json()
        assert user["connectionSummary"] == {"total": 1, "connected": 1, "failed": 0}

        assert not any(g.revoked for g in WORLD.state("linkedin").grants.values())
        r = await m.delete("/v1/end-users/user_123/connections/linkedin")
        assert r.status_code == 204 and r.content == b""
        assert all(g.revoked for g in WORLD.state("linkedin").grants.values())  # revoked at the platform
        [conn] = (await m.get("/v1/end-users/user_123/connections")).json()
        assert conn["status"] == "disconnected"
        assert (await m.get("/v1/end-users/user_123")).json()["connectionSummary"] == {
            "total": 1, "connected": 0, "failed": 0}
        r = await m.delete("/v1/end-users/user_123/connections/linkedin")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = await m.delete("/v1/end-users/user_123/connections/myspace")
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == "platform"

    async with mstack.client(mstack.tenant.test_key) as u:  # dialect U sees the same disconnected account
        account = (await u.get(f"/v1/accounts/{conn['id']}")).json()["data"]
        assert account["status"] == "disconnected" and account["external_user_id"] == "user_123"
    async with mstack.db.session() as s:
        tokens = (await s.execute(text("SELECT access_token, refresh_token FROM social_accounts"))).one()
        events = [row[0] for row in (await s.execute(text("SELECT type FROM webhook_events"))).all()]
    assert tokens == (None, None)
    assert events.count("account.connected") == 1 and events.count("account.disconnected") == 1


async def test_dialect_u_disconnect_shares_the_implementation(mstack):
    """DELETE /v1/accounts/{id} (dialect U) revokes and disconnects through the same function, and dialect M
    then reports the connection disconnected."""
    await allow_redirect(mstack)
    async with m_client(mstack, mstack.tenant.test_key) as m, httpx.AsyncClient(timeout=30) as http:
        await m.post("/v1/end-users", json=END_USER)
        await connect_platform(m, http, "twitter")
        [conn] = (await m.get("/v1/end-users/user_123/connections")).json()
        async with mstack.client(mstack.tenant.test_key) as u:
            r = await u.delete(f"/v1/accounts/{conn['id']}")
            assert r.status_code == 200 and r.json()["data"]["status"] == "disconnected"
        assert all(g.revoked for g in WORLD.state("twitter").grants.values())
        assert (await m.get("/v1/end-users/user_123/connections")).json()[0]["status"] == "disconnected"
        r = await m.delete("/v1/end-users/user_123/connections/twitter")
        assert r.status_code == 404


async def test_declined_consent_reads_failed_then_retry_connects(mstack):
    """A declined consent shows as failed with the platform's error code; the same connectUrl can be
    retried and the session then reads connected."""
    await allow_redirect(mstack)
    async with m_client(mstack, mstack.tenant.test_key) as m, httpx.AsyncClient(timeout=30) as http:
        await m.post("/v1/end-users", json=END_USER)
        session = (await m.post("/v1/connect-sessions", json={**SESSION_BODY, "platform": "twitter"})).json()
        declined = await hosted_connect(http, session["connectUrl"], decision="deny")
        assert declined.status_code == 200 and "declined" in declined.text
        polled = (await m.get(f"/v1/connect-sessions/{session['id']}")).json()
        assert polled["status"] == "failed" and polled["errorCode"] == "access_denied"
        assert (await hosted_connect(http, session["connectUrl"])).status_code == 303
        polled = (await m.get(f"/v1/connect-sessions/{session['id']}")).json()
        assert polled["status"] == "connected" and polled["errorCode"] is None


async def test_connect_session_bad_input_creates_nothing(mstack):
    """Not allowlisted, unknown end user, unsupported platform, missing fields and broken JSON are each a
    clear 4xx in the error envelope, and no session is stored."""
    await allow_redirect(mstack)
    other = await mstack.new_tenant()
    await allow_redirect(mstack, "https://other.example.com/cb", workspace_id=other.workspace_id)
    async with m_client(mstack, mstack.tenant.test_key) as m:
        await m.post("/v1/end-users", json=END_USER)
        cases = [
            ({**SESSION_BODY, "redirectUri": "https://evil.example.com/oauth/callback"}, 422, "redirectUri"),
            ({**SESSION_BODY, "redirectUri": REDIRECT + "/"}, 422, "redirectUri"),  # exact match only
            ({**SESSION_BODY, "redirectUri": "https://other.example.com/cb"}, 422, "redirectUri"),  # not ours
            ({**SESSION_BODY, "externalUserId": "user_404"}, 404, None),
            ({**SESSION_BODY, "platform": "myspace"}, 422, "platform"),
            ({"externalUserId": "user_123", "platform": "linkedin"}, 422, "redirectUri"),
        ]
        for body, status, field in cases:
            r = await m.post("/v1/connect-sessions", json=body)
            assert r.status_code == status, (body, r.text)
            err = r.json()["error"]
            assert set(err) == {"code", "normalized_code", "message", "issues"}
            if field:
                assert err["issues"][0]["field"] == field, err
        r = await m.post("/v1/connect-sessions", content=b'{"externalUserId": ',
                         headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["issues"][0]["code"] == "malformed_json"
        r = await m.post("/v1/end-users", json={"externalUserId": "x", "metadata": "not an object"})
        assert r.status_code == 400
        r = await m.post("/v1/end-users", json={"displayName": "No id"})
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == "externalUserId"
    assert await count(mstack, "connect_sessions") == 0


async def test_other_workspaces_ids_are_not_found(mstack):
    """Another workspace's end users, connections and sessions are 404 with its own key, and its
    redirect allowlist is its own."""
    await allow_redirect(mstack)
    other = await mstack.new_tenant("Other")
    async with m_client(mstack, mstack.tenant.test_key) as m, httpx.AsyncClient(timeout=30) as http:
        await m.post("/v1/end-users", json=END_USER)
        session = await connect_platform(m, http, "linkedin")
    async with m_client(mstack, other.test_key) as theirs:
        for path in ("/v1/end-users/user_123", "/v1/end-users/user_123/connections",
                     f"/v1/connect-sessions/{session['id']}"):
            r = await theirs.get(path)
            assert r.status_code == 404, (path, r.text)
        assert (await theirs.delete("/v1/end-users/user_123/connections/linkedin")).status_code == 404
        await theirs.post("/v1/end-users", json=END_USER)  # the same external id is a different end user there
        r = await theirs.post("/v1/connect-sessions", json=SESSION_BODY)
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == "redirectUri"
        assert (await theirs.get("/v1/end-users/user_123/connections")).json() == []
    async with m_client(mstack, mstack.tenant.live_key) as live:  # test and live data never mix
        assert (await live.get("/v1/end-users/user_123")).status_code == 404
