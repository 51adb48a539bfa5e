"""Shared machinery of the sandbox platforms: state, OAuth server, faults, inspection.

The sandbox platforms are in-process fakes that speak each platform's real
contract (paths, bodies, status codes, error bodies). Everything a platform
module needs that is not platform-specific lives here:

- `WORLD`: the in-memory state of every sandbox platform (apps, users,
  authorization codes, tokens, posts, media), guarded by one lock.
- `OAuthServer`: a consent screen and token endpoint parametrised by the
  provider's catalogue entry, with PKCE, single-use codes, expiring access
  tokens and refresh with or without rotation.
- Faults injected on demand, per platform and optionally per account:
  5xx, 429 with Retry-After, latency, token expiry or revocation, content
  rejection, and a connection dropped after the post was accepted.
- Inspection of what was posted, for tests and the tour.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import itertools
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

FaultKind = Literal[
    "http_5xx",  # answer `status` (default 503) with the platform's error body
    "rate_limit",  # 429 with Retry-After / the platform's rate-limit headers
    "latency",  # sleep `latency_ms` before answering normally
    "expire_token",  # the account's access tokens expire now
    "revoke_token",  # the account's tokens (and refresh tokens) are revoked
    "reject_content",  # the platform refuses the content
    "drop_after_accept",  # the post is created, then the connection is cut before the answer
    "stale_listing",  # listings leave out posts made in the last `stale_ms` (eventual consistency)
]


@dataclass
class Fault:
    id: str
    platform: str
    kind: FaultKind
    account: str | None = None  # a platform user id; None = every account
    # Only requests whose path contains this (e.g. "/2/tweets") are affected; None = all API calls.
    path_contains: str | None = None
    method: str | None = None
    times: int | None = 1  # None = until cleared
    probability: float = 1.0
    status: int = 503
    retry_after: float = 1.0
    latency_ms: int = 0
    stale_ms: int = 0
    fired: int = 0

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SandboxUser:
    id: str
    username: str
    display_name: str
    platform: str
    avatar_url: str | None = None
    password: str | None = None  # Bluesky app password (sandbox only)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Grant:
    """An access or refresh token the sandbox issued."""

    token: str
    kind: Literal["access", "refresh"]
    user_id: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float | None
    revoked: bool = False
    # Bluesky-style rotation keeps a replaced refresh token usable for a grace period.
    replaced_at: float | None = None


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    user_id: str
    scopes: tuple[str, ...]
    challenge: str | None
    challenge_method: str | None
    expires_at: float
    used: bool = False


@dataclass
class PlatformState:
    platform: str
    apps: dict[str, str | None] = field(default_factory=dict)  # client_id -> secret (first use fixes it)
    users: dict[str, SandboxUser] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    posts: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Free-form per-platform tables (containers, upload sessions, boards...).
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Requests served, per (account, bucket), for rate-limit headers.
    request_counts: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any]:
        return self.tables.setdefault(name, {})


class SandboxError(Exception):
    """Raised by sandbox helpers; each platform module turns it into its own error body."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.extra = extra


