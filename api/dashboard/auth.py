"""Operator login: a constant-time credential check, a throttle on failures and a signed, expiring cookie.

The cookie holds the username, an expiry and a random session id, signed with a
key derived from the instance key and the operator password: changing the
password ends every session. There is no server-side session table.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response

from store.crypto import constant_time_equal, sign, token, verify
from store.settings import Settings

SESSION_COOKIE = "herald_dashboard"
SESSION_TTL_SECONDS = 8 * 3600
COOKIE_PATH = "/dashboard"
MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 300


class LoginRequired(Exception):
    """No valid operator session: a page redirects to the login form, a form post is refused."""


@dataclass(frozen=True)
class Operator:
    username: str
    session_id: str  # random per login; the CSRF token is derived from it
    expires_at: int


def settings_of(request: Request) -> Settings:
    return request.app.state.herald.settings


def login_enabled(settings: Settings) -> bool:
    """Without a configured password nobody gets in: there is no default password to guess."""
    return settings.operator_password_value() is not None


def _purpose(settings: Settings) -> str:
    password = settings.operator_password_value() or ""
    return "dashboard-session:" + hashlib.sha256(password.encode()).hexdigest()[:16]


def check_credentials(settings: Settings, username: str, password: str) -> bool:
    expected = settings.operator_password_value()
    if not expected:
        return False
    # Both comparisons always run, so the timing says nothing about which one failed.
    user_ok = constant_time_equal(username, settings.operator_username)
    password_ok = constant_time_equal(password, expected)
    return user_ok and password_ok


class LoginThrottle:
    """Failed logins per client address over a sliding window.

    Kept in the process: with several API replicas each counts on its own, which
    still bounds guessing to a few attempts per minute per replica. Behind a
    reverse proxy every client shares the proxy's address and so one budget.
    """

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW_SECONDS):
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        stamps = self._failures.get(client, deque())
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            self._failures.pop(client, None)
        return stamps

    def blocked(self, client: str) -> bool:
        return len(self._recent(client, time.monotonic())) >= self.limit

    def failed(self, client: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 10_000:  # a flood of addresses must not grow memory without bound
            for other in list(self._failures):
                self._recent(other, now)
        stamps = self._recent(client, now)
        stamps.append(now)
        self._failures[client] = stamps

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def throttle_of(app: FastAPI) -> LoginThrottle:
    throttle = getattr(app.state, "dashboard_login_throttle", None)
    if throttle is None:
        throttle = app.state.dashboard_login_throttle = LoginThrottle()
    return throttle


def issue_session(settings: Settings, username: str) -> str:
    payload = json.dumps({"u": username, "s": token(18), "e": int(time.time()) + SESSION_TTL_SECONDS},
                         separators=(",", ":"))
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{encoded}.{sign(encoded, _purpose(settings))}"


def read_session(settings: Settings, cookie: str | None) -> Operator | None:
    if not cookie or cookie.count(".") != 1 or len(cookie) > 512 or not login_enabled(settings):
        return None
    encoded, signature = cookie.split(".")
    if not verify(encoded, signature, _purpose(settings)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        operator = Operator(username=str(data["u"]), session_id=str(data["s"]), expires_at=int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    if operator.expires_at <= time.time() or operator.username != settings.operator_username:
        return None
    return operator


def secure_cookies(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://")


def set_session(response: Response, settings: Settings, value: str) -> None:
    response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_TTL_SECONDS, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=secure_cookies(settings))


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax",
                           secure=secure_cookies(settings))


async def current_operator(request: Request) -> Operator:
    operator = read_session(settings_of(request), request.cookies.get(SESSION_COOKIE))
    if operator is None:
        raise LoginRequired
    return operator


OperatorDep = Annotated[Operator, Depends(current_operator)]
