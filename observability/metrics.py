"""Herald's Prometheus metrics.

Every process (each API replica, each worker) has its own registry and exposes only what it counted itself:
Prometheus scrapes them all and sums. Labels are bounded sets (route templates, platforms, statuses), never
ids, so the series count does not grow with traffic.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

# A `_created` timestamp series beside every counter doubles the series count and tells Prometheus nothing.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "herald_http_requests", "API requests, by method, route template and status code.",
    ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "herald_http_request_duration_seconds", "API request latency, by method and route template.",
    ["method", "route"],
    # An immediate publish holds its request open while the fan-out runs (up to 25 s by default).
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
POSTS = Counter("herald_posts", "Posts that reached a final status (published, partial, failed, cancelled).",
                ["status"])
RESULTS = Counter("herald_post_results",
                  "Post results (one per target account) that reached a terminal status, by platform.",
                  ["platform", "status"])
ACTIVITY_RETRIES = Counter("herald_activity_retries",
                           "Activity executions after the first attempt (Temporal retries), by activity.",
                           ["activity"])
RECONCILIATIONS = Counter(
    "herald_reconciliations",
    "Interrupted publish attempts checked on the platform before a retry: found, not_found or unverifiable.",
    ["platform", "outcome"])
WEBHOOK_ATTEMPTS = Counter(
    "herald_webhook_delivery_attempts",
    "Webhook delivery attempts by outcome: succeeded, retry, failed (for good) or skipped (subscription gone).",
    ["outcome"])
TOKEN_REFRESHES = Counter("herald_token_refreshes",
                          "Access token refreshes at the platform, by outcome: succeeded, revoked or failed.",
                          ["platform", "outcome"])

# A client can send any method and any path: both are folded into a fixed set before they become labels.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def route_of(scope: dict[str, Any]) -> str:
    """The matched route's template (`/v1/social-posts/{post_id}`), never the raw path."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return UNMATCHED
    if isinstance(route, Mount):
        return template.rstrip("/") + "/{path}"
    # FastAPI puts a route of a router included with a prefix (the sandbox's `/sandbox/<platform>`) in the
    # scope as it was declared, without the prefix. Herald's include prefixes are literal, so the path's
    # leading segments beyond the template's are that prefix.
    if ":path}" not in template:
        segments = [s for s in scope.get("path", "").split("/") if s]
        extra = len(segments) - len([s for s in template.split("/") if s])
        if extra > 0:
            return "/" + "/".join(segments[:extra]) + template.rstrip("/")
    return template


def observe_request(scope: dict[str, Any], status: int, started: float) -> None:
    """Count one finished API request; `started` is its `time.perf_counter()` at arrival."""
    method = scope.get("method", "")
    method = method if method in _METHODS else "OTHER"
    route = route_of(scope)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)


async def endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def serve(host: str, port: int):
    """Serve this process's registry on its own port (the worker has no web server); returns the server,
    whose `shutdown()` stops it."""
    server, _thread = start_http_server(port, addr=host)
    return server


class ActivityMetricsInterceptor(Interceptor):
    """Counts retries for every activity in one place, rather than in each activity."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)


class _ActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.attempt > 1:
            ACTIVITY_RETRIES.labels(info.activity_type).inc()
        return await super().execute_activity(input)
