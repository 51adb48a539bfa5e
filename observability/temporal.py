"""What Temporal clients and workers take from observability: the SDK runtime and the interceptors."""

from __future__ import annotations

import logging

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from store.settings import Settings

# One runtime per configuration and process: each owns a thread pool, and its Prometheus endpoint can bind
# its port only once.
_runtimes: dict[tuple[str | None, bool], Runtime] = {}


def runtime(settings: Settings) -> Runtime | None:
    """The SDK runtime for this process's clients: None (the SDK's default) unless its metrics are exported
    (HERALD_TEMPORAL_METRICS_PORT) or logs are JSON, where the SDK core's own log lines are forwarded to
    Python logging so they come out as JSON lines too, rather than as plain text on stderr."""
    bind = f"{settings.metrics_host}:{settings.temporal_metrics_port}" if settings.temporal_metrics_port else None
    forward = settings.effective_log_format == "json"
    if bind is None and not forward:
        return None
    key = (bind, forward)
    if key not in _runtimes:
        logging_config = LoggingConfig.default
        if forward:
            logging_config = LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                                           forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))
        _runtimes[key] = Runtime(telemetry=TelemetryConfig(
            logging=logging_config, metrics=PrometheusConfig(bind_address=bind) if bind else None))
    return _runtimes[key]


def client_interceptors(settings: Settings) -> list:
    """Tracing, when on; a worker built from the client gets its worker half too."""
    if settings.tracing == "off":
        return []
    from observability import tracing

    return tracing.temporal_interceptors(settings)


def worker_interceptors() -> list:
    from observability.metrics import ActivityMetricsInterceptor

    return [ActivityMetricsInterceptor()]
