"""Connected accounts per end user, with their health; never a token or an app password."""

from __future__ import annotations

import re

from sqlmodel import select

from store.models import SocialAccount
from tests.dashboard.support import Dashboard
from tests.support.accounts import connect_oauth

APP_PASSWORD = "abcd-efgh-ijkl-mnop"


async def test_accounts_are_grouped_by_end_user_with_health_and_paged(dstack):
    tenant = dstack.tenant
    async with dstack.client(tenant.test_key) as api:
        for n, user in enumerate(("user_a", "user_b", "user_c")):
            r = await api.post("/v1/accounts/connect", json={
                "platform": "bluesky", "external_user_id": user,
                "credentials": {"handle": f"handle{n}.test", "app_password": APP_PASSWORD}})
            assert r.status_code == 201, r.text
    direct = await connect_oauth(dstack, "twitter", "broken_x")
    async with dstack.db.session() as s:
        account = await s.get(SocialAccount, direct)
        account.status, account.last_error = "reauth_required", "The platform revoked the token"
        s.add(account)
        await s.commit()
        tokens = [t for a in (await s.exec(select(SocialAccount))).all()
                  for t in (a.access_token, a.refresh_token) if t]
    assert tokens

    async with Dashboard(dstack.url) as d:
        await d.logged_in()
        base = f"/dashboard/apps/{tenant.workspace_id}/accounts"
        first = await d.page(base, limit="2")
        users = re.findall(r'<div class="card end-user">\s*<h2[^>]*>\S+ <code class="muted">(\w+)</code>', first)
        assert users == ["user_c", "user_b"]  # newest first
        assert "handle2.test" in first and "handle1.test" in first and "handle0.test" not in first
        unowned = first[first.index("Accounts without an end user"):]
        assert 'badge reauth_required">reauth_required' in unowned and "The platform revoked the token" in unowned
        assert "broken_x" in unowned and "quickstart" in unowned

        next_url = re.search(r'id="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
        second = await d.page(next_url)
        assert re.findall(r'<code class="muted">(user_\w)</code>', second) == ["user_a"]
        assert "handle0.test" in second and "Accounts without an end user" not in second
        assert 'id="next"' not in second

        live = await d.page(base, mode="live")
        assert "No end users or accounts in live mode yet" in live
        for text in (first, second):
            assert APP_PASSWORD not in text and not any(t in text for t in tokens)
