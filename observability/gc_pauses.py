"""The cyclic garbage collector of the long-running processes (API, worker): its settings and its pauses.

CPython collects its youngest generation every 700 net allocations, and a full collection walks every tracked
object. `settle()` is the usual remedy for long-running servers: freeze what startup built (modules, the app,
engines: never garbage, so later collections skip it) and collect the young generation less often. Timed in
the publish benchmark's stack (660 immediate 3-target posts), it cut the worker's time in the collector from
about 4-5% of its CPU to about 1%, and the API's from about 7% to 2-3%; after warm-up the worker's longest pause
went from 103 to 81 ms and the API's from 224 ms to none at all (one run each way), for about 18 MiB more
worker memory. What remains are collections of what a process built after startup (the worker's cached
workflow runs above all); `herald_gc_pause_seconds_total` and `herald_gc_longest_pause_seconds` show them in
production.
"""

from __future__ import annotations

import gc
import time

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


_settled = False
_PAUSES: GcPauses | None = None


def settle(young_threshold: int) -> None:
    """Call once startup is over (only the first call of a process acts). `young_threshold` allocations between
    young collections (Python's default is 700); 0 leaves the collector as Python set it."""
    global _settled
    if _settled:
        return
    _settled = True
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)
    if _PAUSES is not None:
        _PAUSES.longest = 0.0  # the collection above ran before serving: not a pause anyone waited on


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
                                "began serving.", value=self.longest)
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
