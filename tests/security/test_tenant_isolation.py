"""Tenant isolation over every route of both dialects, built from the app's own route table.

One world per database: workspace B ("Bravo") owns one of everything in test mode (a profile, a managed user
who is also a dialect M end user, social accounts connected through the sandbox, a pending connect session in
each dialect, a published post with results in each dialect, uploaded media, a webhook subscription with a
delivery, platform credentials and an API key) and the same again in live mode (accounts and the post are
written without reaching a real platform: live keys never talk to the sandbox). Workspace A ("Alpha") owns a
post with results and a webhook with a delivery of its own, for the cells that mix A's parent with B's child.

Every route under /v1 and /api/v1 with a path parameter is called, for every method, as:
- A's test key on B's test objects, and A's live key on B's live objects;
- B's test key on B's live objects, and B's live key on B's test objects;
- A's test key with A's own parent and B's child (post → result, webhook → delivery).

Each cell must be a 404 or 403, must look exactly like the answer for an id that does not exist (same status,
code and message: "never say which"), and must not contain any of B's ids, captions, handles, names, emails
or URLs. Afterwards B's objects read exactly as before and no sandbox platform received a post.
A route whose parameters the matrix cannot fill fails the test, so a new route cannot escape it.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from adapters.sandbox.core import WORLD
from api.app import create_app
from store.accounts import ConnectedIdentity, upsert_account, upsert_managed_user
from store.models import WebhookDelivery, WebhookEvent, utcnow
from store.settings import Settings
from tests.conftest import TEST_KEY, ready_stack
from tests.dialect_m.support import REDIRECT, allow_redirect, m_client
from tests.security.support import connect_hosted, marker
from tests.support.media import png

PREFIXES = ("/v1/", "/api/v1/")
# Routes under those prefixes that no API key opens, with where they are tested instead.
NOT_KEYED = {
    ("GET", "/v1/oauth/callback/{platform}"): "the OAuth callback: only the signed, single-use state binds it to a "
                                              "session (tests/security/test_oauth_state.py, tests/connect)",
}
# Bodies for the routes that need one to get past request validation to the ownership check.
BODIES = {
    ("PATCH", "/v1/profiles/{profile_id}"): {"name": "renamed by another workspace"},
    ("PATCH", "/v1/webhooks/{webhook_id}"): {"name": "renamed by another workspace"},
    ("PATCH", "/v1/social-posts/{post_id}"): {"caption": "edited by another workspace"},
    ("PATCH", "/v1/posts/{post_id}"): {"caption": "edited by another workspace"},
}
# Path parameters holding an object id (or a name that identifies one) of the workspace that owns it.
OBJECT_PARAMS = {"account_id", "key_id", "profile_id", "session_id", "post_id", "result_id", "media_id",
                 "webhook_id", "delivery_id", "external_user_id", "externalUserId", "platform"}
# Fields that change by themselves (timestamps of use, freshly presigned URLs): left out of the snapshots that
# prove a cell changed nothing.
VOLATILE = {"last_used_at", "upload_url", "download_url", "expires_at", "updated_at", "consecutive_failures"}


def app_routes(app) -> list[tuple[str, APIRoute]]:
    """(full path, route) of every API route of the app, routers included (FastAPI >= 0.16x includes routers
    lazily: `app.routes` then holds the included routers, which `iter_route_contexts` flattens)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        return [(r.path, r) for r in app.routes if isinstance(r, APIRoute)]
    return [(ctx.path, ctx.original_route) for ctx in iter_route_contexts(app.routes)
            if isinstance(ctx.original_route, APIRoute)]


def keyed_routes(app) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every route under /v1 and /api/v1 with a path parameter."""
    out = []
    for path, route in app_routes(app):
        if path.startswith(PREFIXES) and "{" in path:
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                out.append((method, path, route))
    return out


def path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)(?::[^}]*)?}", path)


@dataclass
class Objects:
    """One workspace's objects in one mode: what fills each path parameter, and what must never leak."""

    label: str
    key: str
    livemode: bool
    params: dict[str, str] = field(default_factory=dict)
    by_path: dict[tuple[str, str], str] = field(default_factory=dict)  # (path, param) -> value
    markers: set[str] = field(default_factory=set)
    reads: list[str] = field(default_factory=list)  # GETs whose answers must not change

    def value(self, path: str, param: str) -> str:
        if (path, param) in self.by_path:
            return self.by_path[(path, param)]
        return self.params[param]

    def keep(self, *values: Any) -> None:
        self.markers.update(v for v in values if isinstance(v, str) and len(v) >= 6)


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"{(\w+)(?::[^}]*)?}", lambda m: values[m.group(1)], path)


