"""One app's data never shows under another app's pages, and another app's URL cannot act on it."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.dashboard.support import Dashboard, failed_post, snapshot, wait_logged

TABS = ("", "/keys", "/redirects", "/credentials", "/accounts", "/posts", "/logs")


async def _populate(stack, d: Dashboard, name: str) -> dict[str, str]:
    """An app with one of everything, each carrying the app's name so a leak is easy to spot."""
    lower = name.lower()
    ws = await d.create_app(name)
    key = await d.issue_key(ws, name=f"{lower}-key")
    await d.page(f"/dashboard/apps/{ws}")
    r = await d.post(f"/dashboard/apps/{ws}/profiles", {"mode": "test", "name": f"{name} brand"})
    assert r.status_code == 303
    await d.page(f"/dashboard/apps/{ws}/redirects")
    assert (await d.post(f"/dashboard/apps/{ws}/redirects", {"uri": f"https://{lower}.example/cb"})).status_code == 303
    assert (await d.post(f"/dashboard/apps/{ws}/credentials/twitter", {
        "mode": "test", "client_id": f"{lower}-client-id", "client_secret": f"{lower}-secret"})).status_code == 303
    async with stack.client(key) as api:
        r = await api.post("/v1/accounts/connect", json={
            "platform": "bluesky", "external_user_id": f"{lower}_end_user",
            "credentials": {"handle": f"{lower}.test", "app_password": "abcd-efgh-ijkl-mnop"}})
        assert r.status_code == 201, r.text
        assert (await api.get("/v1/workspace", headers={"X-Request-Id": f"{lower}-req-0001"})).status_code == 200
    await wait_logged(stack, 1, request_id=f"{lower}-req-0001")
    post_id, result_id = await failed_post(stack, ws)
    async with stack.db.session() as s:
        ids = {table: (await s.execute(text(f"SELECT id FROM {table} WHERE workspace_id = :ws LIMIT 1"),
                                       {"ws": ws})).scalar_one()
               for table in ("api_keys", "redirect_allowlist", "profiles")}
    return {"ws": ws, "post": post_id, "result": result_id, **ids,
            "markers": [ws, f"{name} brand", f"{lower}.example", f"{lower}-client-id", f"{lower}-key",
                        f"{lower}_end_user", f"{lower}.test", f"{lower}-req-0001", post_id]}


async def _pages(d: Dashboard, ws: str) -> str:
    out = []
    for mode in ("test", "live"):
        for tab in TABS:
            out.append(await d.page(f"/dashboard/apps/{ws}{tab}", mode=mode))
    return "\n".join(out)


async def test_apps_see_only_their_own_data(dstack):
    async with Dashboard(dstack.url) as d:
        await d.logged_in()
        alpha = await _populate(dstack, d, "Alpha")
        beta = await _populate(dstack, d, "Beta")
        for mine, theirs in ((alpha, beta), (beta, alpha)):
            pages = await _pages(d, mine["ws"])
            for marker in mine["markers"]:
                assert marker in pages, marker  # the scrape would have found a leak
            for marker in theirs["markers"]:
                assert marker not in pages, (mine["ws"], marker)
            searched = await d.page(f"/dashboard/apps/{mine['ws']}/logs", post_id=theirs["post"])
            assert "No log entries match" in searched

        before = await snapshot(dstack)
        b, a = beta["ws"], alpha
        await d.page(f"/dashboard/apps/{b}")
        for path, data in (
            (f"/dashboard/apps/{b}/keys/{a['api_keys']}/revoke", {}),
            (f"/dashboard/apps/{b}/redirects/{a['redirect_allowlist']}/delete", {}),
            (f"/dashboard/apps/{b}/profiles/{a['profiles']}", {"name": "Hijacked"}),
            (f"/dashboard/apps/{b}/posts/{a['post']}/results/{a['result']}/retry", {}),
            (f"/dashboard/apps/{b}/posts/{beta['post']}/results/{a['result']}/retry", {}),
        ):
            r = await d.post(path, data)
            assert r.status_code == 404, (path, r.status_code)
            assert re.search(r"No such [\w ]+ in this app|Result not found", r.text), r.text
        assert await snapshot(dstack) == before
