"""An operator's first minutes in real Chromium: log in, create an app, issue a key, allowlist a redirect."""

from __future__ import annotations

import re

import pytest

from tests.dashboard.support import PASSWORD
from tests.support.browser import chromium, screenshot


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_operator_sets_up_an_app_in_a_browser(dstack):
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{dstack.url}/dashboard/apps")
        assert re.search(r"/dashboard/login\?next=%2Fdashboard%2Fapps$", page.url), page.url
        await page.fill("#password", PASSWORD)
        await screenshot(page, "dashboard-1-login")
        await page.click("#login")
        await page.wait_for_selector("#create-app")
        assert page.url == f"{dstack.url}/dashboard/apps"

        await page.fill("#app-name", "Browser Co")
        await page.click("#create-app")
        await page.wait_for_selector("#notice")
        assert await page.locator("h1").inner_text() == "Browser Co"
        await screenshot(page, "dashboard-2-app")

        await page.click("#tab-keys")
        await page.fill("#key-name", "server")
        await page.select_option("#key-mode", "test")
        await page.click("#issue-key")
        key = (await page.locator("#new-key").inner_text()).strip()
        assert re.fullmatch(r"hrld_test_[A-Za-z0-9_-]{40,}", key), key
        await screenshot(page, "dashboard-3-key-once")
        async with dstack.client(key) as api:
            assert (await api.get("/v1/workspace")).json()["data"]["name"] == "Browser Co"
        # Coming back to the keys page shows the preview only: the key itself is gone for good.
        await page.click("#tab-keys")
        await page.wait_for_selector("#keys")
        assert await page.locator("#new-key").count() == 0
        content = await page.content()
        assert key not in content and key.split("_", 2)[2][:12] not in content
        assert f"{key[:14]}…{key[-4:]}" in await page.locator("#keys").inner_text()

        await page.click("#tab-redirects")
        await page.fill("#redirect-uri", "https://browser.example/oauth/done")
        await page.click("#add-redirect")
        await page.wait_for_selector("#notice")
        assert "https://browser.example/oauth/done" in await page.locator("#redirects").inner_text()
        await page.fill("#redirect-uri", "http://browser.example/plain")
        await page.click("#add-redirect")
        await page.wait_for_selector("#error")
        assert "https://" in await page.locator("#error").inner_text()
        await screenshot(page, "dashboard-4-redirects")

        await page.click("#logout")
        await page.wait_for_selector("#password")
        await page.goto(f"{dstack.url}/dashboard/apps")
        assert "/dashboard/login" in page.url