def unknown_like(param: str, value: str) -> str:
    """An id of the same shape that exists nowhere."""
    if param == "platform":
        return "pinterest"  # no workspace of this world has Pinterest credentials or connections
    prefix, sep, _ = value.rpartition("_")
    return f"{prefix}_{secrets.token_hex(12)}" if sep and re.fullmatch(r"[a-z]+", prefix) else marker("nobody")


@dataclass
class World:
    stack: Any
    alpha: Any
    bravo: Any
    a_test: Objects
    b_test: Objects
    b_live: Objects


async def _delivery(stack, workspace_id: str, livemode: bool, webhook_id: str) -> tuple[str, str]:
    """A logged delivery of one event to the subscription (the outbox loop does not run in this module)."""
    async with stack.db.session() as s:
        event = WebhookEvent(workspace_id=workspace_id, livemode=livemode, type="post.published",
                             data={"post_id": "post_x"}, dispatched_at=utcnow())
        s.add(event)
        await s.flush()
        row = WebhookDelivery(subscription_id=webhook_id, event_id=event.id, attempt=1, status="failed",
                              error="HTTP 500")
        s.add(row)
        await s.commit()
        return event.id, row.id


async def _common(c: httpx.AsyncClient, o: Objects, stack, workspace_id: str, tag: str) -> None:
    """What both modes get over the API: profile, media, webhook (+ a delivery) and an API key."""
    r = await c.post("/v1/profiles", json={"name": marker(f"{tag} profile"),
                                           "branding_display_name": marker(f"{tag} brand")})
    assert r.status_code == 201, r.text
    profile = r.json()["data"]
    o.params["profile_id"] = profile["id"]
    o.keep(profile["id"], profile["name"], profile["branding_display_name"])

    r = await c.post("/v1/media", json={"filename": marker(f"{tag}-file") + ".png", "content_type": "image/png"})
    assert r.status_code == 201, r.text
    media = r.json()["data"]
    assert (await c.put(media["upload_url"], content=png())).status_code == 200
    o.params["media_id"] = media["media_id"]
    o.keep(media["media_id"], media["filename"])

    r = await c.post("/v1/webhooks", json={"url": f"https://{marker(tag)}.example/hook", "events": ["*"],
                                           "name": marker(f"{tag} hook")})
    assert r.status_code == 201, r.text
    hook = r.json()["data"]
    event_id, delivery_id = await _delivery(stack, workspace_id, o.livemode, hook["id"])
    o.params.update(webhook_id=hook["id"], delivery_id=delivery_id, event_id=event_id)
    o.keep(hook["id"], hook["url"], hook["name"], hook["secret"], hook["secret_preview"], event_id, delivery_id)

    r = await c.post("/v1/api-keys", json={"name": marker(f"{tag} key"),
                                           "environment": "live" if o.livemode else "test"})
    assert r.status_code == 201, r.text
    key = r.json()["data"]
    o.params["key_id"] = key["id"]
    o.keep(key["id"], key["name"], key["key"], key["preview"], o.key)
    o.reads += [f"/v1/profiles/{profile['id']}", f"/v1/media/{media['media_id']}", f"/v1/webhooks/{hook['id']}",
                f"/v1/webhooks/{hook['id']}/deliveries", "/v1/api-keys", "/v1/platform-credentials"]


