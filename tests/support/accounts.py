"""Connecting sandbox accounts for tests of the publish pipeline.

OAuth platforms go through the sandbox's real consent screen and token
endpoint with the quickstart client; Bluesky through the API's own
`POST /v1/accounts/connect`.
"""

from __future__ import annotations

import html
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from adapters.base import ClientCredentials
from adapters.factory import make_adapter
from store.accounts import ConnectedIdentity, upsert_account
from store.credentials import SANDBOX_QUICKSTART
from store.models import Profile
from store.tenancy import profiles_of

REDIRECT = "https://app.example.test/oauth/done"


async def consent(http: httpx.AsyncClient, url: str, *, decision: str = "approve",
                  username: str = "alice") -> dict[str, str]:
    """Open a sandbox consent screen, submit it, and return the redirect's query parameters."""
    page = await http.get(url)
    assert page.status_code == 200, page.text
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    hidden = {html.unescape(k): html.unescape(v)
              for k, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text)}
    origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    resp = await http.post(origin + action if action.startswith("/") else action,
                           data={**hidden, "sandbox_username": username, "decision": decision})
    assert resp.status_code in (302, 303), resp.text
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["location"]).query).items()}


async def connect_oauth(stack, platform: str, username: str = "alice", *, workspace_id: str | None = None) -> str:
    """A test-mode account on `platform` for the stack's tenant; returns its id."""
    workspace_id = workspace_id or stack.tenant.workspace_id
    async with httpx.AsyncClient(timeout=20) as http:
        adapter = make_adapter(platform, http, livemode=False, sandbox_url=stack.settings.sandbox_url,
                               client=ClientCredentials(*SANDBOX_QUICKSTART))
        verifier = secrets.token_urlsafe(48)
        url = adapter.authorization_url(redirect_uri=REDIRECT, state="t", code_verifier=verifier)
        params = await consent(http, url, username=username)
        tokens = await adapter.exchange_code(code=params["code"], redirect_uri=REDIRECT, code_verifier=verifier)
        profile = await adapter.fetch_profile(tokens)
    tokens = profile.tokens or tokens
    async with stack.db.session() as s:
        profiles = await profiles_of(s, workspace_id, False)
        prof = profiles[0] if profiles else Profile(workspace_id=workspace_id, livemode=False, name="Default")
        s.add(prof)
        await s.flush()
        account, _ = await upsert_account(s, ConnectedIdentity(
            platform=platform, external_account_id=profile.external_id, account_name=profile.username,
            display_name=profile.display_name, avatar_url=profile.avatar_url, access_token=tokens.access_token,
            refresh_token=tokens.refresh_token, token_expires_at=tokens.expires_at,
            refresh_expires_at=tokens.refresh_expires_at, scopes=tokens.scope,
            platform_data={"token_extra": tokens.extra, **profile.extra}),
            workspace_id=workspace_id, livemode=False, profile_id=prof.id, connection_type="managed",
            credential_source="quickstart")
        await s.commit()
        return account.id


async def connect_bluesky(client: httpx.AsyncClient, handle: str = "alice.test") -> str:
    r = await client.post("/v1/accounts/connect", json={
        "platform": "bluesky", "credentials": {"handle": handle, "app_password": "abcd-efgh-ijkl-mnop"}})
    assert r.status_code == 201, r.text
    return r.json()["data"]["id"]


async def sandbox_posts(stack, platform: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(f"{stack.settings.sandbox_url}/_control/{platform}/posts")).json()


async def fault(stack, platform: str, kind: str, **spec) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{stack.settings.sandbox_url}/_control/faults",
                            json={"platform": platform, "kind": kind, **spec})
        r.raise_for_status()
