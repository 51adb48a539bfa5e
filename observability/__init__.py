"""Metrics, structured logs and traces for the API and the worker (README "Observability").

- `metrics`: the Prometheus registry of this process and Herald's own counters.
- `logs`: one JSON object per line, with the request, workspace, post and workflow ids of the context.
- `tracing`: OpenTelemetry, imported only when HERALD_TRACING is not `off`.
- `temporal`: what a Temporal client and worker need from the three (runtime, interceptors).

This module imports neither OpenTelemetry nor Temporal, so the entry points can call it unconditionally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

    from store.settings import Settings

# FastAPI's native OpenTelemetry spans (on whenever a tracer provider is configured) record the query string,
# and OAuth callbacks carry authorization codes there: Herald makes its own request spans, named by route
# template, from the path alone (`tracing.RequestSpanMiddleware`), and counts requests in Prometheus.
FASTAPI_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


def instrument_app(app: FastAPI, settings: Settings) -> None:
    """Logging, the /metrics route and (when on) request spans for the API.

    Call after the app's other middleware is added, so the request span encloses all of it."""
    from observability import logs, metrics

    logs.configure(settings)
    if settings.metrics_enabled:
        app.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    if settings.tracing != "off":
        from observability import tracing

        tracing.setup(settings, "herald-api")
        app.add_middleware(tracing.RequestSpanMiddleware)


def http_transport(settings: Settings) -> httpx.AsyncBaseTransport | None:
    """A transport that makes a client span of every outgoing request; None (httpx's own) when tracing is off."""
    if settings.tracing == "off":
        return None
    from observability import tracing

    return tracing.TracedTransport()


def start_worker_telemetry(settings: Settings):
    """Tracing (when on) and the worker's metrics endpoint (when HERALD_WORKER_METRICS_PORT is set), before
    the worker connects; returns what stops them."""
    from observability import metrics

    if settings.tracing != "off":
        from observability import tracing

        tracing.setup(settings, "herald-worker")
    port = settings.worker_metrics_port
    server = metrics.serve(settings.metrics_host, port) if port else None

    def stop() -> None:
        if server is not None:
            server.shutdown()
            server.server_close()

    return stop
