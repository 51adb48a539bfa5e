"""The hosted connect flow in real Chromium against the sandbox platforms' consent screens."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from tests.conftest import start_stack
from tests.support.browser import chromium, screenshot
from tests.support.servers import serve


def customer_app() -> FastAPI:
    """The customer's own site, where the user returns."""
    app = FastAPI()

    @app.get("/done", response_class=HTMLResponse)
    def done() -> str:
        return "<h1 id='done'>Back at Acme</h1>"

    return app


@pytest.fixture
async def bstack(database, temporal_env):
    s, close = await start_stack(database, temporal_env, connect_session_ttl_minutes=0.08)
    try:
        yield s
    finally:
        await close()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_approve_deny_expire_and_bluesky_in_a_browser(bstack):
    stack = bstack
    with serve(customer_app()) as acme:
        async with stack.client(stack.tenant.test_key) as c, chromium() as browser:
            await c.post("/v1/profiles", json={"name": "Acme", "branding_display_name": "Acme Social",
                                               "branding_primary_color": "#7C3AED"})

            async def session(platform: str) -> dict:
                r = await c.post("/v1/connect/sessions", json={
                    "platform": platform, "external_user_id": "user_42", "return_url": f"{acme}/done",
                    "allow_quickstart_creds": True})
                assert r.status_code == 201, r.text
                return r.json()["data"]

            page = await browser.new_page()
            # Approve.
            s1 = await session("twitter")
            await page.goto(s1["url"])
            assert await page.locator("h1").inner_text() == "Connect your X account"
            assert "Acme Social" in await page.content()
            await screenshot(page, "hosted-1-start")
            await page.click("#continue")
            await page.wait_for_selector("#approve")
            await page.fill("#sandbox_username", "alice_browser")
            await screenshot(page, "hosted-2-sandbox-consent")
            await page.click("#approve")
            await page.wait_for_selector("#done")
            assert page.url.startswith(f"{acme}/done?session_id={s1['id']}&status=completed&account_id=sa_")
            await screenshot(page, "hosted-3-returned")
            done = (await c.get(f"/v1/connect/sessions/{s1['id']}")).json()["data"]
            assert done["status"] == "completed"
            accounts = (await c.get("/v1/accounts")).json()["data"]
            assert [a["account_name"] for a in accounts] == ["alice_browser"]

            # Deny, then the error page offers a retry.
            s2 = await session("linkedin")
            await page.goto(s2["url"])
            await page.click("#continue")
            await page.wait_for_selector("#deny")
            await page.click("#deny")
            await page.wait_for_selector("#retry")
            assert "You declined access" in await page.content()
            await screenshot(page, "hosted-4-denied")
            assert (await c.get(f"/v1/connect/sessions/{s2['id']}")).json()["data"]["status"] == "pending"

            # Bluesky collects a handle and app password in a POST form.
            s3 = await session("bluesky")
            await page.goto(s3["url"])
            await page.fill("#handle", "dana.test")
            await page.fill("#app_password", "wrong")
            await page.click("#connect")
            await page.wait_for_selector(".error")
            await screenshot(page, "hosted-5-bluesky-error")
            await page.fill("#app_password", "abcd-efgh-ijkl-mnop")
            await page.click("#connect")
            await page.wait_for_selector("#done")
            assert "status=completed" in page.url and "abcd" not in page.url

            # Expiry.
            s4 = await session("pinterest")
            for _ in range(40):
                if (await c.get(f"/v1/connect/sessions/{s4['id']}")).json()["data"]["status"] == "expired":
                    break
                await asyncio.sleep(0.5)
            await page.goto(s4["url"])
            assert "expired" in (await page.locator("h1").inner_text()).lower()
            await screenshot(page, "hosted-6-expired")
