"""What an app needs before its users can connect: the redirect allowlist and the provider credentials."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.conftest import Stack
from tests.dashboard.conftest import started
from tests.dashboard.support import PASSWORD, Dashboard
from tests.dialect_m.support import m_client

REDIRECT = "https://app.customer.example/oauth/done"
SECRET = "s3cr3t-Client-VALUE-9f2b7c"
INSTANCE_SECRET = "instance-QUICKSTART-secret-77d1"


async def _session_status(stack: Stack, key: str, redirect: str) -> int:
    """Dialect M's connect session is where the allowlist is enforced."""
    async with m_client(stack, key) as m:
        assert (await m.post("/v1/end-users", json={"externalUserId": "u1"})).status_code == 200
        r = await m.post("/v1/connect-sessions", json={"externalUserId": "u1", "platform": "linkedin",
                                                        "redirectUri": redirect})
        return r.status_code


async def test_redirect_uris_are_validated_added_enforced_and_removed(dstack):
    async with Dashboard(dstack.url) as d:
        await d.logged_in()
        ws = await d.create_app("Redirecting")
        key = await d.issue_key(ws)
        assert await _session_status(dstack, key, REDIRECT) == 422

        await d.page(f"/dashboard/apps/{ws}/redirects")
        r = await d.post(f"/dashboard/apps/{ws}/redirects", {"uri": f"  {REDIRECT}  "})
        assert r.status_code == 303 and r.headers["location"].endswith("done=redirect_added")
        for uri in (REDIRECT, "http://localhost:3000/cb", "http://127.0.0.1:8080/cb"):
            if uri != REDIRECT:
                assert (await d.post(f"/dashboard/apps/{ws}/redirects", {"uri": uri})).status_code == 303
        listing = await d.page(f"/dashboard/apps/{ws}/redirects")
        assert f"<code>{REDIRECT}</code>" in listing and "<code>http://localhost:3000/cb</code>" in listing
        assert await _session_status(dstack, key, REDIRECT) == 201

        refused = {
            "": "Enter a redirect URI",
            "not a url": "without spaces",
            "/relative/path": "absolute https:// URL",
            "javascript:alert(1)": "absolute https:// URL",
            "ftp://files.example/cb": "absolute https:// URL",
            "http://app.customer.example/cb": "plain http:// only for localhost",
            "https://user:pw@app.customer.example/cb": "username or password",
            "https://app.customer.example/cb#frag": "fragment",
            "https://app.customer.example:99999/cb": "not a valid URL",
            "https://" + "a" * 2050 + ".example/": "at most 2048",
            REDIRECT: "already on the allowlist",
        }
        for uri, message in refused.items():
            r = await d.post(f"/dashboard/apps/{ws}/redirects", {"uri": uri})
            assert r.status_code == 422 and message in r.text, (uri, r.status_code)

        entry = re.search(rf"<code>{re.escape(REDIRECT)}</code>.*?/redirects/(ra_[0-9a-f]+)/delete", listing,
                          re.S).group(1)
        r = await d.post(f"/dashboard/apps/{ws}/redirects/{entry}/delete")
        assert r.status_code == 303 and r.headers["location"].endswith("done=redirect_removed")
        assert REDIRECT not in await d.page(f"/dashboard/apps/{ws}/redirects")
        assert await _session_status(dstack, key, REDIRECT) == 422
    async with dstack.db.session() as s:
        uris = (await s.execute(text("SELECT uri FROM redirect_allowlist WHERE workspace_id = :ws ORDER BY uri"),
                                {"ws": ws})).scalars().all()
    assert uris == ["http://127.0.0.1:8080/cb", "http://localhost:3000/cb"]


def card(page: str, platform: str) -> str:
    """One platform's card on the credentials page."""
    return page[page.index(f'id="cred-{platform}"'):].split('class="card"')[0]


async def _all_pages(d: Dashboard, ws: str) -> str:
    pages = [await d.page("/dashboard/apps")]
    for mode in ("test", "live"):
        for tab in ("", "/keys", "/redirects", "/credentials", "/accounts", "/posts", "/logs"):
            pages.append(await d.page(f"/dashboard/apps/{ws}{tab}", mode=mode))
    return "\n".join(pages)


