"""Herald's generic OAuth 2.0 client against a server it did not write: panva's oidc-provider on 127.0.0.1.

The platform is LinkedIn because all four of its OAuth calls (authorization URL, code exchange, refresh,
revoke) are the unmodified `adapters.oauth.OAuth2Mixin`, driven only by its catalogue entry, and its
profile call reads a standard OpenID Connect userinfo document. (YouTube, the other candidate, replaces
`revoke` with Google's unauthenticated `?token=` form, which an RFC 7009 server rightly refuses.)

The catalogue entry is adjusted as data, never in code: scopes `openid profile email offline_access`
(oidc-provider issues refresh tokens for `offline_access` only), PKCE S256 (the server requires it; the
real LinkedIn uses PKCE only for native apps) and `prompt=consent` (oidc-provider grants `offline_access`
only on a consent prompt). The endpoints move through the same operator overrides as
`HERALD_PROVIDER_OVERRIDES`: authorize, token and revoke URLs, plus LinkedIn's `userinfo` URL at the
server's own userinfo endpoint, so even the profile read after the exchange is answered by the peer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
import secrets
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import text

from adapters.base import ClientCredentials, PlatformAdapter
from adapters.errors import AdapterError, AuthRevoked
from adapters.factory import make_adapter
from adapters.linkedin import PROVIDER, LinkedInAdapter
from tests.conftest import start_stack
from tests.support.servers import free_port

PLATFORM = "linkedin"
# Herald's fixed callback for the platform; the adapter-level tests never need it to answer.
CALLBACK = f"http://127.0.0.1:9/v1/oauth/callback/{PLATFORM}"
PEER_PROVIDER = dataclasses.replace(
    PROVIDER,
    scopes=("openid", "profile", "email", "offline_access"),
    pkce="S256",
    authorize_params={"prompt": "consent"},
)


def operator_overrides(issuer: str) -> dict[str, dict[str, str]]:
    """What an operator puts in HERALD_PROVIDER_OVERRIDES to point LinkedIn at this server."""
    return {PLATFORM: {
        "authorize_url": f"{issuer}/auth",
        "token_url": f"{issuer}/token",
        "revoke_url": f"{issuer}/token/revocation",
        "userinfo": f"{issuer}/me",
    }}


class _Forms(HTMLParser):
    """The forms of one page: action and every named input's value."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1][1][a["name"]] = a.get("value", "")


def only_form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(page.text)
    assert len(parser.forms) == 1, page.text[:2000]
    action, fields = parser.forms[0]
    return urljoin(str(page.url), action), fields


async def authorize(http: httpx.AsyncClient, url: str, redirect_uri: str, *, login: str = "alice") -> str:
    """Play the user at oidc-provider: sign in with any login, approve consent; return the callback URL.

    Redirects are followed by hand so the last one, to Herald's callback, is returned rather than fetched.
    """
    pages: list[str] = []
    resp = await http.get(url)
    for _ in range(12):
        if resp.is_redirect:
            location = urljoin(str(resp.url), resp.headers["location"])
            if location.startswith(redirect_uri):
                return location
            resp = await http.get(location)
            continue
        assert resp.status_code == 200, (resp.status_code, resp.text[:2000])
        action, fields = only_form(resp)
        pages.append(fields.get("prompt", "?"))
        if fields.get("prompt") == "login":
            fields.update(login=login, password="any password")
        resp = await http.post(action, data=fields)
    pytest.fail(f"no redirect to {redirect_uri} after the pages {pages}")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def peer(oidc_provider):
    return oidc_provider(CALLBACK)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


def adapter_for(peer, http: httpx.AsyncClient, *, client_secret: str | None = None) -> PlatformAdapter:
    adapter = make_adapter(
        PLATFORM, http, livemode=True, sandbox_url="unused", overrides=operator_overrides(peer.issuer),
        client=ClientCredentials(peer.client_id, client_secret or peer.client_secret))
    adapter.provider = PEER_PROVIDER
    return adapter


def assert_refresh_follows_token_override(adapter: PlatformAdapter, peer) -> None:
    """LinkedIn has no refresh URL of its own: its refreshes go to the token endpoint, wherever that moved."""
    assert adapter.endpoints.refresh_url == f"{peer.issuer}/token", \
        "a token_url override must move refreshes too, or they still go to the real platform"


