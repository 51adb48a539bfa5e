"""Structured logs: one JSON object per line (or plain text), carrying the ids of the context they come from.

The ids are attached by one filter on the handler, read from context variables, so no log call has to pass
them: in the API the request middleware binds the ASGI scope (request id, the authenticated principal's
workspace, the `post_id` path parameter); in the worker the Temporal activity context gives the workflow id,
and a `post/<id>` workflow id gives the post id. Logger-level filters (adapters/oauth.py redacts credentials
in httpx's URLs) run before the handler, so the formatter only ever sees redacted messages; the formatter
masks bearer tokens and credential-looking pairs once more, in case a message carries one anyway.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

# What a line may carry besides time, level, logger and message. Anything else passed as `extra` stays out:
# an unknown extra could hold a secret.
CONTEXT_KEYS = ("request_id", "workspace_id", "post_id", "workflow_id", "run_id", "workflow_type", "activity",
                "attempt", "trace_id", "span_id")

_scope: ContextVar[dict[str, Any] | None] = ContextVar("herald_log_scope", default=None)

# Values after credential-like keys (`access_token=`, `"client_secret": "`, `code=` of an OAuth callback),
# bearer tokens, and API keys (`<prefix>_live_...`).
_SECRET = re.compile(
    r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(\b(?:[\w.-]*(?:token|secret|passw(?:or)?d|api_?key|signature)[\w.-]*|code|sig)[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"'&,;}]+"
    r"|\b[a-z]{2,12}_(?:live|test)_[A-Za-z0-9_-]{20,}")


def redact(text: str) -> str:
    def mask(m: re.Match) -> str:
        prefix = m.group(1) or m.group(2)
        return f"{prefix}[REDACTED]" if prefix else "[REDACTED]"

    return _SECRET.sub(mask, text)


def bind_request(scope: dict[str, Any]) -> Token:
    """Make the request's ids visible to every log line written while it is handled."""
    return _scope.set(scope)


def unbind_request(token: Token) -> None:
    _scope.reset(token)


def _put(record: logging.LogRecord, key: str, value: Any) -> None:
    # An explicit `extra` of the log call wins over the context.
    if value is not None and getattr(record, key, None) is None:
        setattr(record, key, value)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        scope = _scope.get()
        if scope is not None:
            state = scope.get("state") or {}
            _put(record, "request_id", state.get("request_id"))
            _put(record, "workspace_id", getattr(state.get("principal"), "workspace_id", None))
            _put(record, "post_id", (scope.get("path_params") or {}).get("post_id"))
        if activity.in_activity():
            info = activity.info()
            _put(record, "workflow_id", info.workflow_id)
            _put(record, "run_id", info.workflow_run_id)
            _put(record, "workflow_type", info.workflow_type)
            _put(record, "activity", info.activity_type)
            _put(record, "attempt", info.attempt)
        else:
            details = getattr(record, "temporal_workflow", None)  # set by temporalio's workflow.logger
            if isinstance(details, dict):
                _put(record, "workflow_id", details.get("workflow_id"))
                _put(record, "run_id", details.get("run_id"))
                _put(record, "workflow_type", details.get("workflow_type"))
        workflow_id = getattr(record, "workflow_id", None)
        if isinstance(workflow_id, str) and workflow_id.startswith("post/"):
            _put(record, "post_id", workflow_id.removeprefix("post/"))
        # Only when tracing is on has anything imported OpenTelemetry; never import it for a log line.
        trace = sys.modules.get("opentelemetry.trace")
        if trace is not None:
            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid:
                _put(record, "trace_id", format(ctx.trace_id, "032x"))
                _put(record, "span_id", format(ctx.span_id, "016x"))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in ("request_id", "workflow_id")
                       if getattr(record, k, None) is not None)
        return f"{line} [{ids}]" if ids else line

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (as logging.lastResort does), so a replaced stderr (a
    test runner's capture) is never written after it was closed."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def make_handler(*, json_lines: bool, stream=None) -> logging.Handler:
    """A handler that writes Herald's lines (to stderr unless given a stream), ids attached."""
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    return handler


def configure(settings) -> logging.Handler:
    """Install Herald's handler on the root logger, replacing one an earlier call installed; returns it."""
    json_lines = settings.effective_log_format == "json"
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "herald", False)]:
        root.removeHandler(old)
    handler = make_handler(json_lines=json_lines)
    handler.herald = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    if json_lines:
        from temporalio import workflow

        # The ids are fields of the line: the SDK's "({...})" suffix on each message would repeat them.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
        # Every line through this handler: uvicorn's own loggers included, Python warnings too.
        logging.getLogger("uvicorn").handlers = []
        logging.getLogger("uvicorn").propagate = True
        # herald.requests logs each API call with its request id and no query string; uvicorn's access line
        # would log the query string (OAuth callbacks carry codes in it) and no id.
        logging.getLogger("uvicorn.access").handlers = []
        logging.getLogger("uvicorn.access").propagate = False
        logging.captureWarnings(True)
    return handler