async def populate_test(stack, tenant, tag: str) -> Objects:
    """Test mode: everything through the API and the sandbox platforms."""
    o = Objects(f"{tag} test", tenant.test_key, False)
    user = marker(f"{tag}-user")
    o.params.update(external_user_id=user, externalUserId=user)
    o.keep(user)
    async with stack.client(tenant.test_key) as c, httpx.AsyncClient(timeout=30) as http:
        await _common(c, o, stack, tenant.workspace_id, tag)
        # The workspace's own X app (white-label): the hosted flow below runs on it.
        client_id = marker(f"{tag}-x-app")
        r = await c.post("/v1/platform-credentials", json={"platform": "twitter", "client_id": client_id,
                                                           "client_secret": marker(f"{tag}-x-secret")})
        assert r.status_code == 201, r.text
        o.keep(client_id, r.json()["data"]["id"])
        o.by_path[("/v1/platform-credentials/{platform}", "platform")] = "twitter"

        username = marker(f"{tag}_x").replace("-", "_")
        session, landing = await connect_hosted(c, http, "twitter", external_user_id=user, username=username,
                                                external_user_email=f"{marker(tag)}@example.com")
        assert landing.status_code == 200 and "connected" in landing.text, landing.text
        x = (await c.get(f"/v1/connect/sessions/{session['id']}")).json()["data"]["completed_social_account_id"]
        handle = f"{marker(tag)}.test"
        r = await c.post("/v1/accounts/connect", json={
            "platform": "bluesky", "credentials": {"handle": handle, "app_password": "abcd-efgh-ijkl-mnop"},
            "external_user_id": user})
        assert r.status_code == 201, r.text
        bsky = r.json()["data"]
        o.params["account_id"] = x
        o.keep(x, bsky["id"], username, handle, bsky["external_account_id"], bsky["display_name"],
               session["id"], session["external_user_email"])
        o.by_path[("/api/v1/end-users/{externalUserId}/connections/{platform}", "platform")] = "bluesky"

        r = await c.post("/v1/connect/sessions", json={"platform": "bluesky", "external_user_id": user,
                                                       "return_url": f"https://{marker(tag)}.example/back"})
        assert r.status_code == 201, r.text
        pending = r.json()["data"]
        o.params["session_id"] = pending["id"]
        o.keep(pending["id"], pending["return_url"])

        caption = marker(f"{tag} caption")
        r = await c.post("/v1/social-posts", json={"caption": caption, "account_ids": [x, bsky["id"]]})
        assert r.status_code == 200 and r.json()["data"]["status"] == "published", r.text
        post = r.json()["data"]
        o.params.update(post_id=post["id"], result_id=post["results"][0]["id"])
        o.keep(post["id"], caption, *[v for res in post["results"] for v in (res["id"], res["external_id"],
                                                                               res["url"])])
        o.reads += [f"/v1/accounts/{x}", f"/v1/accounts/{bsky['id']}", f"/v1/connect/sessions/{pending['id']}",
                    f"/v1/social-posts/{post['id']}", f"/v1/users/{user}"]

    await allow_redirect(stack, workspace_id=tenant.workspace_id)
    async with m_client(stack, tenant.test_key) as m:
        r = await m.post("/v1/end-users", json={"externalUserId": user, "displayName": marker(f"{tag} person"),
                                                 "email": f"{marker(tag)}@example.org"})
        assert r.status_code == 200, r.text
        o.keep(r.json()["id"], r.json()["displayName"], r.json()["email"])
        r = await m.post("/v1/connect-sessions", json={"externalUserId": user, "platform": "bluesky",
                                                        "redirectUri": REDIRECT})
        assert r.status_code == 201, r.text
        o.by_path[("/api/v1/connect-sessions/{session_id}", "session_id")] = r.json()["id"]
        o.keep(r.json()["id"])
        content = marker(f"{tag} m content")
        r = await m.post("/v1/posts", json={"externalUserId": user, "content": content, "platforms": ["bluesky"]})
        assert r.status_code == 201, r.text
        o.by_path[("/api/v1/posts/{post_id}", "post_id")] = r.json()["id"]
        o.keep(r.json()["id"], content)
        m_session = o.by_path[("/api/v1/connect-sessions/{session_id}", "session_id")]
        o.reads += [f"/api/v1/end-users/{user}", f"/api/v1/end-users/{user}/connections",
                    f"/api/v1/connect-sessions/{m_session}", f"/api/v1/posts/{r.json()['id']}"]
    return o


