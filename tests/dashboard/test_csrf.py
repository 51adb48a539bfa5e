"""Every dashboard form is refused with 403, and changes nothing, without this session's CSRF token."""

from __future__ import annotations

from sqlalchemy import text

from tests.dashboard.support import Dashboard, failed_post, snapshot

async def test_forms_without_the_sessions_token_are_refused_and_change_nothing(dstack):
    async with Dashboard(dstack.url) as d, Dashboard(dstack.url) as other:
        await d.logged_in()
        ws = await d.create_app("Guarded")
        await d.issue_key(ws)
        await d.page(f"/dashboard/apps/{ws}/redirects")
        assert (await d.post(f"/dashboard/apps/{ws}/redirects", {"uri": "https://a.example/cb"})).status_code == 303
        assert (await d.post(f"/dashboard/apps/{ws}/credentials/twitter", {
            "mode": "test", "client_id": "cid", "client_secret": "csec"})).status_code == 303
        assert (await d.post(f"/dashboard/apps/{ws}/profiles", {"mode": "test", "name": "P"})).status_code == 303
        post_id, result_id = await failed_post(dstack, ws)
        ids = {}
        async with dstack.db.session() as s:
            for table, column in (("api_keys", "key"), ("redirect_allowlist", "entry"), ("profiles", "profile")):
                ids[column] = (await s.execute(text(f"SELECT id FROM {table} WHERE workspace_id = :ws"),
                                               {"ws": ws})).scalar_one()
        forms = [
            ("/dashboard/apps", {"name": "Forged"}),
            (f"/dashboard/apps/{ws}/profiles", {"mode": "test", "name": "Forged"}),
            (f"/dashboard/apps/{ws}/profiles/{ids['profile']}", {"name": "Forged"}),
            (f"/dashboard/apps/{ws}/keys", {"mode": "live", "name": "Forged"}),
            (f"/dashboard/apps/{ws}/keys/{ids['key']}/revoke", {}),
            (f"/dashboard/apps/{ws}/redirects", {"uri": "https://evil.example/cb"}),
            (f"/dashboard/apps/{ws}/redirects/{ids['entry']}/delete", {}),
            (f"/dashboard/apps/{ws}/credentials/twitter", {"mode": "test", "client_id": "evil", "client_secret": "e"}),
            (f"/dashboard/apps/{ws}/credentials/twitter/delete", {"mode": "test"}),
            (f"/dashboard/apps/{ws}/posts/{post_id}/results/{result_id}/retry", {}),
            ("/dashboard/logout", {}),
        ]
        await other.logged_in()  # a valid token, but of another session
        before = await snapshot(dstack)
        real = d.token
        for path, data in forms:
            for token in ("", "forged-token", real[:-2] + ("AA" if not real.endswith("AA") else "BB"), other.token):
                r = await d.post(path, data, token=token)
                assert r.status_code == 403, (path, token, r.status_code)
                assert "Form rejected" in r.text and "nothing was changed" in r.text
                assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
        assert await snapshot(dstack) == before
        # The session survived the forged logout, and the real token still works.
        assert (await d.get("/dashboard/apps")).status_code == 200
        assert (await d.post("/dashboard/apps", {"name": "Real"}, token=real)).status_code == 303
