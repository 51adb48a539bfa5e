"""The operator login: who gets in, what the session cookie is, and where a login may send the browser."""

from __future__ import annotations

import time

from fastapi import Response

from api.dashboard.auth import SESSION_COOKIE, LoginThrottle, issue_session, set_session
from api.dashboard.csrf import LOGIN_COOKIE, login_token
from store.settings import Settings
from tests.conftest import TEST_KEY
from tests.dashboard.conftest import started
from tests.dashboard.support import PASSWORD, Dashboard, csrf_of, sets_session

PAGES = ["/dashboard", "/dashboard/apps", "/dashboard/apps/ws_x", "/dashboard/apps/ws_x/keys",
         "/dashboard/apps/ws_x/redirects", "/dashboard/apps/ws_x/credentials", "/dashboard/apps/ws_x/accounts",
         "/dashboard/apps/ws_x/posts", "/dashboard/apps/ws_x/logs"]


async def test_every_page_redirects_to_login_and_forms_refuse_without_a_session(dstack):
    """No cookie, a tampered cookie or a forged one: each page is a 303 to the login form (coming back to
    it afterwards), and a form post is refused with nothing created."""
    async with Dashboard(dstack.url) as d:
        for path in PAGES:
            r = await d.get(path)
            assert r.status_code == 303, (path, r.status_code)
            assert r.headers["location"].startswith("/dashboard/login?next="), r.headers["location"]
        good = (await d.logged_in()).http.cookies[SESSION_COOKIE]
        encoded, signature = good.split(".")
        for bad in (f"{encoded}.{signature[:-2]}AA", f"{encoded[:-4]}AAAA.{signature}", "x.y", ""):
            d.http.cookies.clear()
            d.http.cookies.set(SESSION_COOKIE, bad, domain="127.0.0.1", path="/dashboard")
            assert (await d.get("/dashboard/apps")).status_code == 303, bad
            r = await d.post("/dashboard/apps", {"name": "Sneaky"})
            assert r.status_code == 401 and "Nothing was changed" in r.text
    async with Dashboard(dstack.url) as d:
        apps = await (await d.logged_in()).page("/dashboard/apps")
        assert "Sneaky" not in apps


async def test_the_right_password_logs_in_and_comes_back_to_the_page_asked_for(dstack):
    async with Dashboard(dstack.url) as d:
        first = await d.get("/dashboard/apps/ws_x/logs", mode="live")
        assert first.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fapps%2Fws_x%2Flogs%3Fmode%3Dlive"
        r = await d.login(next_="/dashboard/apps/ws_x/logs?mode=live")
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/apps/ws_x/logs?mode=live"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/dashboard"} <= flags, cookie
        assert "secure" not in flags  # public_base_url is plain http here; see the https test below
        assert "Apps" in await d.page("/dashboard/apps")
        assert (await d.get("/dashboard/login")).headers["location"] == "/dashboard/apps"

        await d.page("/dashboard/apps")
        out = await d.post("/dashboard/logout")
        assert out.status_code == 303 and out.headers["location"] == "/dashboard/login"
        assert (await d.get("/dashboard/apps")).status_code == 303


async def test_a_wrong_password_or_username_gets_no_session(dstack):
    async with Dashboard(dstack.url) as d:
        for username, password in (("admin", "wrong"), ("admin", PASSWORD + " "), ("root", PASSWORD),
                                   ("admin", "")):
            r = await d.login(username, password)
            assert r.status_code == 401, r.status_code
            assert not sets_session(r)
            assert (await d.get("/dashboard/apps")).status_code == 303
        assert "Wrong username or password" in (await d.login("admin", "wrong")).text


async def test_the_login_form_itself_needs_its_csrf_pair(dstack):
    """Login CSRF: a cross-site form cannot log the operator's browser into a session of the attacker's choosing."""
    async with Dashboard(dstack.url) as d:
        r = await d.http.post("/dashboard/login", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 403 and "Form rejected" in r.text
        token = csrf_of(await d.page("/dashboard/login"))
        d.http.cookies.clear()  # the token without the nonce cookie it was signed from
        r = await d.http.post("/dashboard/login", data={"csrf_token": token, "username": "admin",
                                                        "password": PASSWORD})
        assert r.status_code == 403 and not sets_session(r)


async def test_next_never_leaves_the_dashboard(dstack):
    """An attacker's link to the login form cannot turn it into an open redirect."""
    hostile = ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/dashboard/../../evil",
               "/dashboard//evil.example", "javascript:alert(1)", "/dashboard/apps\r\nLocation: https://evil",
               "http:/dashboard/apps", "/v1/workspace"]
    async with Dashboard(dstack.url) as d:
        for target in hostile:
            r = await d.login(next_=target)
            assert r.status_code == 303 and r.headers["location"] == "/dashboard/apps", (target, r.headers)
            d.http.cookies.clear()
        page = await d.page("/dashboard/login", next="https://evil.example/")
        assert "evil.example" not in page


async def test_failed_logins_are_throttled_per_address(dstack):
    """After 10 failures from one address even the right password is refused for a while."""
    async with Dashboard(dstack.url) as d:
        for _ in range(10):
            assert (await d.login(password="guess")).status_code == 401
        r = await d.login()
        assert r.status_code == 429 and "Too many failed logins" in r.text
        assert not sets_session(r)


def test_throttle_forgets_old_failures_and_a_success_clears_it():
    throttle = LoginThrottle(limit=2, window=0.05)
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.blocked("a") and not throttle.blocked("b")
    time.sleep(0.06)
    assert not throttle.blocked("a")
    throttle.failed("b")
    throttle.succeeded("b")
    throttle.failed("b")
    assert not throttle.blocked("b")


def test_the_session_cookie_is_secure_behind_https():
    settings = Settings(env="test", encryption_keys=TEST_KEY, operator_password="pw",
                        public_base_url="https://herald.example")
    response = Response()
    set_session(response, settings, issue_session(settings, "admin"))
    flags = {part.strip().lower() for part in response.headers["set-cookie"].split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/dashboard"} <= flags


async def test_without_a_password_the_dashboard_is_disabled(database, temporal_env):
    """Outside development an unset HERALD_OPERATOR_PASSWORD means nobody gets in, not everybody."""
    stack, close = await started(database, temporal_env, worker=False)
    try:
        assert stack.settings.operator_password_value() is None
        async with Dashboard(stack.url) as d:
            page = await d.get("/dashboard/login")
            assert page.status_code == 503 and "The dashboard is disabled" in page.text
            assert 'name="password"' not in page.text
            # Even a well-formed login form (a valid CSRF pair, signed here with the test key) gets nowhere.
            for password in ("", "admin", "None"):
                token = login_token(d.http.cookies[LOGIN_COOKIE])
                r = await d.http.post("/dashboard/login", data={"csrf_token": token, "username": "admin",
                                                                "password": password})
                assert r.status_code == 503 and not sets_session(r), r.text
            assert (await d.get("/dashboard/apps")).status_code == 303
    finally:
        await close()
