"""How long the cyclic garbage collector pauses a long-running process (API, worker), for Prometheus.

CPython collects its youngest generation every 700 net allocations, and a full collection walks every tracked
object. The usual remedy for servers, freezing what startup built and collecting the young generation every
50,000 allocations, was measured here and not kept: it cut the worker's time in the collector from about 4-5%
of its CPU to about 1%, but the worker then held the cyclic garbage of the workflow runs it evicts from its cache
much longer (with 10,000 posts waiting it held 1,005 MiB against 311 MiB; 432 against 277 MiB with 4,000),
and the closed-loop accept p99 was worse in three paired runs of five. So Python's collector stays as it is,
and these series show what it costs in production.
"""

from __future__ import annotations

import gc
import time

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_PAUSES: GcPauses | None = None


class GcPauses(Collector):
    """Seconds spent in collections, per generation, exported as `herald_gc_pause_seconds_total`.

    The collector's callback only adds to plain numbers: it can run inside any allocation, including one made
    while a metric's lock is held, so it must take no lock. Prometheus reads the numbers when it scrapes."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._started = 0.0

    def callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.seconds[info["generation"]] += took
        self.longest = max(self.longest, took)

    def collect(self):
        pauses = CounterMetricFamily("herald_gc_pause_seconds", "Time spent in the cyclic garbage collector, "
                                     "by generation (2 = full collections, the long pauses).", labels=["generation"])
        for generation, seconds in enumerate(self.seconds):
            pauses.add_metric([str(generation)], seconds)
        yield pauses
        yield GaugeMetricFamily("herald_gc_longest_pause_seconds", "The longest collection since the process "
                                "started.", value=self.longest)
        threshold = GaugeMetricFamily("herald_gc_threshold", "The collector's thresholds (gc.get_threshold()).",
                                      labels=["generation"])
        for generation, value in enumerate(gc.get_threshold()):
            threshold.add_metric([str(generation)], value)
        yield threshold


def watch() -> GcPauses:
    """Start timing this process's collections (once per process)."""
    global _PAUSES
    if _PAUSES is None:
        _PAUSES = GcPauses()
        gc.callbacks.append(_PAUSES.callback)
        REGISTRY.register(_PAUSES)
    return _PAUSES
