"""Apps (workspaces) and, per app and mode, its profiles with their branding."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import select

from api.dashboard.auth import OperatorDep
from api.dashboard.csrf import CsrfForm
from api.dashboard.pages import first_issue, load_app, mode_of, new_router, owned, see_other, text
from api.dashboard.render import page
from api.deps import SessionDep
from api.routers.profiles import ProfileCreate, ProfileUpdate
from store.models import Profile, Workspace, utcnow
from store.tenancy import create_workspace, profiles_of

BRANDING = ("name", "branding_display_name", "branding_logo_url", "branding_primary_color")

router = new_router()


async def _apps_page(request: Request, session, operator, *, status: int = 200, error: str | None = None,
                     name: str = "") -> Response:
    apps = (await session.exec(select(Workspace).order_by(Workspace.created_at.desc(), Workspace.id))).all()
    return page(request, "apps.html", operator, status=status, apps=apps, error=error, name=name)


@router.get("/apps")
async def apps(request: Request, operator: OperatorDep, session: SessionDep) -> Response:
    return await _apps_page(request, session, operator)


@router.post("/apps")
async def create_app(request: Request, operator: OperatorDep, form: CsrfForm, session: SessionDep) -> Response:
    name = text(form, "name")
    if not 1 <= len(name) <= 200:
        return await _apps_page(request, session, operator, status=422, name=name,
                                error="An app needs a name of 1 to 200 characters.")
    ws = await create_workspace(session, name)
    await session.commit()
    return see_other(f"/dashboard/apps/{ws.id}?done=app_created")


async def _profiles_page(request: Request, session, operator, ws: Workspace, mode: str, *, status: int = 200,
                         error: str | None = None) -> Response:
    profiles = await profiles_of(session, ws.id, mode == "live")
    return page(request, "app.html", operator, status=status, ws=ws, mode=mode, tab="profiles",
                profiles=profiles, error=error)


@router.get("/apps/{workspace_id}")
async def app_overview(workspace_id: str, request: Request, operator: OperatorDep,
                       session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    return await _profiles_page(request, session, operator, ws, mode_of(request.query_params.get("mode"))[0])


def _branding(form) -> dict[str, str | None]:
    # An emptied field clears that part of the branding.
    return {name: (text(form, name) or None) for name in BRANDING}


@router.post("/apps/{workspace_id}/profiles")
async def create_profile(workspace_id: str, request: Request, operator: OperatorDep, form: CsrfForm,
                         session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    mode, livemode = mode_of(form.get("mode"))
    try:
        body = ProfileCreate.model_validate(_branding(form))
    except ValidationError as exc:
        return await _profiles_page(request, session, operator, ws, mode, status=422, error=first_issue(exc))
    session.add(Profile(workspace_id=ws.id, livemode=livemode, **body.model_dump(exclude={"idempotency_key"})))
    await session.commit()
    return see_other(f"/dashboard/apps/{ws.id}?mode={mode}&done=profile_created")


@router.post("/apps/{workspace_id}/profiles/{profile_id}")
async def edit_profile(workspace_id: str, profile_id: str, request: Request, operator: OperatorDep,
                       form: CsrfForm, session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    profile = await owned(session, Profile, profile_id, ws, "profile")
    mode = "live" if profile.livemode else "test"
    try:
        body = ProfileUpdate.model_validate(_branding(form))
    except ValidationError as exc:
        return await _profiles_page(request, session, operator, ws, mode, status=422, error=first_issue(exc))
    for field, value in body.model_dump().items():
        if field != "name" or value:  # a profile keeps its name when the field is left empty
            setattr(profile, field, value)
    profile.updated_at = utcnow()
    session.add(profile)
    await session.commit()
    return see_other(f"/dashboard/apps/{ws.id}?mode={mode}&done=profile_saved")