async def populate_live(stack, tenant, tag: str) -> Objects:
    """Live mode: over the API where no platform is involved; the account is written the way a completed
    connect writes it (live keys never reach the sandbox, and this machine reaches no real platform)."""
    o = Objects(f"{tag} live", tenant.live_key, True)
    user = marker(f"{tag}-live-user")
    o.params.update(external_user_id=user, externalUserId=user)
    o.keep(user)
    async with stack.client(tenant.live_key) as c:
        await _common(c, o, stack, tenant.workspace_id, f"{tag}-live")
        client_id = marker(f"{tag}-li-app")
        r = await c.post("/v1/platform-credentials", json={"platform": "linkedin", "client_id": client_id,
                                                           "client_secret": marker(f"{tag}-li-secret")})
        assert r.status_code == 201, r.text
        o.keep(client_id, r.json()["data"]["id"])
        o.by_path[("/v1/platform-credentials/{platform}", "platform")] = "linkedin"

        handle = f"{marker(tag)}.live"
        async with stack.db.session() as s:
            managed = await upsert_managed_user(s, workspace_id=tenant.workspace_id, livemode=True,
                                                external_user_id=user, email=f"{marker(tag)}@live.example")
            account, _ = await upsert_account(s, ConnectedIdentity(
                platform="linkedin", external_account_id=marker("urn"), account_name=handle,
                display_name=marker(f"{tag} live name"), avatar_url=None, access_token=marker("live-token"),
                refresh_token=None, token_expires_at=None, refresh_expires_at=None, scopes=None,
                platform_data={"author_urn": "urn:li:person:x"}),
                workspace_id=tenant.workspace_id, livemode=True, profile_id=o.params["profile_id"],
                connection_type="managed", credential_source="workspace", managed_user_id=managed.id)
            await s.commit()
            o.keep(account.id, account.external_account_id, account.display_name, handle, managed.email)
        o.params["account_id"] = account.id
        o.by_path[("/api/v1/end-users/{externalUserId}/connections/{platform}", "platform")] = "linkedin"

        r = await c.post("/v1/connect/sessions", json={"platform": "linkedin", "external_user_id": user})
        assert r.status_code == 201, r.text
        o.params["session_id"] = r.json()["data"]["id"]
        o.keep(r.json()["data"]["id"])

        caption = marker(f"{tag} live caption")
        r = await c.post("/v1/social-posts", json={"caption": caption, "account_ids": [account.id],
                                                    "status": "draft"})
        assert r.status_code == 200, r.text
        post = r.json()["data"]
        assert post["results"], post
        o.params.update(post_id=post["id"], result_id=post["results"][0]["id"])
        o.keep(post["id"], caption, post["results"][0]["id"])
        o.reads += [f"/v1/accounts/{account.id}", f"/v1/connect/sessions/{o.params['session_id']}",
                    f"/v1/social-posts/{post['id']}", f"/v1/users/{user}"]

    async with m_client(stack, tenant.live_key) as m:
        r = await m.post("/v1/end-users", json={"externalUserId": user, "displayName": marker(f"{tag} live person")})
        assert r.status_code == 200, r.text
        o.keep(r.json()["id"], r.json()["displayName"])
        r = await m.post("/v1/connect-sessions", json={"externalUserId": user, "platform": "bluesky",
                                                        "redirectUri": REDIRECT})
        assert r.status_code == 201, r.text
        o.by_path[("/api/v1/connect-sessions/{session_id}", "session_id")] = r.json()["id"]
        o.keep(r.json()["id"])
        o.reads += [f"/api/v1/end-users/{user}", f"/api/v1/end-users/{user}/connections",
                    f"/api/v1/connect-sessions/{r.json()['id']}", f"/api/v1/posts/{o.params['post_id']}"]
    return o


async def populate_alpha(stack, tenant) -> Objects:
    """A's own parents for the mixed cells (a post with results, a webhook with a delivery)."""
    a_test = Objects("alpha test", tenant.test_key, False)
    async with stack.client(tenant.test_key) as c:
        r = await c.post("/v1/accounts/connect", json={
            "platform": "bluesky", "credentials": {"handle": f"{marker('alpha')}.test",
                                                   "app_password": "abcd-efgh-ijkl-mnop"}})
        assert r.status_code == 201, r.text
        r = await c.post("/v1/social-posts", json={"caption": "alpha's own", "account_ids": [r.json()["data"]["id"]]})
        assert r.status_code == 200 and r.json()["data"]["results"], r.text
        a_test.params.update(post_id=r.json()["data"]["id"], result_id=r.json()["data"]["results"][0]["id"])
        r = await c.post("/v1/webhooks", json={"url": "https://alpha.example/hook", "events": ["*"]})
        hook = r.json()["data"]["id"]
        _, delivery = await _delivery(stack, tenant.workspace_id, False, hook)
        a_test.params.update(webhook_id=hook, delivery_id=delivery)
    return a_test


