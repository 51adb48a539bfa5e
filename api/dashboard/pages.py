"""What every dashboard route shares: refusals turned into pages, form helpers and app lookup.

Every form posts back with this session's CSRF token (checked before the handler
runs); a success redirects (post/redirect/get), bad input re-renders the page
with a message and a 4xx, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from api import pagination
from api.dashboard.auth import SESSION_COOKIE, LoginRequired, Operator, read_session, settings_of
from api.dashboard.csrf import CsrfRejected
from api.dashboard.render import harden, link, page
from api.errors import ApiError
from store.models import Workspace


def _operator(request: Request) -> Operator | None:
    return read_session(settings_of(request), request.cookies.get(SESSION_COOKIE))


class DashboardRoute(APIRoute):
    """Turns the dashboard's refusals into pages and puts the security headers on every response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                if request.method == "GET":
                    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response = see_other(link("/dashboard/login", next=here))
                else:
                    # Not a redirect: the operator must learn that the action they submitted did not happen.
                    response = page(request, "message.html", status=401, heading="Your session has expired",
                                    message="Nothing was changed. Log in again and repeat the action.")
            except CsrfRejected:
                response = page(request, "message.html", _operator(request), status=403, heading="Form rejected",
                                message="The form's security token is missing or invalid, so nothing was changed. "
                                        "Reload the page and try again.")
            except ApiError as exc:
                response = page(request, "message.html", _operator(request), status=exc.status,
                                heading="Not possible", message=exc.message)
            return harden(response)

        return guarded


def new_router() -> APIRouter:
    return APIRouter(prefix="/dashboard", include_in_schema=False, route_class=DashboardRoute)


class NotFoundPage(ApiError):
    """An unknown (or another app's) id in a dashboard URL."""

    status = 404


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def mode_of(value: Any) -> tuple[str, bool]:
    """("test", False) unless "live" was asked for: test mode is the safe default."""
    return ("live", True) if value == "live" else ("test", False)


def text(form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def first_issue(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    return f"{field}: {err['msg']}" if field else err["msg"]


async def load_app(session, workspace_id: str) -> Workspace:
    ws = await session.get(Workspace, workspace_id)
    if ws is None:
        raise NotFoundPage("No such app.")
    return ws


async def owned(session, model, row_id: str, ws: Workspace, what: str):
    """A row of `model` that belongs to `ws`; another app's id is simply not found."""
    row = await session.get(model, row_id)
    if row is None or row.workspace_id != ws.id:
        raise NotFoundPage(f"No such {what} in this app.")
    return row


def page_of(request: Request, default: int = 25) -> pagination.Page:
    """Cursor paging from the query string, with the API's own cursor format and limits."""
    try:
        limit = int(request.query_params.get("limit") or default)
    except ValueError:
        limit = default
    cursor = request.query_params.get("cursor") or None
    return pagination.page_params(limit=max(1, min(limit, 100)), cursor=cursor[:512] if cursor else None)


def query_filters(request: Request, *names: str, max_length: int = 64) -> dict[str, str | None]:
    return {name: (request.query_params.get(name) or "").strip()[:max_length] or None for name in names}
