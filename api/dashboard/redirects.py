"""The app's redirect allowlist: where a connect session may send the end user back to.

Connect sessions compare redirect URIs exactly (api/dialect_m/lookups.py), so
an entry is stored as typed, once it is a URI a browser can be safely sent to.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.dashboard.auth import OperatorDep
from api.dashboard.csrf import CsrfForm
from api.dashboard.pages import load_app, mode_of, new_router, owned, see_other, text
from api.dashboard.render import page
from api.deps import SessionDep
from store.models import RedirectAllowlistEntry, Workspace

# Plain http only where the traffic never leaves the machine (RFC 8252's loopback exception).
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
DUPLICATE = "That redirect URI is already on the allowlist."

router = new_router()


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be allowlisted, or None."""
    if not uri:
        return "Enter a redirect URI."
    if len(uri) > 2048 or any(c.isspace() or ord(c) < 32 for c in uri):
        return "A redirect URI is at most 2048 characters, without spaces or control characters."
    try:
        parts = urlsplit(uri)
        host, _ = parts.hostname, parts.port
    except ValueError:
        return "That is not a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return "A redirect URI must be an absolute https:// URL."
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        return "A redirect URI must use https:// (plain http:// only for localhost)."
    if parts.username is not None or parts.password is not None:
        return "A redirect URI cannot carry a username or password."
    if "#" in uri:
        return "A redirect URI cannot contain a fragment (#...)."
    return None


async def _redirects_page(request: Request, session, operator, ws: Workspace, *, status: int = 200,
                          error: str | None = None, uri: str = "") -> Response:
    entries = (await session.exec(select(RedirectAllowlistEntry).where(
        RedirectAllowlistEntry.workspace_id == ws.id).order_by(RedirectAllowlistEntry.created_at))).all()
    return page(request, "redirects.html", operator, status=status, ws=ws,
                mode=mode_of(request.query_params.get("mode"))[0], tab="redirects", entries=entries, error=error,
                uri=uri)


@router.get("/apps/{workspace_id}/redirects")
async def redirects(workspace_id: str, request: Request, operator: OperatorDep, session: SessionDep) -> Response:
    return await _redirects_page(request, session, operator, await load_app(session, workspace_id))


@router.post("/apps/{workspace_id}/redirects")
async def add_redirect(workspace_id: str, request: Request, operator: OperatorDep, form: CsrfForm,
                       session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    uri = text(form, "uri")
    problem = redirect_uri_problem(uri)
    if problem is None:
        exists = (await session.exec(select(RedirectAllowlistEntry.id).where(
            RedirectAllowlistEntry.workspace_id == ws.id, RedirectAllowlistEntry.uri == uri))).first()
        problem = DUPLICATE if exists else None
    if problem is None:
        session.add(RedirectAllowlistEntry(workspace_id=ws.id, uri=uri))
        try:
            await session.commit()
        except IntegrityError:  # the same URI added concurrently
            await session.rollback()
            problem = DUPLICATE
    if problem:
        return await _redirects_page(request, session, operator, ws, status=422, error=problem, uri=uri)
    return see_other(f"/dashboard/apps/{ws.id}/redirects?done=redirect_added")


@router.post("/apps/{workspace_id}/redirects/{entry_id}/delete")
async def remove_redirect(workspace_id: str, entry_id: str, operator: OperatorDep, form: CsrfForm,
                          session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    await session.delete(await owned(session, RedirectAllowlistEntry, entry_id, ws, "redirect URI"))
    await session.commit()
    return see_other(f"/dashboard/apps/{ws.id}/redirects?done=redirect_removed")
