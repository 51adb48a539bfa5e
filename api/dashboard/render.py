"""Rendering dashboard pages: one Jinja2 environment, the page context and the security headers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from api.dashboard.auth import Operator
from api.dashboard.csrf import token_for
from store.settings import Settings

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))

# Success messages are chosen by code, so a crafted link cannot make the dashboard display arbitrary text.
NOTICES = {
    "app_created": "App created. Issue an API key to start using it.",
    "profile_created": "Profile created.",
    "profile_saved": "Branding saved.",
    "key_revoked": "API key revoked. Requests with it are now refused.",
    "redirect_added": "Redirect URI added to the allowlist.",
    "redirect_removed": "Redirect URI removed.",
    "credential_saved": "Credentials saved. The secret is stored encrypted and is never shown again.",
    "credential_deleted": "Credentials deleted.",
    "retry_started": "Retry started: a new attempt runs for that result.",
}

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


TEMPLATES.env.filters["when"] = _when


def page(request: Request, template: str, operator: Operator | None = None, *, status: int = 200,
         **ctx) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("done", ""))
    context = {"operator": operator, "csrf": token_for(operator) if operator else "", "notice": notice, **ctx}
    return TEMPLATES.TemplateResponse(request, f"dashboard/{template}", context, status_code=status)


def harden(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def link(path: str, **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{path}?{query}" if query else path


def temporal_url(settings: Settings, post_id: str) -> str:
    namespace = quote(settings.temporal_namespace, safe="")
    workflow = quote(f"post/{post_id}", safe="")
    return f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow}"