class World:
    """All sandbox state. One per process; tests reset it through the control API."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.platforms: dict[str, PlatformState] = {}
        self.faults: dict[str, Fault] = {}
        self._ids = itertools.count(1_000_001)
        self._rng = secrets.SystemRandom()

    def state(self, platform: str) -> PlatformState:
        with self.lock:
            return self.platforms.setdefault(platform, PlatformState(platform))

    def reset(self, platform: str | None = None) -> None:
        with self.lock:
            if platform:
                self.platforms.pop(platform, None)
                self.faults = {k: f for k, f in self.faults.items() if f.platform != platform}
            else:
                self.platforms.clear()
                self.faults.clear()

    def next_id(self) -> int:
        with self.lock:
            return next(self._ids)

    # --- users ---

    def user_for(self, platform: str, username: str, **extra: Any) -> SandboxUser:
        """The sandbox user with this username, created on first sight with a stable id."""
        st = self.state(platform)
        with self.lock:
            for user in st.users.values():
                if user.username == username:
                    return user
            digest = hashlib.sha256(f"{platform}:{username}".encode()).hexdigest()
            uid = str(int(digest[:15], 16))
            user = SandboxUser(
                id=uid,
                username=username,
                display_name=extra.pop("display_name", None) or username.replace("_", " ").title(),
                platform=platform,
                avatar_url=f"https://sandbox.invalid/{platform}/{uid}.png",
                extra=extra,
            )
            st.users[uid] = user
            return user

    # --- apps and grants ---

    def check_client(self, platform: str, client_id: str | None, client_secret: str | None,
                     *, secret_required: bool) -> None:
        """Any client id works; the first secret seen for it becomes the only valid one."""
        if not client_id:
            raise SandboxError(401, "invalid_client", "client authentication failed: no client id")
        st = self.state(platform)
        with self.lock:
            known = st.apps.get(client_id, ...)
            if known is ...:
                st.apps[client_id] = client_secret
                known = client_secret
        if secret_required and (not client_secret or client_secret != known):
            raise SandboxError(401, "invalid_client", "client authentication failed")

    def issue_grant(self, platform: str, *, kind: Literal["access", "refresh"], user_id: str,
                    client_id: str, scopes: tuple[str, ...], ttl: float | None, prefix: str = "") -> Grant:
        token = prefix + secrets.token_urlsafe(32)
        grant = Grant(token, kind, user_id, client_id, scopes,
                      time.time() + ttl if ttl is not None else None)
        with self.lock:
            self.state(platform).grants[token] = grant
        return grant

    def bearer(self, platform: str, token: str | None, *, kind: str = "access",
               grace: float = 0.0) -> tuple[SandboxUser, Grant]:
        """Validate a token; raises SandboxError('expired'|'invalid'|'revoked')."""
        if not token:
            raise SandboxError(401, "missing", "no access token")
        st = self.state(platform)
        with self.lock:
            grant = st.grants.get(token)
            if grant is None or grant.kind != kind:
                raise SandboxError(401, "invalid", "invalid token")
            if grant.revoked:
                raise SandboxError(401, "revoked", "token revoked")
            if grant.replaced_at is not None and time.time() > grant.replaced_at + grace:
                raise SandboxError(401, "revoked", "refresh token already used")
            if grant.expires_at is not None and time.time() >= grant.expires_at:
                raise SandboxError(401, "expired", "token expired")
            return st.users[grant.user_id], grant

    def expire_account_tokens(self, platform: str, account: str | None) -> int:
        n = 0
        with self.lock:
            for g in self.state(platform).grants.values():
                if g.kind == "access" and (account is None or g.user_id == account):
                    g.expires_at = time.time() - 1
                    n += 1
        return n

    def revoke_account_tokens(self, platform: str, account: str | None) -> int:
        n = 0
        with self.lock:
            for g in self.state(platform).grants.values():
                if account is None or g.user_id == account:
                    g.revoked = True
                    n += 1
        return n

    # --- posts and inspection ---

    def record_post(self, platform: str, user_id: str, **fields: Any) -> dict[str, Any]:
        post = {"platform": platform, "account": user_id, "created_at": time.time(), **fields}
        with self.lock:
            self.state(platform).posts.append(post)
        return post

    def posts(self, platform: str, account: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.state(platform).posts if account is None or p["account"] == account]

    # --- faults ---

    def add_fault(self, **spec: Any) -> Fault:
        fault = Fault(id="flt_" + secrets.token_hex(6), **spec)
        with self.lock:
            self.faults[fault.id] = fault
        return fault

    def take_fault(self, platform: str, account: str | None, path: str, method: str,
                   kinds: tuple[str, ...]) -> Fault | None:
        """The first armed fault of one of `kinds` that matches this request, consumed once."""
        with self.lock:
            for fault in list(self.faults.values()):
                if fault.platform != platform or fault.kind not in kinds:
                    continue
                if fault.account is not None and fault.account != account:
                    continue
                if fault.path_contains and fault.path_contains not in path:
                    continue
                if fault.method and fault.method.upper() != method.upper():
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self.faults[fault.id]
                return fault
        return None


WORLD = World()

# Faults applied before the platform handles a request, in this order.
PRE_FAULTS = ("latency", "expire_token", "revoke_token", "http_5xx", "rate_limit")


async def apply_pre_faults(platform: str, account: str | None, request: Request) -> Fault | None:
    """Run latency and token faults; return a 5xx/429 fault the caller must answer with."""
    path, method = request.url.path, request.method
    fault = WORLD.take_fault(platform, account, path, method, ("latency",))
    if fault:
        await asyncio.sleep(fault.latency_ms / 1000)
    if WORLD.take_fault(platform, account, path, method, ("expire_token",)):
        WORLD.expire_account_tokens(platform, account)
    if WORLD.take_fault(platform, account, path, method, ("revoke_token",)):
        WORLD.revoke_account_tokens(platform, account)
    return WORLD.take_fault(platform, account, path, method, ("http_5xx", "rate_limit"))


def take_content_fault(platform: str, account: str | None, request: Request) -> Fault | None:
    return WORLD.take_fault(platform, account, request.url.path, request.method, ("reject_content",))


def take_drop_fault(platform: str, account: str | None, request: Request) -> Fault | None:
    return WORLD.take_fault(platform, account, request.url.path, request.method, ("drop_after_accept",))


def fresh_hidden(platform: str, account: str | None, request: Request, posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A listing as an eventually consistent platform may serve it: without its newest posts."""
    fault = WORLD.take_fault(platform, account, request.url.path, request.method, ("stale_listing",))
    if fault is None:
        return posts
    horizon = time.time() - fault.stale_ms / 1000
    return [p for p in posts if p["created_at"] <= horizon]