async def connect(adapter: PlatformAdapter, http: httpx.AsyncClient, peer, *, login: str = "alice"):
    """Authorization URL → user at the server → callback with code and our state. Returns (code, verifier)."""
    state, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    url = adapter.authorization_url(redirect_uri=CALLBACK, state=state, code_verifier=verifier)
    assert url.startswith(f"{peer.issuer}/auth?") and "code_challenge_method=S256" in url
    params = query(await authorize(http, url, CALLBACK, login=login))
    assert "error" not in params, params
    assert params["state"] == state
    assert params["iss"] == peer.issuer  # RFC 9207: the answer names the server that gave it
    return params["code"], verifier


async def test_code_exchange_refresh_rotation_and_revoke(peer, http):
    """The whole grant lifecycle through OAuth2Mixin: PKCE code exchange, a rotating refresh, revocation.

    Proves the tokens are real to the server (its userinfo accepts them), that a refresh stores the NEW
    refresh token the server rotated to, and that after revoke neither the refresh token nor the access
    token works any more.
    """
    adapter = adapter_for(peer, http)
    code, verifier = await connect(adapter, http, peer)

    before = time.time()
    tokens = await adapter.exchange_code(code=code, redirect_uri=CALLBACK, code_verifier=verifier)
    assert tokens.access_token and tokens.refresh_token
    assert tokens.expires_at is not None and before + 3000 < tokens.expires_at < time.time() + 3700
    assert set(tokens.scope.split()) == {"openid", "profile", "email", "offline_access"}
    profile = await adapter.fetch_profile(tokens)
    assert (profile.external_id, profile.username, profile.display_name) == \
        ("alice", "alice@peer.test", "Peer alice")

    assert_refresh_follows_token_override(adapter, peer)
    refreshed = await adapter.refresh(tokens)
    assert refreshed.refresh_token and refreshed.refresh_token != tokens.refresh_token
    assert refreshed.access_token != tokens.access_token and refreshed.expires_at is not None
    assert (await adapter.fetch_profile(refreshed)).external_id == "alice"

    await adapter.revoke(refreshed)
    with pytest.raises(AuthRevoked, match="invalid_grant"):
        await adapter.refresh(refreshed)
    # Revoking the refresh token ends the grant, so its access tokens die with it.
    with pytest.raises(AdapterError):
        await adapter.fetch_profile(refreshed)
    assert peer.stats() == {"token.authorization_code.200": 1, "token.refresh_token.200": 1,
                            "token.refresh_token.400": 1, "revocation.200": 1}


async def test_rotated_refresh_token_is_dead(peer, http):
    """With rotation on, the refresh token a refresh replaced is refused with the typed AuthRevoked."""
    adapter = adapter_for(peer, http)
    code, verifier = await connect(adapter, http, peer, login="bob")
    tokens = await adapter.exchange_code(code=code, redirect_uri=CALLBACK, code_verifier=verifier)
    assert_refresh_follows_token_override(adapter, peer)
    refreshed = await adapter.refresh(tokens)
    assert refreshed.refresh_token != tokens.refresh_token

    with pytest.raises(AuthRevoked, match="invalid_grant") as refused:
        await adapter.refresh(tokens)
    assert refused.value.code == "reauth_required" and refused.value.status == 400


async def test_wrong_code_verifier_and_reused_code_are_refused(peer, http):
    """PKCE binds the code to our verifier, and a code works once: both refusals are AuthRevoked."""
    adapter = adapter_for(peer, http)
    code, verifier = await connect(adapter, http, peer)
    with pytest.raises(AuthRevoked, match="invalid_grant"):
        await adapter.exchange_code(code=code, redirect_uri=CALLBACK, code_verifier=secrets.token_urlsafe(48))

    code, verifier = await connect(adapter, http, peer)
    tokens = await adapter.exchange_code(code=code, redirect_uri=CALLBACK, code_verifier=verifier)
    assert tokens.refresh_token
    with pytest.raises(AuthRevoked, match="invalid_grant"):
        await adapter.exchange_code(code=code, redirect_uri=CALLBACK, code_verifier=verifier)


async def test_client_secret_basic(oidc_provider, http):
    """An entry that authenticates with HTTP Basic exchanges its code at a server expecting Basic."""
    peer = oidc_provider(CALLBACK, token_auth_method="client_secret_basic")
    adapter = adapter_for(peer, http)
    adapter.provider = dataclasses.replace(PEER_PROVIDER, token_auth_method="client_secret_basic")
    code, verifier = await connect(adapter, http, peer)
    tokens = await adapter.exchange_code(code=code, redirect_uri=CALLBACK, code_verifier=verifier)
    assert tokens.access_token and tokens.refresh_token
    await adapter.revoke(tokens)
    assert peer.stats() == {"token.authorization_code.200": 1, "revocation.200": 1}


