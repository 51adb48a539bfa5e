"""Driving dialect M like a mypostshare customer: base URL `<herald>/api`, a Bearer key, the hosted flow."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import httpx

from store.models import RedirectAllowlistEntry

REDIRECT = "https://client.example.com/oauth/callback"
END_USER = {"externalUserId": "user_123", "displayName": "Alex Morgan", "email": "alex@example.com",
            "metadata": {"plan": "pro", "source": "web-app"}}


def m_client(stack, key: str) -> httpx.AsyncClient:
    """The seed's curl examples with `https://mypostshare.com/api` replaced by Herald's `/api`."""
    return httpx.AsyncClient(base_url=f"{stack.url}/api", headers={"Authorization": f"Bearer {key}"}, timeout=60)


async def allow_redirect(stack, uri: str = REDIRECT, workspace_id: str | None = None) -> None:
    async with stack.db.session() as s:
        s.add(RedirectAllowlistEntry(workspace_id=workspace_id or stack.tenant.workspace_id, uri=uri))
        await s.commit()


async def hosted_connect(http: httpx.AsyncClient, connect_url: str, *, username: str = "alice",
                         decision: str = "approve") -> httpx.Response:
    """What the end user does: open connectUrl, press Continue, decide at the platform, come back.

    Returns Herald's answer to the platform's callback (not followed)."""
    page = await http.get(connect_url)
    assert page.status_code == 200, page.text
    token = html.unescape(re.search(r'name="form_token" value="([^"]+)"', page.text).group(1))
    started = await http.post(f"{connect_url}/authorize", data={"form_token": token})
    assert started.status_code == 303, started.text
    authorize_url = started.headers["location"]
    consent = await http.get(authorize_url)
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', consent.text).group(1))
    hidden = {html.unescape(k): html.unescape(v)
              for k, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', consent.text)}
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    decided = await http.post(origin + action, data={**hidden, "sandbox_username": username, "decision": decision})
    assert decided.status_code in (302, 303), decided.text
    return await http.get(decided.headers["location"])


async def connect_platform(m: httpx.AsyncClient, http: httpx.AsyncClient, platform: str,
                           external_user_id: str = "user_123", username: str = "alice") -> dict:
    """A connected platform for an existing end user, through a dialect M connect session."""
    r = await m.post("/v1/connect-sessions", json={"externalUserId": external_user_id, "platform": platform,
                                                    "redirectUri": REDIRECT})
    assert r.status_code == 201, r.text
    landing = await hosted_connect(http, r.json()["connectUrl"], username=username)
    assert landing.status_code == 303 and landing.headers["location"].startswith(REDIRECT), landing.text
    return r.json()