@pytest.fixture(scope="module")
async def world(module_database, temporal_env):
    async with ready_stack(module_database, temporal_env, rate_limit_per_minute=100_000,
                             immediate_publish_wait_seconds=30) as stack:
        bravo = stack.tenant
        alpha = await stack.new_tenant("Alpha")
        b_test = await populate_test(stack, bravo, "bravo")
        b_live = await populate_live(stack, bravo, "bravo")
        a_test = await populate_alpha(stack, alpha)
        yield World(stack, alpha, bravo, a_test, b_test, b_live)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


async def snapshot(stack, o: Objects) -> dict[str, Any]:
    out = {}
    async with stack.client(o.key) as c:
        for path in o.reads:
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text)
            out[path] = _scrub(r.json())
    return out


def sandbox_post_count() -> int:
    with WORLD.lock:
        return sum(len(st.posts) for st in WORLD.platforms.values())


def leaked(response: httpx.Response, markers: set[str], sent: str) -> list[str]:
    """Markers in the answer (body and headers), leaving out what the caller itself sent in the URL."""
    seen = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return sorted(m for m in markers if m in seen and m not in sent)


def error_of(response: httpx.Response) -> tuple[int, str, str, list]:
    try:
        err = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return response.status_code, "", response.text[:200], []
    return response.status_code, err["code"], err["message"], err.get("issues", [])


@dataclass
class Cell:
    name: str
    key: str
    method: str
    path: str
    values: dict[str, str]
    victim: Objects
    victim_params: tuple[str, ...]


def cells(world: World, routes) -> tuple[list[Cell], list[str]]:
    """Every cell of the matrix, and every route the matrix cannot fill."""
    scenarios = [
        ("A test key on B's test objects", world.alpha.test_key, None, world.b_test),
        ("A live key on B's live objects", world.alpha.live_key, None, world.b_live),
        ("B test key on B's live objects", world.bravo.test_key, None, world.b_live),
        ("B live key on B's test objects", world.bravo.live_key, None, world.b_test),
        ("A test key on A's parent and B's child", world.alpha.test_key, world.a_test, world.b_test),
    ]
    out, unfillable = [], []
    for method, path, route in routes:
        if (method, path) in NOT_KEYED:
            continue
        params = path_params(path)
        if route.body_field is not None and (method, path) not in BODIES:
            unfillable.append(f"{method} {path}: needs a request body the matrix does not know")
            continue
        if set(params) - OBJECT_PARAMS:
            unfillable.append(f"{method} {path}: unknown path parameter(s) {sorted(set(params) - OBJECT_PARAMS)}")
            continue
        for name, key, own, victim in scenarios:
            if own is not None and (len(params) < 2 or params[-1] not in ("result_id", "delivery_id")):
                continue  # mixed cells only where a child id hangs under a parent id
            try:
                values = {p: (own.value(path, p) if own is not None and p != params[-1] else victim.value(path, p))
                          for p in params}
            except KeyError as exc:
                unfillable.append(f"{method} {path}: no value for {exc} in {victim.label}")
                break
            victim_params = (params[-1],) if own is not None else tuple(params)
            out.append(Cell(name, key, method, path, values, victim, victim_params))
    return out, unfillable