async def test_provider_credentials_show_the_callback_url_and_never_a_secret(database, temporal_env):
    """Per platform and mode: the app's own client id (its secret write-only), or the instance's quickstart
    app (its secret never shown either); the exact callback URL to register is on the page."""
    stack, close = await started(database, temporal_env, worker=False, operator_password=PASSWORD,
                                 quickstart_credentials={"linkedin": {"client_id": "instance-li",
                                                                      "client_secret": INSTANCE_SECRET}})
    try:
        async with Dashboard(stack.url) as d:
            await d.logged_in()
            ws = await d.create_app("Credentialed")
            page = await d.page(f"/dashboard/apps/{ws}/credentials", mode="live")
            for platform in ("twitter", "linkedin", "youtube"):
                assert f'<code class="callback">{stack.url}/v1/oauth/callback/{platform}</code>' in page
            assert "instance quickstart" in card(page, "linkedin") and "not configured" in card(page, "twitter")
            assert "app password, no OAuth app" in card(page, "bluesky")
            assert "sandbox quickstart" in card(await d.page(f"/dashboard/apps/{ws}/credentials"), "twitter")

            r = await d.post(f"/dashboard/apps/{ws}/credentials/twitter",
                             {"mode": "live", "client_id": "x-client-id", "client_secret": SECRET})
            assert r.status_code == 303 and r.headers["location"].endswith("mode=live&done=credential_saved")
            page = await d.page(f"/dashboard/apps/{ws}/credentials", mode="live")
            assert "own credentials" in card(page, "twitter") and "<code>x-client-id</code>" in card(page, "twitter")
            assert "x-client-id" not in await d.page(f"/dashboard/apps/{ws}/credentials", mode="test")
            async with stack.client(await d.issue_key(ws, mode="live")) as api:  # the API sees the same row
                listed = (await api.get("/v1/platform-credentials")).json()["data"]
                assert [(c["platform"], c["client_id"], c["client_secret_set"]) for c in listed] == [
                    ("twitter", "x-client-id", True)]

            for form, status in (({"client_id": "x-2"}, 422), ({"client_secret": "only"}, 422)):
                r = await d.post(f"/dashboard/apps/{ws}/credentials/twitter", {"mode": "live", **form})
                assert r.status_code == status and "both the client id and the secret" in r.text
            r = await d.post(f"/dashboard/apps/{ws}/credentials/bluesky", {"client_id": "a", "client_secret": "b"})
            assert r.status_code == 404

            everything = await _all_pages(d, ws)
            assert SECRET not in everything and INSTANCE_SECRET not in everything
            assert SECRET[4:-4] not in everything

            r = await d.post(f"/dashboard/apps/{ws}/credentials/twitter/delete", {"mode": "live"})
            assert r.status_code == 303 and r.headers["location"].endswith("done=credential_deleted")
            page = await d.page(f"/dashboard/apps/{ws}/credentials", mode="live")
            assert "not configured" in card(page, "twitter")
            assert (await d.post(f"/dashboard/apps/{ws}/credentials/twitter/delete",
                                 {"mode": "live"})).status_code == 404
        async with stack.db.session() as s:
            assert (await s.execute(text("SELECT count(*) FROM platform_credentials"))).scalar_one() == 0
    finally:
        await close()


async def test_a_stored_client_secret_is_encrypted_at_rest(dstack):
    async with Dashboard(dstack.url) as d:
        await d.logged_in()
        ws = await d.create_app("Sealed")
        await d.page(f"/dashboard/apps/{ws}/credentials")
        r = await d.post(f"/dashboard/apps/{ws}/credentials/linkedin",
                         {"mode": "test", "client_id": "li-id", "client_secret": SECRET})
        assert r.status_code == 303
    async with dstack.db.session() as s:
        raw = (await s.execute(text("SELECT client_secret FROM platform_credentials"))).scalar_one()
    assert raw.startswith("v1.") and SECRET not in raw
