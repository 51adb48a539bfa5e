"""Request ids, rate-limit headers and the operator request log, as one ASGI middleware."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
        self._pending: set[asyncio.Task] = set()

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
            path = scope.get("path", "")
            if not path.startswith(_UNLOGGED):
                self._log(scope, state, request_id, status_holder["status"], started)

    def _log(self, scope: Scope, state: dict, request_id: str, status: int, started: float) -> None:
        duration_ms = int((time.perf_counter() - started) * 1000)
        principal = state.get("principal")
        log.info("%s %s %s %dms", scope.get("method"), scope.get("path"), status, duration_ms,
                 extra={"request_id": request_id,
                        "workspace_id": getattr(principal, "workspace_id", None)})
        if principal is None:
            return  # unauthenticated noise has no workspace to show it to
        app_state = scope["app"].state.herald
        entry = OperatorLog(
            workspace_id=principal.workspace_id, livemode=principal.livemode, kind="request",
            level="error" if status >= 500 else ("warn" if status >= 400 else "info"),
            request_id=request_id, method=scope.get("method"), path=scope.get("path", "")[:512],
            status_code=status, duration_ms=duration_ms,
            message=f"{scope.get('method')} {scope.get('path')} -> {status}",
        )
        task = asyncio.create_task(_write(app_state, entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


async def _write(app_state, entry: OperatorLog) -> None:
    try:
        async with app_state.db.session() as s:
            s.add(entry)
            await s.commit()
    except Exception:  # the log must never break a request
        log.warning("operator log write failed", exc_info=True)