def test_the_matrix_knows_every_route_with_a_path_parameter():
    """Every route under /v1 and /api/v1 with a path parameter (from the app's own route table) is either
    filled by the matrix or explicitly excluded with the reason and the test that covers it instead; the
    core resources are all there (so an emptied route table cannot pass)."""
    routes = keyed_routes(create_app(Settings(env="test", encryption_keys=TEST_KEY)))
    paths = {p for _, p, _ in routes}
    for expected in ("/v1/accounts/{account_id}", "/v1/api-keys/{key_id}", "/v1/profiles/{profile_id}",
                     "/v1/platform-credentials/{platform}", "/v1/users/{external_user_id}",
                     "/v1/social-posts/{post_id}", "/v1/posts/{post_id}/results/{result_id}/retry",
                     "/v1/media/{media_id}", "/v1/connect/sessions/{session_id}/cancel",
                     "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
                     "/api/v1/end-users/{externalUserId}/connections/{platform}",
                     "/api/v1/connect-sessions/{session_id}", "/api/v1/posts/{post_id}"):
        assert expected in paths, expected
    problems = []
    for method, path, route in routes:
        if (method, path) in NOT_KEYED:
            continue
        unknown = set(path_params(path)) - OBJECT_PARAMS
        if unknown:
            problems.append(f"{method} {path}: unknown path parameter(s) {sorted(unknown)}")
        if route.body_field is not None and (method, path) not in BODIES:
            problems.append(f"{method} {path}: needs a request body the matrix does not know")
    assert problems == [], "routes the isolation matrix cannot fill:\n" + "\n".join(problems)
    assert set(NOT_KEYED) <= {(m, p) for m, p, _ in routes}, "an exclusion names a route that is gone"


async def test_every_cell_is_404_or_403_like_an_unknown_id_and_leaks_nothing(world):
    """The matrix over the live app's route table: see the module docstring."""
    stack = world.stack
    routes = keyed_routes(create_app(stack.settings))
    matrix, unfillable = cells(world, routes)
    assert unfillable == [], "routes the isolation matrix cannot fill:\n" + "\n".join(unfillable)
    assert len(matrix) >= 4 * 30, len(matrix)
    before = {o.label: await snapshot(stack, o) for o in (world.b_test, world.b_live)}
    posts_before = sandbox_post_count()

    failures = []
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        for cell in matrix:
            c = clients.get(cell.key) or clients.setdefault(cell.key, stack.client(cell.key))
            body = BODIES.get((cell.method, cell.path))
            url = fill(cell.path, cell.values)
            r = await c.request(cell.method, url, json=body)
            where = f"{cell.method} {url} [{cell.name}]"
            if r.status_code not in (403, 404):
                failures.append(f"{where}: {r.status_code} {r.text[:200]}")
                continue
            if found := leaked(r, cell.victim.markers, url):
                failures.append(f"{where}: leaks {found}")
            ghost = dict(cell.values)
            for p in cell.victim_params:
                ghost[p] = unknown_like(p, cell.values[p])
            ghost_url = fill(cell.path, ghost)
            g = await c.request(cell.method, ghost_url, json=body)
            expected, got = json.dumps(error_of(g)), json.dumps(error_of(r))
            for p in cell.victim_params:
                expected = expected.replace(ghost[p], cell.values[p])
            if got != expected:
                failures.append(f"{where}: {got} differs from an unknown id's {expected}")
    finally:
        for c in clients.values():
            await c.aclose()
    assert failures == [], f"{len(failures)} of {len(matrix)} cells failed:\n" + "\n".join(failures)

    after = {o.label: await snapshot(stack, o) for o in (world.b_test, world.b_live)}
    assert after == before, "B's objects changed"
    assert sandbox_post_count() == posts_before, "a cell made a sandbox platform post"


def list_routes(app) -> list[str]:
    """Every GET route under /v1 and /api/v1 without a path parameter (the lists, and /v1/workspace)."""
    return sorted({path for path, route in app_routes(app)
                   if path.startswith(PREFIXES) and "{" not in path and "GET" in route.methods})


def _own_requests_dropped(path: str, body: Any) -> Any:
    """The operator log shows the caller its own request lines (path, method, ids from its own URL): those echo
    what the caller sent, so they are left out of the leak check; pipeline entries stay in."""
    if path == "/v1/logs" and isinstance(body, dict):
        return {**body, "data": [
            {k: v for k, v in e.items() if k not in ("path", "message", "post_id", "account_id")}
            if e.get("kind") == "request" else e for e in body.get("data", [])]}
    return body


