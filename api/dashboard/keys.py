"""API keys of an app: issue (the key is shown on that one response), list by preview, revoke."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import select

from api.dashboard.auth import OperatorDep
from api.dashboard.csrf import CsrfForm
from api.dashboard.pages import load_app, mode_of, new_router, owned, see_other, text
from api.dashboard.render import page
from api.deps import SessionDep, SettingsDep
from store.models import ApiKey, Workspace, utcnow
from store.tenancy import issue_key, revoke_key

MAX_KEY_DAYS = 3650

router = new_router()


async def _keys_page(request: Request, session, operator, ws: Workspace, *, status: int = 200,
                     error: str | None = None, issued: str | None = None, issued_row: ApiKey | None = None):
    keys = (await session.exec(select(ApiKey).where(ApiKey.workspace_id == ws.id)
                               .order_by(ApiKey.created_at.desc(), ApiKey.id))).all()
    return page(request, "keys.html", operator, status=status, ws=ws, mode=mode_of(request.query_params.get("mode"))[0],
                tab="keys", keys=keys, error=error, issued=issued, issued_row=issued_row, now=utcnow())


@router.get("/apps/{workspace_id}/keys")
async def keys(workspace_id: str, request: Request, operator: OperatorDep, session: SessionDep) -> Response:
    return await _keys_page(request, session, operator, await load_app(session, workspace_id))


@router.post("/apps/{workspace_id}/keys")
async def issue(workspace_id: str, request: Request, operator: OperatorDep, form: CsrfForm, session: SessionDep,
                settings: SettingsDep) -> Response:
    ws = await load_app(session, workspace_id)
    name, days = text(form, "name"), text(form, "expires_in_days")
    if len(name) > 200:
        return await _keys_page(request, session, operator, ws, status=422, error="The name is too long.")
    if days and not (days.isdigit() and 1 <= int(days) <= MAX_KEY_DAYS):
        return await _keys_page(request, session, operator, ws, status=422,
                                error=f"Expiry must be a whole number of days from 1 to {MAX_KEY_DAYS}, or empty.")
    if form.get("mode") not in ("test", "live"):
        return await _keys_page(request, session, operator, ws, status=422, error="Choose test or live mode.")
    row, plaintext = await issue_key(session, ws.id, livemode=form.get("mode") == "live",
                                     prefix=settings.api_key_prefix, name=name,
                                     expires_at=utcnow() + timedelta(days=int(days)) if days else None)
    await session.commit()
    # Rendered rather than redirected: only a hash is stored, so this response is the one place the key exists.
    return await _keys_page(request, session, operator, ws, status=201, issued=plaintext, issued_row=row)


@router.post("/apps/{workspace_id}/keys/{key_id}/revoke")
async def revoke(workspace_id: str, key_id: str, operator: OperatorDep, form: CsrfForm,
                 session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    await revoke_key(session, await owned(session, ApiKey, key_id, ws, "API key"))
    await session.commit()
    return see_other(f"/dashboard/apps/{ws.id}/keys?done=key_revoked")
