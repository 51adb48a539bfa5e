"""Hosted connect over real HTTP: session → hosted page → sandbox consent → callback → account."""

from __future__ import annotations

import asyncio
import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import start_stack
from tests.support.histories import record_history

RETURN = "https://app.acme.test/integrations/done?tab=social"


@pytest.fixture
async def cstack(database, temporal_env):
    s, close = await start_stack(database, temporal_env, connect_session_ttl_minutes=0.1)
    try:
        yield s
    finally:
        await close()


async def record(stack, session_id: str, name: str) -> None:
    from temporal_client import connect

    client = await connect(stack.settings)
    record_history(await client.get_workflow_handle(f"connect-session/{session_id}").fetch_history(), name)


async def create(c, **body) -> dict:
    r = await c.post("/v1/connect/sessions", json={"external_user_id": "user_123", "return_url": RETURN,
                                                    "allow_quickstart_creds": True, **body})
    assert r.status_code == 201, r.text
    return r.json()["data"]


async def start_oauth(http: httpx.AsyncClient, session: dict) -> str:
    """Open the hosted page, press Continue: returns the platform's authorize URL."""
    page = await http.get(session["url"])
    assert page.status_code == 200
    token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    r = await http.post(f"{session['url']}/authorize", data={"form_token": html.unescape(token)})
    assert r.status_code == 303, r.text
    return r.headers["location"]


async def callback(http: httpx.AsyncClient, authorize_url: str, **kw) -> tuple[httpx.Response, str]:
    """Consent at the sandbox, then follow the platform's redirect to Herald's callback."""
    page = await http.get(authorize_url)
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    hidden = {html.unescape(k): html.unescape(v)
              for k, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text)}
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    r = await http.post(origin + action, data={**hidden, "sandbox_username": kw.get("username", "alice"),
                                               "decision": kw.get("decision", "approve")})
    callback_url = r.headers["location"]
    return await http.get(callback_url), callback_url


async def test_oauth_connect_completes_and_redirects_with_safe_fields(cstack):
    """Approve on the sandbox consent screen: the user lands on return_url with session id, status and
    account id only; the session is completed and the account listed; tokens are encrypted at rest."""
    async with cstack.client(cstack.tenant.test_key) as c, httpx.AsyncClient(timeout=30) as http:
        session = await create(c, platform="twitter", external_user_email="alice@acme.test")
        assert session["status"] == "pending" and session["url"].endswith(f"/connect/{session['id']}")
        authorize = await start_oauth(http, session)
        query = parse_qs(urlsplit(authorize).query)
        assert query["redirect_uri"] == [f"{cstack.url}/v1/oauth/callback/twitter"]
        assert query["code_challenge_method"] == ["S256"]
        landing, cb_url = await callback(http, authorize)
        assert landing.status_code == 303, landing.text
        location = landing.headers["location"]
        assert location.startswith("https://app.acme.test/integrations/done?")
        params = parse_qs(urlsplit(location).query)
        assert set(params) == {"tab", "session_id", "status", "account_id"}
        assert params["status"] == ["completed"] and params["session_id"] == [session["id"]]

        done = (await c.get(f"/v1/connect/sessions/{session['id']}")).json()["data"]
        assert done["status"] == "completed" and done["completed_at"]
        assert done["managed_account_id"] == done["completed_social_account_id"] == params["account_id"][0]
        accounts = (await c.get("/v1/accounts", params={"external_user_id": "user_123"})).json()["data"]
        assert [a["id"] for a in accounts] == params["account_id"]
        assert accounts[0]["connection_type"] == "managed" and accounts[0]["account_name"] == "alice"
        user = (await c.get("/v1/users/user_123")).json()["data"]
        assert user == {"object": "managed_user", "external_user_id": "user_123",
                        "external_user_email": "alice@acme.test", "account_count": 1,
                        "platform_counts": {"twitter": 1}, "livemode": False}

        # The same callback again (a replayed state) changes nothing.
        again = await http.get(cb_url)
        assert again.status_code == 400 and "already used" in again.text

        # Reconnecting the same platform account updates it in place.
        second = await create(c, platform="twitter")
        landing, _ = await callback(http, await start_oauth(http, second))
        assert parse_qs(urlsplit(landing.headers["location"]).query)["account_id"] == params["account_id"]
        assert len((await c.get("/v1/accounts")).json()["data"]) == 1
    await record(cstack, session["id"], "connect_completed.json")

    async with cstack.db.session() as s:
        row = (await s.execute(text("SELECT access_token, refresh_token FROM social_accounts"))).one()
        events = [r[0] for r in (await s.execute(text("SELECT type FROM webhook_events ORDER BY created_at"))).all()]
    assert all(v.startswith("v1.") for v in row)
    assert events.count("account.connected") == 2 and events.count("connect_session.completed") == 2


async def test_denied_consent_keeps_session_pending_and_retry_works(cstack):
    async with cstack.client(cstack.tenant.test_key) as c, httpx.AsyncClient(timeout=30) as http:
        session = await create(c, platform="linkedin")
        landing, _ = await callback(http, await start_oauth(http, session), decision="deny")
        assert landing.status_code == 200 and "You declined access" in landing.text
        assert f'href="/connect/{session["id"]}"' in landing.text
        state = (await c.get(f"/v1/connect/sessions/{session['id']}")).json()["data"]
        assert state["status"] == "pending" and "declined" in state["last_error"]
        page = await http.get(session["url"])
        assert "You declined access" in page.text
        landing, _ = await callback(http, await start_oauth(http, session))
        assert landing.status_code == 303
        assert (await c.get(f"/v1/connect/sessions/{session['id']}")).json()["data"]["status"] == "completed"
    await record(cstack, session["id"], "connect_denied_then_completed.json")


