"""Apps, their profiles and branding, and their API keys, managed from the dashboard."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.dashboard.support import Dashboard


async def test_apps_are_created_and_listed(dstack):
    async with Dashboard(dstack.url) as d:
        await d.logged_in()
        ws = await d.create_app("Northwind <Social>")
        apps = await d.page("/dashboard/apps")
        assert f'href="/dashboard/apps/{ws}">Northwind &lt;Social&gt;</a>' in apps  # listed, and escaped
        overview = await d.page(f"/dashboard/apps/{ws}", done="app_created")
        assert "App created" in overview and "<h1>Northwind &lt;Social&gt;</h1>" in overview

        for bad in ("", "x" * 201):
            r = await d.post("/dashboard/apps", {"name": bad})
            assert r.status_code == 422 and "1 to 200 characters" in r.text
    async with dstack.db.session() as s:
        names = (await s.execute(text("SELECT name FROM workspaces ORDER BY name"))).scalars().all()
    assert names == ["Acme", "Northwind <Social>"]  # Acme is the stack's own tenant
    async with Dashboard(dstack.url) as d:
        r = await (await d.logged_in()).get("/dashboard/apps/ws_doesnotexist")
        assert r.status_code == 404 and "No such app" in r.text


async def test_profiles_carry_the_branding_per_mode_and_can_be_edited(dstack):
    async with Dashboard(dstack.url) as d:
        await d.logged_in()
        ws = await d.create_app("Brandy")
        await d.page(f"/dashboard/apps/{ws}", mode="live")
        r = await d.post(f"/dashboard/apps/{ws}/profiles", {
            "mode": "live", "name": "Main brand", "branding_display_name": "Brandy Social",
            "branding_logo_url": "https://cdn.example/logo.png", "branding_primary_color": "#1D4ED8"})
        assert r.status_code == 303 and r.headers["location"] == f"/dashboard/apps/{ws}?mode=live&done=profile_created"
        live = await d.page(f"/dashboard/apps/{ws}", mode="live")
        assert 'value="Brandy Social"' in live and 'value="https://cdn.example/logo.png"' in live
        assert 'value="#1D4ED8"' in live
        assert "Main brand" not in await d.page(f"/dashboard/apps/{ws}", mode="test")

        profile_id = re.search(r'action="/dashboard/apps/[^/]+/profiles/(prof_[0-9a-f]+)"', live).group(1)
        r = await d.post(f"/dashboard/apps/{ws}/profiles/{profile_id}", {
            "name": "", "branding_display_name": "Brandy", "branding_logo_url": "",
            "branding_primary_color": "#112233"})
        assert r.status_code == 303 and r.headers["location"].endswith("mode=live&done=profile_saved")

        for field, value, message in (("branding_primary_color", "red", "branding_primary_color"),
                                      ("branding_logo_url", "javascript:alert(1)", "absolute http(s) URL")):
            r = await d.post(f"/dashboard/apps/{ws}/profiles", {"mode": "live", "name": "Bad", field: value})
            assert r.status_code == 422 and message in r.text, r.text
    async with dstack.db.session() as s:
        rows = (await s.execute(text(
            "SELECT name, branding_display_name, branding_logo_url, branding_primary_color, livemode "
            "FROM profiles WHERE workspace_id = :ws"), {"ws": ws})).all()
    # An empty name keeps the old one; an emptied logo clears it; nothing of the refused forms was stored.
    assert [tuple(r) for r in rows] == [("Main brand", "Brandy", None, "#112233", True)]


async def test_a_key_is_shown_once_then_only_its_preview_and_revocation_takes_effect(dstack):
    async with Dashboard(dstack.url) as d:
        await d.logged_in()
        ws = await d.create_app("Keyed")
        key = await d.issue_key(ws, mode="test", name="backend")
        assert re.fullmatch(r"hrld_test_[A-Za-z0-9_-]{40,}", key)
        secret = key.split("_", 2)[2]

        async with dstack.client(key) as api:  # a real key of this app
            r = await api.get("/v1/workspace")
            assert r.status_code == 200 and r.json()["data"]["id"] == ws

        listing = await d.page(f"/dashboard/apps/{ws}/keys")
        assert key not in listing and secret not in listing and secret[4:-4] not in listing
        preview = f"hrld_test_{secret[:4]}…{secret[-4:]}"
        assert f"<code>{preview}</code>" in listing
        row = listing[listing.index(preview):].split("</tr>")[0]
        assert "backend" in row and "active" in row
        # Last use is shown: the call above stamped it.
        stamp = r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td>"
        assert re.search(f"{stamp}{stamp}<td>—</td>", row), row  # created, last used, no expiry

        key_id = re.search(r'/keys/(key_[0-9a-f]+)/revoke', row).group(1)
        r = await d.post(f"/dashboard/apps/{ws}/keys/{key_id}/revoke")
        assert r.status_code == 303 and r.headers["location"].endswith("done=key_revoked")
        listing = await d.page(f"/dashboard/apps/{ws}/keys")
        assert "revoked" in listing[listing.index(preview):].split("</tr>")[0]
        async with dstack.client(key) as api:
            assert (await api.get("/v1/workspace")).status_code == 401

        live = await d.issue_key(ws, mode="live")
        assert live.startswith("hrld_live_")
        r = await d.post(f"/dashboard/apps/{ws}/keys", {"mode": "test", "expires_in_days": "0"})
        assert r.status_code == 422 and "whole number of days" in r.text and 'id="new-key"' not in r.text
        r = await d.post(f"/dashboard/apps/{ws}/keys", {"mode": "production"})
        assert r.status_code == 422
    async with dstack.db.session() as s:
        stored = (await s.execute(text("SELECT key_hash, preview, name FROM api_keys WHERE workspace_id = :ws"),
                                  {"ws": ws})).all()
    assert len(stored) == 2 and all(secret not in " ".join(map(str, row)) for row in stored)
