"""Logging in and out of the dashboard."""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import Response

from api.dashboard.auth import (
    SESSION_COOKIE,
    OperatorDep,
    check_credentials,
    clear_session,
    issue_session,
    login_enabled,
    read_session,
    set_session,
    settings_of,
    throttle_of,
)
from api.dashboard.csrf import CsrfForm, LoginForm, clear_login_nonce, login_token, new_login_nonce, set_login_nonce
from api.dashboard.pages import new_router, see_other, text
from api.dashboard.render import page

HOME = "/dashboard/apps"
# A path inside the dashboard and nothing else: no scheme, host, backslash, `//` or `..` to escape it.
_SAFE_NEXT = re.compile(r"^/dashboard/[A-Za-z0-9_\-/]*(\?[A-Za-z0-9_\-=&%.]*)?$")

router = new_router()


def safe_next(value: str) -> str:
    if _SAFE_NEXT.match(value) and "//" not in value and ".." not in value:
        return value
    return HOME


def _login_page(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    settings = settings_of(request)
    nonce = new_login_nonce()
    response = page(request, "login.html", status=status, error=error, token=login_token(nonce),
                    enabled=login_enabled(settings), next=safe_next(request.query_params.get("next", "")),
                    username=settings.operator_username)
    set_login_nonce(response, settings, nonce)
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login")
async def login_form(request: Request) -> Response:
    if read_session(settings_of(request), request.cookies.get(SESSION_COOKIE)) is not None:
        return see_other(HOME)
    return _login_page(request, status=200 if login_enabled(settings_of(request)) else 503)


@router.post("/login")
async def login(request: Request, form: LoginForm) -> Response:
    settings = settings_of(request)
    if not login_enabled(settings):
        return _login_page(request, status=503)
    throttle = throttle_of(request.app)
    if throttle.blocked(_client(request)):
        return _login_page(request, status=429, error="Too many failed logins from this address. Wait a few "
                                                      "minutes, then try again.")
    if not check_credentials(settings, text(form, "username"), str(form.get("password") or "")):
        throttle.failed(_client(request))
        return _login_page(request, status=401, error="Wrong username or password.")
    throttle.succeeded(_client(request))
    response = see_other(safe_next(text(form, "next")))
    set_session(response, settings, issue_session(settings, settings.operator_username))
    clear_login_nonce(response)
    return response


@router.post("/logout")
async def logout(request: Request, form: CsrfForm) -> Response:
    response = see_other("/dashboard/login")
    clear_session(response, settings_of(request))
    return response


@router.get("")
async def home(operator: OperatorDep) -> Response:
    return see_other(HOME)
