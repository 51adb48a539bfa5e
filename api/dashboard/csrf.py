"""CSRF tokens: one per operator session in every form, checked on every POST before anything runs.

The login form has no session yet, so it uses a double-submit pair instead: a
random nonce in an HTTP-only cookie and a token signed from it in the form.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from api.dashboard.auth import COOKIE_PATH, Operator, OperatorDep, secure_cookies
from store.crypto import constant_time_equal, sign, token
from store.settings import Settings

FIELD = "csrf_token"
LOGIN_COOKIE = "herald_dashboard_login"
SESSION_PURPOSE = "dashboard-csrf"
LOGIN_PURPOSE = "dashboard-login-csrf"


class CsrfRejected(Exception):
    """A form post without this session's token: refused with 403 and nothing changes."""


def token_for(operator: Operator) -> str:
    return sign(operator.session_id, SESSION_PURPOSE)


def _matches(submitted: object, expected: str) -> bool:
    return isinstance(submitted, str) and constant_time_equal(submitted, expected)


async def verified_form(request: Request, operator: OperatorDep) -> FormData:
    form = await request.form()
    if not _matches(form.get(FIELD), token_for(operator)):
        raise CsrfRejected
    return form


CsrfForm = Annotated[FormData, Depends(verified_form)]


def new_login_nonce() -> str:
    return token(18)


def login_token(nonce: str) -> str:
    return sign(nonce, LOGIN_PURPOSE)


def set_login_nonce(response, settings: Settings, nonce: str) -> None:
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=secure_cookies(settings))


def clear_login_nonce(response) -> None:
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


async def verified_login_form(request: Request) -> FormData:
    form = await request.form()
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or len(nonce) > 64 or not _matches(form.get(FIELD), login_token(nonce)):
        raise CsrfRejected
    return form


LoginForm = Annotated[FormData, Depends(verified_login_form)]
