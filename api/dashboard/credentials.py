"""Provider credentials per platform and mode: the app's own OAuth app, or the instance's quickstart app.

Client secrets are write-only: a form can replace one, no page shows one (not
even the instance's quickstart secrets, which come from settings).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import select

from activities.connect import callback_url
from adapters.registry import PLATFORMS
from api.dashboard.auth import OperatorDep
from api.dashboard.csrf import CsrfForm
from api.dashboard.pages import NotFoundPage, first_issue, load_app, mode_of, new_router, see_other, text
from api.dashboard.render import page
from api.deps import SessionDep, SettingsDep
from api.routers.platform_credentials import NO_OAUTH, CredentialCreate
from store.credentials import SANDBOX_QUICKSTART, quickstart_client
from store.models import PlatformCredential, Workspace, utcnow
from store.settings import Settings

router = new_router()


def quickstart_kind(settings: Settings, platform: str, livemode: bool) -> str:
    """"instance" (from settings), "sandbox" (the built-in test-mode app) or "none"."""
    quick = quickstart_client(settings, platform, livemode)
    if quick is None:
        return "none"
    return "sandbox" if (quick.client_id, quick.client_secret) == SANDBOX_QUICKSTART else "instance"


async def _own(session, ws: Workspace, livemode: bool, platform: str) -> PlatformCredential | None:
    return (await session.exec(select(PlatformCredential).where(
        PlatformCredential.workspace_id == ws.id, PlatformCredential.livemode == livemode,
        PlatformCredential.platform == platform))).first()


async def _credentials_page(request: Request, session, operator, settings: Settings, ws: Workspace, mode: str, *,
                            status: int = 200, error: str | None = None) -> Response:
    livemode = mode == "live"
    own = {c.platform: c for c in (await session.exec(select(PlatformCredential).where(
        PlatformCredential.workspace_id == ws.id, PlatformCredential.livemode == livemode))).all()}
    rows = [{"platform": platform, "oauth": platform not in NO_OAUTH, "own": own.get(platform),
             "callback_url": callback_url(settings, platform),
             "quickstart": quickstart_kind(settings, platform, livemode)} for platform in PLATFORMS]
    return page(request, "credentials.html", operator, status=status, ws=ws, mode=mode, tab="credentials",
                rows=rows, error=error)


@router.get("/apps/{workspace_id}/credentials")
async def credentials(workspace_id: str, request: Request, operator: OperatorDep, session: SessionDep,
                      settings: SettingsDep) -> Response:
    ws = await load_app(session, workspace_id)
    return await _credentials_page(request, session, operator, settings, ws,
                                   mode_of(request.query_params.get("mode"))[0])


@router.post("/apps/{workspace_id}/credentials/{platform}")
async def set_credentials(workspace_id: str, platform: str, request: Request, operator: OperatorDep,
                          form: CsrfForm, session: SessionDep, settings: SettingsDep) -> Response:
    ws = await load_app(session, workspace_id)
    mode, livemode = mode_of(form.get("mode"))
    if platform not in PLATFORMS or platform in NO_OAUTH:
        raise NotFoundPage("That platform has no OAuth app to configure.")
    try:
        body = CredentialCreate.model_validate({"platform": platform, "client_id": text(form, "client_id"),
                                                "client_secret": str(form.get("client_secret") or "")})
    except ValidationError as exc:
        return await _credentials_page(request, session, operator, settings, ws, mode, status=422,
                                       error=f"{platform}: {first_issue(exc)} (both the client id and the secret "
                                             "are needed)")
    row = await _own(session, ws, livemode, platform) or PlatformCredential(
        workspace_id=ws.id, livemode=livemode, platform=platform, client_id=body.client_id)
    row.client_id, row.client_secret, row.updated_at = body.client_id, body.client_secret, utcnow()
    session.add(row)
    await session.commit()
    return see_other(f"/dashboard/apps/{ws.id}/credentials?mode={mode}&done=credential_saved")


@router.post("/apps/{workspace_id}/credentials/{platform}/delete")
async def delete_credentials(workspace_id: str, platform: str, operator: OperatorDep, form: CsrfForm,
                             session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    mode, livemode = mode_of(form.get("mode"))
    row = await _own(session, ws, livemode, platform)
    if row is None:
        raise NotFoundPage("No credentials for that platform in this mode.")
    await session.delete(row)
    await session.commit()
    return see_other(f"/dashboard/apps/{ws.id}/credentials?mode={mode}&done=credential_deleted")