class DroppedConnection(Response):
    """Declares a body it never sends: the server closes the connection mid-response,
    so the client sees the request fail although the platform already acted."""

    def __init__(self) -> None:
        super().__init__(content=b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        })
        await send({"type": "http.response.body", "body": b'{"da', "more_body": False})


def rate_window(platform: str, account: str, bucket: str, *, limit: int, window: float) -> tuple[int, int, int]:
    """Count a request in a sliding window: returns (limit, remaining, reset epoch seconds)."""
    st = WORLD.state(platform)
    now = time.time()
    with WORLD.lock:
        hits = [t for t in st.request_counts.get((account, bucket), []) if t > now - window]
        hits.append(now)
        st.request_counts[(account, bucket)] = hits
    reset = int((hits[0] if hits else now) + window)
    return limit, max(0, limit - len(hits)), reset


# --- OAuth authorization server -------------------------------------------


@dataclass
class OAuthSpec:
    """How one platform's authorization server behaves. Mirrors its catalogue entry."""

    platform: str
    display_name: str
    client_id_param: str = "client_id"
    scope_separator: str = " "
    pkce: Literal["required", "optional", "none"] = "optional"
    token_auth: Literal["client_secret_basic", "client_secret_post", "either"] = "either"
    access_ttl: float = 3600.0
    refresh_ttl: float | None = None  # None: refresh tokens do not expire
    issue_refresh: bool = True
    rotate_refresh: bool = False
    rotation_grace: float = 0.0
    code_ttl: float = 60.0
    brand_color: str = "#1d4ed8"
    token_prefix: str = ""


def _json_error(status: int, error: str, description: str) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _redirect_with(uri: str, params: dict[str, str]) -> RedirectResponse:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query) + list(params.items())
    return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), status_code=303)


