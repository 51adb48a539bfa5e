"""OpenTelemetry traces: API request → StartWorkflow → workflow → activity → the platform's HTTP call.

Imported only when HERALD_TRACING is `console` or `otlp`. Temporal carries the context between processes
in workflow and activity headers (temporalio's TracingInterceptor, on the client and so on the worker built
from it); the API's request spans come from `RequestSpanMiddleware`, and the platform calls' client spans
from `TracedTransport`, which also sends `traceparent` so a traced platform (or the sandbox) continues it.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability.metrics import route_of

_provider: TracerProvider | None = None
_exporting: set[tuple[str, str]] = set()


def provider(service_name: str = "herald") -> TracerProvider:
    """This process's tracer provider: the global one if an SDK provider is already installed (an embedding
    program, or a test adding its own exporter), otherwise a new one made global. OpenTelemetry allows
    setting the global provider once per process, so this is the one place that does."""
    global _provider
    if _provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _provider = current
        else:
            _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
            trace.set_tracer_provider(_provider)
    return _provider


def exporter(settings) -> SpanExporter:
    if settings.tracing == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint.rstrip("/")
        if httpx.URL(endpoint).path in ("", "/"):
            endpoint += "/v1/traces"
        return OTLPSpanExporter(endpoint=endpoint)
    return ConsoleSpanExporter(out=_Stdout())


class _Stdout:
    """sys.stdout as it is at each write: spans still batched at exit go to the stdout of that moment, not to
    one replaced and closed meanwhile (a test runner's capture)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def setup(settings, service_name: str = "herald") -> TracerProvider:
    """The provider, exporting as the settings say; repeated calls (every client, every app) add nothing."""
    tracer_provider = provider(service_name)
    key = (settings.tracing, settings.otlp_endpoint)
    if key not in _exporting:
        _exporting.add(key)
        # Batched: exporting never waits on the request or activity that ended the span.
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter(settings)))
    return tracer_provider


def temporal_interceptors(settings) -> list:
    from temporalio.contrib.opentelemetry import TracingInterceptor

    setup(settings)
    return [TracingInterceptor(trace.get_tracer("herald.temporal"))]


class RequestSpanMiddleware:
    """A server span per API request, continuing an incoming `traceparent`, named by its route template."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.tracer = trace.get_tracer("herald.api")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        method = scope.get("method", "")
        with self.tracer.start_as_current_span(
                method, context=propagate.extract(carrier), kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "url.path": scope.get("path", "")}) as span:
            status = {"code": 500}

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                route = route_of(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status["code"])
                if status["code"] >= 500:
                    span.set_status(Status(StatusCode.ERROR))


class TracedTransport(httpx.AsyncBaseTransport):
    """A client span around each request of an httpx client, with the context injected into its headers."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None):
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.tracer = trace.get_tracer("herald.http")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        attributes: dict[str, Any] = {
            "http.request.method": request.method, "server.address": url.host,
            # Without the query string: some platform contracts put credentials there.
            "url.full": str(url.copy_with(query=None, fragment=None)),
        }
        if url.port:
            attributes["server.port"] = url.port
        with self.tracer.start_as_current_span(f"{request.method} {url.host}", kind=SpanKind.CLIENT,
                                               attributes=attributes) as span:
            propagate.inject(request.headers)
            response = await self.inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self.inner.aclose()
