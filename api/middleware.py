"""Request ids, rate-limit headers and the operator request log, as one ASGI middleware."""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability import logs, metrics
from store.models import OperatorLog

log = logging.getLogger("herald.requests")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Paths that are not customer API calls and would only flood the operator log.
_UNLOGGED = ("/healthz", "/readyz", "/metrics", "/sandbox", "/docs", "/openapi.json", "/static")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _CLIENT_ID.match(incoming) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}
        log_context = logs.bind_request(scope)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode()))
                for name, value in (state.get("rate_limit_headers") or {}).items():
                    if not any(h[0].lower() == name.lower().encode() for h in headers):
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.observe_request(scope, status_holder["status"], started)
            path = scope.get("path", "")
            if not path.startswith(_UNLOGGED):
                self._log(scope, state, request_id, status_holder["status"], started)
            logs.unbind_request(log_context)

    def _log(self, scope: Scope, state: dict, request_id: str, status: int, started: float) -> None:
        duration_ms = int((time.perf_counter() - started) * 1000)
        principal = state.get("principal")
        # The request id and workspace come from the scope bound to the log context (observability.logs).
        log.info("%s %s %s %dms", scope.get("method"), scope.get("path"), status, duration_ms)
        if principal is None:
            return  # unauthenticated noise has no workspace to show it to
        app_state = scope["app"].state.herald
        # The router leaves the matched path parameters in the scope: they make a call findable by post or account.
        params = scope.get("path_params") or {}
        entry = OperatorLog(
            workspace_id=principal.workspace_id, livemode=principal.livemode, kind="request",
            level="error" if status >= 500 else ("warn" if status >= 400 else "info"),
            request_id=request_id, method=scope.get("method"), path=scope.get("path", "")[:512],
            status_code=status, duration_ms=duration_ms,
            post_id=_id(params.get("post_id")), account_id=_id(params.get("account_id")),
            message=f"{scope.get('method')} {scope.get('path')} -> {status}",
        )
        app_state.write_behind.log(entry)


def _id(value) -> str | None:
    return str(value)[:40] if value else None