async def test_lists_never_show_another_workspaces_or_modes_objects(world):
    """Every list of both dialects (taken from the route table), unfiltered and filtered by B's own ids and
    names, answers 200 without any of B's objects: for A's and a third workspace's test and live keys, and
    for B's keys of the other mode."""
    stack = world.stack
    lists = list_routes(create_app(stack.settings))
    for expected in ("/v1/accounts", "/v1/api-keys", "/v1/profiles", "/v1/platform-credentials", "/v1/users",
                     "/v1/social-posts", "/v1/posts", "/v1/media", "/v1/webhooks", "/api/v1/posts"):
        assert expected in lists, expected
    charlie = await stack.new_tenant("Charlie")
    both = world.b_test.markers | world.b_live.markers
    scenarios = [("A test key", world.alpha.test_key, world.b_test, both),
                 ("A live key", world.alpha.live_key, world.b_live, both),
                 ("C test key", charlie.test_key, world.b_test, both),
                 ("C live key", charlie.live_key, world.b_live, both),
                 ("B test key", world.bravo.test_key, world.b_live, world.b_live.markers),
                 ("B live key", world.bravo.live_key, world.b_test, world.b_test.markers)]
    failures = []
    for name, key, victim, markers in scenarios:
        p = victim.params
        # Filters naming one of the victim's objects: the answer must be empty.
        filtered = [
            f"/v1/accounts?external_user_id={p['external_user_id']}", f"/v1/accounts?profile_id={p['profile_id']}",
            f"/api/v1/posts?externalUserId={p['externalUserId']}", f"/v1/logs?post_id={p['post_id']}",
            f"/v1/logs?account_id={p['account_id']}",
        ]
        generic = ["/v1/social-posts?platform=bluesky", "/v1/posts?status=published", "/v1/media?status=uploaded",
                   "/api/v1/posts?platform=bluesky", "/v1/accounts?status=active"]
        async with stack.client(key) as c:
            for url in lists + filtered + generic:
                r = await c.get(url)
                if r.status_code == 404 and url.startswith("/v1/logs") and "/v1/logs" not in lists:
                    continue  # the operator log API is not mounted in this build
                if r.status_code != 200:
                    failures.append(f"GET {url} [{name}]: {r.status_code} {r.text[:200]}")
                    continue
                body = json.dumps(_own_requests_dropped(url.split("?")[0], r.json()))
                found = sorted(m for m in markers if m in body and m not in url)
                if found:
                    failures.append(f"GET {url} [{name}]: shows {found}")
                if url in filtered:
                    data = r.json()["data"] if isinstance(r.json(), dict) else r.json()
                    if url.startswith("/v1/logs"):
                        data = [e for e in data if e.get("kind") != "request"]
                    if data:
                        failures.append(f"GET {url} [{name}]: filter by B's value found {data}")
    assert failures == [], "\n".join(failures)


