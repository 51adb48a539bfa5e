"""Workspace, profiles and platform credentials over HTTP, with secrets encrypted at rest."""

from __future__ import annotations

from sqlalchemy import text


async def test_workspace_get_and_patch(stack):
    async with stack.client(stack.tenant.test_key) as c:
        ws = (await c.get("/v1/workspace")).json()["data"]
        assert ws["id"] == stack.tenant.workspace_id and ws["livemode"] is False
        r = await c.patch("/v1/workspace", json={"name": "Renamed", "per_account_monthly_limit": 50})
        assert r.status_code == 200
        assert r.json()["data"] | {} == {**ws, "name": "Renamed", "per_account_monthly_limit": 50}
        r = await c.patch("/v1/workspace", json={"per_account_monthly_limit": None})
        assert r.json()["data"]["per_account_monthly_limit"] is None


async def test_profile_lifecycle_and_isolation(stack):
    """Profiles are created, read, edited and deleted; other workspaces and the other mode get 404."""
    async with stack.client(stack.tenant.test_key) as c:
        r = await c.post("/v1/profiles", json={"name": "Acme", "branding_display_name": "Acme Inc",
                                               "branding_primary_color": "#1D4ED8",
                                               "branding_logo_url": "https://acme.example/logo.png"})
        assert r.status_code == 201, r.text
        prof = r.json()["data"]
        assert prof["id"].startswith("prof_") and prof["livemode"] is False
        r = await c.patch(f"/v1/profiles/{prof['id']}", json={"branding_primary_color": "#000000"})
        assert r.json()["data"]["branding_primary_color"] == "#000000"
        assert r.json()["data"]["name"] == "Acme"
        bad = await c.patch(f"/v1/profiles/{prof['id']}", json={"branding_logo_url": "javascript:alert(1)"})
        assert bad.status_code == 422
    async with stack.client(stack.tenant.live_key) as c:
        assert (await c.get(f"/v1/profiles/{prof['id']}")).status_code == 404
    other = await stack.new_tenant("Other")
    async with stack.client(other.test_key) as c:
        for method in ("GET", "PATCH", "DELETE"):
            r = await c.request(method, f"/v1/profiles/{prof['id']}", json={} if method == "PATCH" else None)
            assert r.status_code == 404, method
    async with stack.client(stack.tenant.test_key) as c:
        assert (await c.delete(f"/v1/profiles/{prof['id']}")).json()["data"] == {"id": prof["id"], "deleted": True}
        assert (await c.get(f"/v1/profiles/{prof['id']}")).status_code == 404


async def test_platform_credentials_are_write_only_and_encrypted(stack):
    """The client secret is never returned, and the database holds only ciphertext."""
    secret = "sk-very-secret-value-123456"
    async with stack.client(stack.tenant.test_key) as c:
        r = await c.post("/v1/platform-credentials",
                         json={"platform": "twitter", "client_id": "cid-1", "client_secret": secret})
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        assert secret not in r.text
        assert data["client_secret_set"] is True
        assert data["callback_url"].endswith("/v1/oauth/callback/twitter")
        r = await c.post("/v1/platform-credentials",
                         json={"platform": "twitter", "client_id": "cid-2", "client_secret": secret + "x"})
        assert r.status_code == 201
        listed = await c.get("/v1/platform-credentials")
        assert [x["client_id"] for x in listed.json()["data"]] == ["cid-2"]
        assert secret not in listed.text
        r = await c.post("/v1/platform-credentials",
                         json={"platform": "bluesky", "client_id": "x", "client_secret": "y"})
        assert r.status_code == 422
        r = await c.post("/v1/platform-credentials",
                         json={"platform": "myspace", "client_id": "x", "client_secret": "y"})
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == "platform"
    async with stack.db.session() as s:
        stored = (await s.execute(text("SELECT client_secret FROM platform_credentials"))).scalar_one()
    assert secret not in stored and stored.startswith("v1.")
    async with stack.client(stack.tenant.test_key) as c:
        assert (await c.delete("/v1/platform-credentials/twitter")).status_code == 200
        assert (await c.delete("/v1/platform-credentials/twitter")).status_code == 404