class OAuthServer:
    """Consent screen and token endpoint for one sandbox platform."""

    def __init__(self, spec: OAuthSpec):
        self.spec = spec

    def consent_page(self, request: Request, action: str) -> Response:
        """GET on the platform's authorize path: validate, then show the consent screen."""
        q = request.query_params
        spec = self.spec
        client_id = q.get(spec.client_id_param)
        redirect_uri = q.get("redirect_uri")
        if not client_id or not redirect_uri or q.get("response_type") != "code":
            return HTMLResponse(_page(spec, "Invalid request",
                                      "<p>The application sent an incomplete authorization request.</p>"),
                                status_code=400)
        if spec.pkce == "required" and not q.get("code_challenge"):
            return _redirect_with(redirect_uri, {"error": "invalid_request",
                                                 "error_description": "code_challenge required",
                                                 "state": q.get("state", "")})
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in q.items()
        )
        scopes = [s for s in (q.get("scope") or "").split(spec.scope_separator) if s]
        scope_list = "".join(f"<li>{html.escape(s)}</li>" for s in scopes) or "<li>basic profile</li>"
        body = f"""
        <p><b>{html.escape(client_id)}</b> wants to access your {html.escape(spec.display_name)} account.</p>
        <ul class="scopes">{scope_list}</ul>
        <form method="post" action="{html.escape(action)}">
          {hidden}
          <label>Sandbox username <input name="sandbox_username" id="sandbox_username"
                 value="sandbox_user" autocomplete="off"></label>
          <div class="buttons">
            <button type="submit" name="decision" value="approve" id="approve">Authorize app</button>
            <button type="submit" name="decision" value="deny" id="deny" class="secondary">Cancel</button>
          </div>
        </form>"""
        return HTMLResponse(_page(spec, f"Authorize access to {spec.display_name}", body))

    async def decide(self, request: Request) -> Response:
        """POST from the consent screen: redirect back with a code, or with access_denied."""
        form = dict((await request.form()).items())
        spec = self.spec
        redirect_uri = str(form.get("redirect_uri") or "")
        state = str(form.get("state") or "")
        if not redirect_uri:
            return _json_error(400, "invalid_request", "redirect_uri missing")
        if form.get("decision") != "approve":
            return _redirect_with(redirect_uri, {"error": "access_denied",
                                                 "error_description": "The user denied the request",
                                                 "state": state})
        username = str(form.get("sandbox_username") or "sandbox_user").strip()[:64] or "sandbox_user"
        user = WORLD.user_for(spec.platform, username)
        code = secrets.token_urlsafe(24)
        scopes = tuple(s for s in str(form.get("scope") or "").split(spec.scope_separator) if s)
        with WORLD.lock:
            WORLD.state(spec.platform).codes[code] = AuthCode(
                code=code,
                client_id=str(form.get(spec.client_id_param) or ""),
                redirect_uri=redirect_uri,
                user_id=user.id,
                scopes=scopes,
                # A platform without PKCE ignores a challenge, as the real ones do.
                challenge=(form.get("code_challenge") or None) if spec.pkce != "none" else None,
                challenge_method=form.get("code_challenge_method") or ("plain" if form.get("code_challenge") else None),
                expires_at=time.time() + spec.code_ttl,
            )
        return _redirect_with(redirect_uri, {"code": code, "state": state})

    def client_from(self, request: Request, body: dict[str, str]) -> tuple[str | None, str | None]:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            import base64

            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                return cid, secret
            except ValueError:
                return None, None
        return body.get(self.spec.client_id_param), body.get("client_secret")

    async def token(self, request: Request, body: dict[str, str]) -> dict[str, Any]:
        """Token endpoint logic. Returns the JSON body or raises SandboxError (OAuth error)."""
        spec = self.spec
        client_id, client_secret = self.client_from(request, body)
        if spec.token_auth == "client_secret_basic" and not request.headers.get("authorization", "").lower().startswith("basic "):
            raise SandboxError(401, "invalid_client", "client authentication must use HTTP Basic")
        WORLD.check_client(spec.platform, client_id, client_secret, secret_required=spec.pkce != "required" or bool(client_secret))
        grant_type = body.get("grant_type")
        st = WORLD.state(spec.platform)
        if grant_type == "authorization_code":
            with WORLD.lock:
                code = st.codes.get(body.get("code", ""))
                if code is None or code.used:
                    raise SandboxError(400, "invalid_grant", "authorization code is invalid or was already used")
                code.used = True
            if time.time() > code.expires_at:
                raise SandboxError(400, "invalid_grant", "authorization code expired")
            if code.client_id != client_id:
                raise SandboxError(400, "invalid_grant", "code was issued to another client")
            if body.get("redirect_uri") != code.redirect_uri:
                raise SandboxError(400, "invalid_grant", "redirect_uri does not match")
            if code.challenge:
                verifier = body.get("code_verifier") or ""
                expected = create_s256_code_challenge(verifier) if code.challenge_method == "S256" else verifier
                if not verifier or expected != code.challenge:
                    raise SandboxError(400, "invalid_grant", "PKCE verification failed")
            return self._issue(code.user_id, client_id or "", code.scopes)
        if grant_type == "refresh_token":
            try:
                user, grant = WORLD.bearer(spec.platform, body.get("refresh_token"), kind="refresh",
                                           grace=spec.rotation_grace)
            except SandboxError as exc:
                raise SandboxError(400, "invalid_grant", f"refresh token {exc.kind}") from None
            if grant.client_id != client_id:
                raise SandboxError(400, "invalid_grant", "refresh token was issued to another client")
            # A platform that does not rotate omits the refresh token; the old one stays valid.
            out = self._issue(user.id, grant.client_id, grant.scopes, with_refresh=spec.rotate_refresh)
            if spec.rotate_refresh:
                with WORLD.lock:
                    grant.replaced_at = time.time()
            return out
        raise SandboxError(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def _issue(self, user_id: str, client_id: str, scopes: tuple[str, ...], with_refresh: bool = True) -> dict[str, Any]:
        spec = self.spec
        access = WORLD.issue_grant(spec.platform, kind="access", user_id=user_id, client_id=client_id,
                                   scopes=scopes, ttl=spec.access_ttl, prefix=spec.token_prefix)
        out: dict[str, Any] = {
            "access_token": access.token,
            "token_type": "bearer",
            "expires_in": int(spec.access_ttl),
            "scope": spec.scope_separator.join(scopes),
        }
        if spec.issue_refresh and with_refresh:
            rt = WORLD.issue_grant(spec.platform, kind="refresh", user_id=user_id, client_id=client_id,
                                   scopes=scopes, ttl=spec.refresh_ttl, prefix=spec.token_prefix)
            out["refresh_token"] = rt.token
            if spec.refresh_ttl is not None:
                out["refresh_token_expires_in"] = int(spec.refresh_ttl)
        return out

    def revoke(self, token: str | None) -> None:
        with WORLD.lock:
            grant = WORLD.state(self.spec.platform).grants.get(token or "")
            if grant:
                WORLD.revoke_account_tokens(self.spec.platform, grant.user_id)


def _page(spec: OAuthSpec, title: str, body: str) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(title)} · {html.escape(spec.display_name)} sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}}
 .card{{background:#fff;border-radius:12px;box-shadow:0 4px 24px #0002;padding:32px;max-width:420px;width:100%}}
 .brand{{color:{spec.brand_color};font-weight:700;font-size:20px;margin-bottom:8px}}
 .tag{{display:inline-block;background:#fef3c7;color:#92400e;border-radius:6px;padding:2px 8px;font-size:12px}}
 label{{display:block;margin:16px 0;font-size:14px}} input[name=sandbox_username]{{width:100%;padding:8px;box-sizing:border-box}}
 button{{background:{spec.brand_color};color:#fff;border:0;border-radius:8px;padding:10px 16px;font-size:15px;cursor:pointer}}
 button.secondary{{background:#e5e7eb;color:#111}} .buttons{{display:flex;gap:12px}}
</style></head><body><div class="card">
<div class="brand">{html.escape(spec.display_name)}</div><span class="tag">Sandbox · nothing is really posted</span>
<h1 style="font-size:18px">{html.escape(title)}</h1>{body}</div></body></html>"""