async def test_another_workspaces_ids_in_request_bodies_are_unknown(world):
    """B's ids (or B's other mode's ids) named in a request body (targets and media of a post, the profile of
    a new session or account, the end user of a dialect M post or session) are answered exactly like ids that
    do not exist, create nothing, and post nothing; upserting an end user with B's external id in another
    workspace makes that workspace its own user and shows nothing of B's."""
    stack = world.stack
    b, bl, a = world.b_test.params, world.b_live.params, world.a_test.params
    await allow_redirect(stack, workspace_id=world.alpha.workspace_id)
    async with stack.client(world.alpha.test_key) as c:
        own_account = (await c.get(f"/v1/social-posts/{a['post_id']}")).json()["data"]["results"][0][
            "social_account_id"]
        r = await c.post("/v1/social-posts", json={"caption": "draft", "account_ids": [own_account],
                                                    "status": "draft"})
        assert r.status_code == 200, r.text
        a_draft = r.json()["data"]["id"]
    before = {o.label: await snapshot(stack, o) for o in (world.b_test, world.b_live)}
    posts_before = sandbox_post_count()

    # (key, method, path, body, the victim's value in it, the victim's objects, expected status)
    cases = []
    for key, victim, v in ((world.alpha.test_key, world.b_test, b), (world.bravo.live_key, world.b_test, b),
                           (world.bravo.test_key, world.b_live, bl)):
        live = key == world.bravo.live_key
        acct, media, profile, user = v["account_id"], v["media_id"], v["profile_id"], v["external_user_id"]
        cases += [
            (key, "POST", "/v1/social-posts", {"caption": "x", "account_ids": [acct]}, acct, victim, 404),
            (key, "POST", "/v1/posts", {"caption": "x", "account_ids": [acct]}, acct, victim, 404),
            (key, "POST", "/v1/social-posts", {"platform_posts": [{"account_id": acct, "caption": "x"}]}, acct,
             victim, 404),
            (key, "POST", "/v1/social-posts/validate", {"caption": "x", "account_ids": [acct]}, acct, victim, 404),
            (key, "POST", "/v1/connect/sessions", {"platform": "bluesky", "external_user_id": "someone",
                                                   "profile_id": profile}, profile, victim, 404),
            # (A live key would verify the app password with the real Bluesky first: not from this machine.)
            *([] if live else [(key, "POST", "/v1/accounts/connect", {"platform": "bluesky", "profile_id": profile,
                                                                      "credentials": {
                "handle": f"{marker('probe')}.test", "app_password": "abcd-efgh-ijkl-mnop"}}, profile, victim, 404)]),
            (key, "POST", "/api/v1/posts", {"externalUserId": user, "content": "x", "platforms": ["bluesky"]}, user,
             victim, 404),
            (key, "POST", "/api/v1/posts/scheduled", {"externalUserId": user, "content": "x",
                                                      "platforms": ["bluesky"],
                                                      "scheduleAt": "2099-01-01T00:00:00Z"}, user, victim, 404),
        ]
    cases += [
        (world.alpha.test_key, "POST", "/v1/social-posts", {"caption": "x", "account_ids": [own_account],
                                                            "media_ids": [b["media_id"]]}, b["media_id"],
         world.b_test, 422),
        (world.alpha.test_key, "PATCH", f"/v1/social-posts/{a_draft}", {"account_ids": [b["account_id"]]},
         b["account_id"], world.b_test, 404),
        (world.alpha.test_key, "POST", "/api/v1/connect-sessions", {"externalUserId": b["externalUserId"],
                                                                    "platform": "bluesky", "redirectUri": REDIRECT},
         b["externalUserId"], world.b_test, 404),
    ]
    failures = []
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        for key, method, path, body, value, victim, status in cases:
            c = clients.get(key) or clients.setdefault(key, stack.client(key))
            ghost = unknown_like("id", value)
            r = await c.request(method, path, json=body)
            g = await c.request(method, path, json=json.loads(json.dumps(body).replace(value, ghost)))
            where = f"{method} {path} naming {value} [{victim.label} as {key[:10]}]"
            if r.status_code != status:
                failures.append(f"{where}: {r.status_code} {r.text[:200]}")
            expected = json.dumps(error_of(g)).replace(ghost, value)
            if json.dumps(error_of(r)) != expected:
                failures.append(f"{where}: {error_of(r)} differs from an unknown id's {expected}")
            if found := leaked(r, victim.markers, json.dumps(body)):
                failures.append(f"{where}: leaks {found}")
        async with stack.client(world.alpha.test_key) as c:
            r = await c.post("/v1/social-posts/bulk",
                             json={"posts": [{"caption": "x", "account_ids": [b["account_id"]]}]})
            assert r.status_code == 200 and r.json()["data"][0]["status"] == 404, r.text
            assert not leaked(r, world.b_test.markers, b["account_id"])
        # An end user upserted with B's external id belongs to the caller, and shows nothing of B's user.
        delta = await stack.new_tenant("Delta")
        async with m_client(stack, delta.test_key) as m:
            r = await m.post("/v1/end-users", json={"externalUserId": b["externalUserId"]})
            assert r.status_code == 200, r.text
            assert r.json()["displayName"] is None and r.json()["email"] is None, r.json()
            assert not leaked(r, world.b_test.markers, b["externalUserId"])
            r = await m.get(f"/v1/end-users/{b['externalUserId']}/connections")
            assert r.status_code == 200 and r.json() == [], r.text
    finally:
        for c in clients.values():
            await c.aclose()
    assert failures == [], "\n".join(failures)
    after = {o.label: await snapshot(stack, o) for o in (world.b_test, world.b_live)}
    assert after == before, "B's objects changed"
    assert sandbox_post_count() == posts_before, "a request made a sandbox platform post"