async def test_expiry_marks_session_expired_and_refuses_late_callbacks(cstack):
    async with cstack.client(cstack.tenant.test_key) as c, httpx.AsyncClient(timeout=30) as http:
        session = await create(c, platform="twitter")
        authorize = await start_oauth(http, session)
        for _ in range(60):
            state = (await c.get(f"/v1/connect/sessions/{session['id']}")).json()["data"]
            if state["status"] == "expired":
                break
            await asyncio.sleep(0.5)
        assert state["status"] == "expired"
        landing, _ = await callback(http, authorize)
        assert landing.status_code == 410 and "Nothing was changed" in landing.text
        assert (await c.get("/v1/accounts")).json()["data"] == []
        page = await http.get(session["url"])
        assert page.status_code == 410 and "expired" in page.text
    async with cstack.db.session() as s:
        events = [r[0] for r in (await s.execute(text("SELECT type FROM webhook_events"))).all()]
    assert events == ["connect_session.expired"]
    await record(cstack, session["id"], "connect_expired.json")


async def test_bluesky_hosted_form_and_cancel(cstack):
    async with cstack.client(cstack.tenant.test_key) as c, httpx.AsyncClient(timeout=30) as http:
        session = await create(c, platform="bluesky")
        page = await http.get(session["url"])
        assert 'type="password"' in page.text and 'method="post"' in page.text
        token = html.unescape(re.search(r'name="form_token" value="([^"]+)"', page.text).group(1))
        bad = await http.post(f"{session['url']}/bluesky", data={"form_token": token, "handle": "carol.test",
                                                                 "app_password": "not-an-app-password"})
        assert bad.status_code == 422 and "did not accept" in bad.text and "not-an-app-password" not in bad.text
        assert (await c.get("/v1/accounts")).json()["data"] == []
        ok = await http.post(f"{session['url']}/bluesky", data={"form_token": token, "handle": "carol.test",
                                                                "app_password": "abcd-efgh-ijkl-mnop"})
        assert ok.status_code == 303 and "status=completed" in ok.headers["location"]
        assert "abcd" not in ok.headers["location"]
        [account] = (await c.get("/v1/accounts")).json()["data"]
        assert account["platform"] == "bluesky" and account["connection_type"] == "managed"

        other = await create(c, platform="bluesky")
        r = await c.post(f"/v1/connect/sessions/{other['id']}/cancel")
        assert r.status_code == 200 and r.json()["data"]["status"] == "cancelled"
        assert (await c.post(f"/v1/connect/sessions/{other['id']}/cancel")).status_code == 409
        assert (await http.get(other["url"])).status_code == 410


async def test_white_label_rule_and_bad_input(cstack):
    """Own credentials win; quickstart only when allowed; otherwise a 422 that says what to do."""
    other = await cstack.new_tenant("Other")
    async with cstack.client(other.test_key) as oc:
        foreign_profile = (await oc.post("/v1/profiles", json={"name": "Theirs"})).json()["data"]["id"]
    async with cstack.client(cstack.tenant.test_key) as c, httpx.AsyncClient(timeout=30) as http:
        r = await c.post("/v1/connect/sessions", json={"platform": "twitter", "external_user_id": "u"})
        assert r.status_code == 422 and "platform-credentials" in r.json()["error"]["message"]
        await c.post("/v1/platform-credentials", json={"platform": "twitter", "client_id": "acme-x-app",
                                                       "client_secret": "acme-x-secret"})
        session = (await c.post("/v1/connect/sessions", json={"platform": "twitter", "external_user_id": "u"})).json()["data"]
        authorize = await start_oauth(http, session)
        assert parse_qs(urlsplit(authorize).query)["client_id"] == ["acme-x-app"]
        landing, _ = await callback(http, authorize)
        assert landing.status_code == 200 and "connected" in landing.text  # no return_url: a success page

        before = (await c.get("/v1/users")).json()["data"]
        for body, status, field in [
            ({"platform": "myspace", "external_user_id": "u"}, 422, "platform"),
            ({"platform": "twitter"}, 422, "external_user_id"),
            ({"platform": "twitter", "external_user_id": "u", "return_url": "javascript:alert(1)"}, 422, "return_url"),
            ({"platform": "twitter", "external_user_id": "u", "profile_id": foreign_profile}, 404, None),
        ]:
            r = await c.post("/v1/connect/sessions", json=body)
            assert r.status_code == status, (body, r.text)
            if field:
                assert r.json()["error"]["issues"][0]["field"] == field
        assert (await c.get("/v1/users")).json()["data"] == before


async def test_tampered_foreign_and_missing_state_are_refused(cstack):
    async with cstack.client(cstack.tenant.test_key) as c, httpx.AsyncClient(timeout=30) as http:
        session = await create(c, platform="twitter")
        authorize = await start_oauth(http, session)
        state = parse_qs(urlsplit(authorize).query)["state"][0]
        sid, nonce, sig = state.split(".")
        base = f"{cstack.url}/v1/oauth/callback"
        for url in (f"{base}/twitter?code=x&state={sid}.{nonce}.{'A' * len(sig)}",
                    f"{base}/twitter?code=x&state={sid}.{nonce}x.{sig}",
                    f"{base}/linkedin?code=x&state={state}",
                    f"{base}/twitter?code=x",
                    f"{base}/nope?code=x&state={state}",
                    f"{base}/twitter?code=x&state=garbage"):
            r = await http.get(url)
            assert r.status_code == 400, (url, r.text)
        assert (await c.get(f"/v1/connect/sessions/{session['id']}")).json()["data"]["status"] == "pending"