async def test_wrong_client_secret_is_refused(peer, http):
    """A client secret the server does not know is invalid_client: AuthRevoked, not a retryable error."""
    adapter = adapter_for(peer, http)
    code, verifier = await connect(adapter, http, peer)
    wrong = adapter_for(peer, http, client_secret="not-the-secret")
    with pytest.raises(AuthRevoked, match="invalid_client"):
        await wrong.exchange_code(code=code, redirect_uri=CALLBACK, code_verifier=verifier)


RETURN = "https://app.acme.test/integrations/done"


async def test_hosted_connect_in_live_mode_exchanges_at_the_peer(database, temporal_env, oidc_provider,
                                                                 monkeypatch):
    """Herald's whole hosted connect flow, live mode, against oidc-provider instead of LinkedIn.

    The operator points LinkedIn at the peer with `provider_overrides`; the workspace uploads its own
    OAuth app with the live key. The hosted page sends the user to the peer with PKCE; the peer calls
    Herald's fixed callback; Herald exchanges the code (the peer itself counts one successful
    authorization_code grant), reads the userinfo document and stores the account, tokens sealed.
    """
    # The scopes, PKCE and prompt this server needs (see the module docstring), for app and worker alike.
    monkeypatch.setattr(LinkedInAdapter, "provider", PEER_PROVIDER)
    port = free_port()
    stack, close = await start_stack(database, temporal_env,
                                     provider_overrides=operator_overrides(f"http://127.0.0.1:{port}"))
    try:
        callback = f"{stack.url}/v1/oauth/callback/{PLATFORM}"
        peer = oidc_provider(callback, port=port, client_id="acme-linkedin-app", client_secret="acme-secret")
        async with stack.client(stack.tenant.live_key) as api, httpx.AsyncClient(timeout=30) as http:
            for _ in range(100):  # the app's Temporal client connects in the background
                if (await api.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            r = await api.post("/v1/platform-credentials", json={
                "platform": PLATFORM, "client_id": peer.client_id, "client_secret": peer.client_secret})
            assert r.status_code == 201, r.text
            r = await api.post("/v1/connect/sessions", json={
                "platform": PLATFORM, "external_user_id": "user_42", "return_url": RETURN})
            assert r.status_code == 201, r.text
            session = r.json()["data"]

            page = await http.get(session["url"])
            assert page.status_code == 200, page.text
            form_token = html.unescape(re.search(r'name="form_token" value="([^"]+)"', page.text).group(1))
            start = await http.post(f"{session['url']}/authorize", data={"form_token": form_token})
            assert start.status_code == 303, start.text
            authorize_url = start.headers["location"]
            sent = query(authorize_url)
            assert authorize_url.startswith(f"{peer.issuer}/auth?")
            assert sent["client_id"] == peer.client_id and sent["redirect_uri"] == callback
            assert sent["code_challenge_method"] == "S256" and sent["prompt"] == "consent"

            back = await authorize(http, authorize_url, callback, login="carol")
            assert query(back)["iss"] == peer.issuer
            landing = await http.get(back)
            assert landing.status_code == 303, landing.text
            returned = query(landing.headers["location"])
            assert landing.headers["location"].startswith(RETURN + "?")
            assert set(returned) == {"session_id", "status", "account_id"} and returned["status"] == "completed"

            done = (await api.get(f"/v1/connect/sessions/{session['id']}")).json()["data"]
            assert done["status"] == "completed" and done["completed_social_account_id"] == returned["account_id"]
            accounts = (await api.get("/v1/accounts")).json()["data"]
            assert [(a["id"], a["platform"], a["account_name"], a["livemode"]) for a in accounts] == \
                [(returned["account_id"], PLATFORM, "carol@peer.test", True)]
        assert peer.stats() == {"token.authorization_code.200": 1}

        async with stack.db.session() as s:
            row = (await s.execute(text(
                "SELECT external_account_id, access_token, refresh_token FROM social_accounts"))).one()
        assert row[0] == "carol" and all(v.startswith("v1.") for v in row[1:])
    finally:
        await close()
