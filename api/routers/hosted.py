"""The hosted connect pages and the one fixed OAuth callback per platform.

No token, code or password ever appears in a URL Herald builds, a page it
renders or a log line: the return URL carries the session id, status and
account id only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from activities.connect import CallbackInput, callback_url
from adapters.base import ClientCredentials
from adapters.factory import make_adapter
from adapters.registry import PLATFORMS, adapter_class
from api.connect_service import (
    SessionClosedError,
    StateError,
    consume_state,
    new_state,
    run_update,
    seal,
)
from api.deps import SessionDep, StateDep
from store import crypto
from store.credentials import resolve_client
from store.models import ConnectSession, Profile, Workspace, utcnow
from workflows.connect import AuthorizationError, ConnectSessionWorkflow

log = logging.getLogger("herald.hosted")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
FORM_PURPOSE = "connect-form"
DEFAULT_COLOR = "#2563eb"

router = APIRouter(include_in_schema=False)


def with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params] + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _brand(session, row: ConnectSession) -> dict:
    profile = await session.get(Profile, row.profile_id)
    workspace = await session.get(Workspace, row.workspace_id)
    name = (profile and (profile.branding_display_name or profile.name)) or (workspace.name if workspace else "Herald")
    if profile and profile.name == "Default" and not profile.branding_display_name and workspace:
        name = workspace.name
    return {"name": name, "logo": profile.branding_logo_url if profile else None,
            "color": (profile and profile.branding_primary_color) or DEFAULT_COLOR}


async def _page(request: Request, session, row: ConnectSession | None, template: str, status: int = 200,
                **ctx) -> HTMLResponse:
    brand = await _brand(session, row) if row else {"name": "Herald", "logo": None, "color": DEFAULT_COLOR}
    resp = TEMPLATES.TemplateResponse(request, f"hosted/{template}",
                                      {"brand": brand, "livemode": row.livemode if row else True, **ctx},
                                      status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


async def _message(request, session, row, heading: str, message: str, *, status: int = 200, ok: bool = False,
                   retry: bool = False) -> HTMLResponse:
    return await _page(request, session, row, "message.html", status=status, heading=heading, message=message,
                       ok=ok, retry_url=f"/connect/{row.id}" if retry and row else None,
                       return_url=_return(row, row.status) if row and row.return_url and not retry else None)


def _return(row: ConnectSession, status: str, account_id: str | None = None) -> str:
    params = {"session_id": row.id, "status": status}
    if account_id:
        params["account_id"] = account_id
    return with_params(row.return_url or "", params)


def _closed_message(row: ConnectSession) -> tuple[str, str]:
    return {
        "completed": ("Already connected", "This account was already connected. You can close this window."),
        "expired": ("This link has expired", "Ask the app to start a new connection."),
        "cancelled": ("This connection was cancelled", "Ask the app to start a new connection."),
    }.get(row.status, ("This link can no longer be used", "Ask the app to start a new connection."))


async def _open_session(session, session_id: str) -> ConnectSession | None:
    row = await session.get(ConnectSession, session_id)
    if row is not None and row.status == "pending" and row.expires_at <= utcnow():
        row.status = "expired"  # the workflow's timer marks it for good; never offer an expired link
    return row


@router.get("/connect/{session_id}", response_class=HTMLResponse)
async def connect_page(session_id: str, request: Request, session: SessionDep, state: StateDep,
                       error: str | None = None) -> Response:
    row = await _open_session(session, session_id)
    if row is None:
        return await _message(request, session, None, "Link not found",
                              "This connection link is not valid. Ask the app for a new one.", status=404)
    if row.status != "pending":
        heading, message = _closed_message(row)
        return await _message(request, session, row, heading, message, status=410, ok=row.status == "completed")
    provider = adapter_class(row.platform).provider
    creds = None
    if provider.auth_kind == "oauth2":
        creds = await resolve_client(session, state.settings, workspace_id=row.workspace_id, livemode=row.livemode,
                                     platform=row.platform, allow_quickstart=row.allow_quickstart_creds)
    workspace = await session.get(Workspace, row.workspace_id)
    app_name = workspace.name if creds is None or creds.source == "workspace" else f"{workspace.name} (via Herald)"
    return await _page(request, session, row, "connect.html", session_id=row.id, platform_name=provider.display_name,
                       app_name=app_name, bluesky=provider.auth_kind == "app_password",
                       error=row.last_error, has_return=bool(row.return_url),
                       form_token=crypto.sign(row.id, FORM_PURPOSE))


@router.post("/connect/{session_id}/authorize")
async def start_authorization(session_id: str, request: Request, session: SessionDep, state: StateDep,
                              form_token: str = Form("")) -> Response:
    row = await _open_session(session, session_id)
    if row is None or not crypto.verify(session_id, form_token, FORM_PURPOSE):
        return await _message(request, session, row, "Link not valid", "Start again from the app.", status=400)
    if row.status != "pending":
        heading, message = _closed_message(row)
        return await _message(request, session, row, heading, message, status=410)
    creds = await resolve_client(session, state.settings, workspace_id=row.workspace_id, livemode=row.livemode,
                                 platform=row.platform, allow_quickstart=row.allow_quickstart_creds)
    if creds is None:
        return await _message(request, session, row, "Not available",
                              "This app has not configured this platform yet.", status=409)
    oauth_state, verifier = await new_state(session, row)
    adapter = make_adapter(row.platform, state.http, livemode=row.livemode, sandbox_url=state.settings.sandbox_url,
                           overrides=state.settings.provider_overrides,
                           client=ClientCredentials(creds.client_id, creds.client_secret))
    url = adapter.authorization_url(redirect_uri=callback_url(state.settings, row.platform), state=oauth_state,
                                    code_verifier=verifier)
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


@router.post("/connect/{session_id}/bluesky")
async def bluesky_credentials(session_id: str, request: Request, session: SessionDep, state: StateDep,
                              handle: str = Form("", max_length=253), app_password: str = Form("", max_length=256),
                              form_token: str = Form("")) -> Response:
    row = await _open_session(session, session_id)
    if row is None or row.platform != "bluesky" or not crypto.verify(session_id, form_token, FORM_PURPOSE):
        return await _message(request, session, row, "Link not valid", "Start again from the app.", status=400)
    if row.status != "pending":
        heading, message = _closed_message(row)
        return await _message(request, session, row, heading, message, status=410)
    if not handle.strip() or not app_password:
        return await _page(request, session, row, "connect.html", status=422, session_id=row.id,
                           platform_name="Bluesky", app_name="", bluesky=True, handle=handle,
                           error="Enter your handle and an app password.",
                           form_token=crypto.sign(row.id, FORM_PURPOSE))
    return await _finish(request, session, state, row, CallbackInput(
        session_id=row.id, handle=handle.strip(), sealed_app_password=seal(app_password)))


@router.get("/v1/oauth/callback/{platform}")
async def oauth_callback(platform: str, request: Request, session: SessionDep, state: StateDep,
                         code: str | None = None, error: str | None = None,
                         error_description: str | None = None) -> Response:
    state_param = request.query_params.get("state")
    if platform not in PLATFORMS or not state_param:
        return await _message(request, session, None, "Sign-in link not valid",
                              "The platform sent you back without a valid connect session.", status=400)
    try:
        row = await consume_state(session, state_param, platform)
    except StateError as exc:
        log.info("refused OAuth callback for %s: %s", platform, exc)
        return await _message(request, session, None, "Sign-in link not valid", str(exc), status=400)
    if row.status != "pending" or row.expires_at <= utcnow():
        heading, message = _closed_message(row if row.status != "pending" else _expired(row))
        return await _message(request, session, row, heading, message + " Nothing was changed.", status=410)
    if error or not code:
        reason = "You declined access." if error == "access_denied" else \
            f"{adapter_class(platform).provider.display_name} reported an error ({(error or 'no code')[:64]})."
        try:
            await run_update(state, row.id, ConnectSessionWorkflow.authorization_error,
                             AuthorizationError(error_code=(error or "no_code")[:64], error_message=reason))
        except SessionClosedError:
            pass
        return await _message(request, session, row, "Not connected", reason + " You can try again.", retry=True)
    return await _finish(request, session, state, row, CallbackInput(session_id=row.id, sealed_code=seal(code)))


def _expired(row: ConnectSession) -> ConnectSession:
    row.status = "expired"
    return row


async def _finish(request: Request, session, state, row: ConnectSession, inp: CallbackInput) -> Response:
    try:
        outcome = await run_update(state, row.id, ConnectSessionWorkflow.callback, inp)
    except SessionClosedError as exc:
        await session.refresh(row)
        heading, message = _closed_message(row)
        log.info("callback for closed session %s: %s", row.id, exc)
        return await _message(request, session, row, heading, message + " Nothing was changed.", status=410)
    await session.refresh(row)
    if outcome.status == "completed":
        if row.return_url:
            return RedirectResponse(_return(row, "completed", outcome.account_id), status_code=303)
        return await _message(request, session, row, "Connected",
                              "Your account is connected. You can close this window.", ok=True)
    if row.platform == "bluesky":
        return await _page(request, session, row, "connect.html", status=422, session_id=row.id,
                           platform_name="Bluesky", app_name="", bluesky=True, handle=inp.handle,
                           error=outcome.error_message, form_token=crypto.sign(row.id, FORM_PURPOSE))
    # The platform refused the code (for example one issued to another attempt): a refusal, with a way to retry.
    return await _message(request, session, row, "Not connected", outcome.error_message or "Please try again.",
                          status=400, retry=True)
