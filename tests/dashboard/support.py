"""Driving the dashboard like an operator's browser: cookies, the CSRF token of each page, form posts."""

from __future__ import annotations

import asyncio
import html
import re

import httpx
from sqlalchemy import func, text
from sqlmodel import select

from api.dashboard.auth import SESSION_COOKIE
from store.models import OperatorLog
from store.posts import create_post
from tests.support.accounts import connect_oauth

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    assert match, "the page has no form with a CSRF token"
    return html.unescape(match.group(1))


class Dashboard:
    """One operator's browser session (its own cookie jar); redirects are not followed, to be asserted."""

    def __init__(self, base_url: str):
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        self.token = ""

    async def __aenter__(self) -> Dashboard:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()

    async def get(self, path: str, **params) -> httpx.Response:
        # httpx would replace a query string already in `path` with even an empty `params`.
        query = {k: v for k, v in params.items() if v is not None}
        r = await (self.http.get(path, params=query) if query else self.http.get(path))
        if r.status_code == 200 and CSRF.search(r.text):
            self.token = csrf_of(r.text)
        return r

    async def page(self, path: str, **params) -> str:
        r = await self.get(path, **params)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        return r.text

    async def post(self, path: str, data: dict | None = None, *, token: str | None = None) -> httpx.Response:
        """A form post carrying the last page's CSRF token, unless `token` says otherwise ("" sends none)."""
        form = dict(data or {})
        token = self.token if token is None else token
        if token:
            form["csrf_token"] = token
        return await self.http.post(path, data=form)

    async def login(self, username: str = "admin", password: str = PASSWORD, next_: str = "") -> httpx.Response:
        page = await self.page("/dashboard/login")
        return await self.http.post("/dashboard/login", data={"csrf_token": csrf_of(page), "username": username,
                                                              "password": password, "next": next_})

    async def logged_in(self) -> Dashboard:
        r = await self.login()
        assert r.status_code == 303, r.text
        await self.page("/dashboard/apps")
        return self

    async def create_app(self, name: str) -> str:
        await self.page("/dashboard/apps")
        r = await self.post("/dashboard/apps", {"name": name})
        assert r.status_code == 303, r.text
        return re.match(r"/dashboard/apps/(ws_[0-9a-f]+)\?", r.headers["location"]).group(1)

    async def issue_key(self, workspace_id: str, mode: str = "test", name: str = "") -> str:
        """Issue a key on the keys page and return it, read from the one response that shows it."""
        await self.page(f"/dashboard/apps/{workspace_id}/keys")
        r = await self.post(f"/dashboard/apps/{workspace_id}/keys", {"name": name, "mode": mode})
        assert r.status_code == 201, r.text
        return html.unescape(re.search(r'id="new-key">([^<]+)<', r.text).group(1))


def sets_session(response: httpx.Response) -> bool:
    return any(c.startswith(f"{SESSION_COOKIE}=") for c in response.headers.get_list("set-cookie"))


# What a dashboard form can change: compared before and after forms that must change nothing.
TABLES = ("workspaces", "api_keys", "profiles", "redirect_allowlist", "platform_credentials", "posts",
          "post_results")


async def snapshot(stack) -> dict[str, list[tuple]]:
    async with stack.db.session() as s:
        return {t: [tuple(r) for r in (await s.execute(text(f"SELECT * FROM {t} ORDER BY id"))).all()]
                for t in TABLES}


async def failed_post(stack, workspace_id: str, external_user_id: str | None = None) -> tuple[str, str]:
    """A test-mode post whose one result failed, written directly: no worker is needed to have one."""
    account = await connect_oauth(stack, "twitter", "csrf_user", workspace_id=workspace_id)
    async with stack.db.session() as s:
        post, results = await s.run_sync(
            create_post, workspace_id=workspace_id, livemode=False, status="failed", mode="immediate", caption="x",
            title=None, scheduled_at=None, request={}, idempotency_key=None, external_user_id=external_user_id,
            targets=[{"account_id": account, "platform": "twitter", "account_name": "csrf_user",
                      "parts": [{"caption": "x"}], "first_comment": None, "platform_options": {}}])
        results[0].status = "failed"
        await s.commit()
        return post.id, results[0].id


async def logged(stack, **where) -> int:
    async with stack.db.session() as s:
        query = select(func.count()).select_from(OperatorLog)
        for column, value in where.items():
            query = query.where(getattr(OperatorLog, column) == value)
        return (await s.exec(query)).one()


async def wait_logged(stack, expected: int, **where) -> None:
    """Request log rows are written just after each response."""
    for _ in range(100):
        if await logged(stack, **where) >= expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{where}: {await logged(stack, **where)} rows, expected {expected}")
