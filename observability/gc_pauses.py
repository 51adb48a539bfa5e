"""How long the cyclic garbage collector pauses a long-running process (API, worker), for Prometheus, and the
one remedy kept for the API.

CPython collects its youngest generation every 700 net allocations, and a full collection walks every tracked
object: in the API, the 175,000 or so that startup builds took 90-110 ms here each time. The API freezes what its
startup built (`freeze_startup`), so full collections walk only what came after: with 6,000 scheduled posts
accepted before it, the p99 of accepting posts paced at 30/s went from 331 and 238 ms to 182 and 165 ms in two
interleaved pairs (full collections in that window: 0.2 s against none). The usual companion, collecting the
young generation every 50,000 allocations, was measured here together with freezing both processes and not
kept, nor is the worker frozen: that cut the worker's time in the collector from about 4-5% of its CPU to about
1%, but the worker then held the cyclic garbage of the workflow runs it evicts from its cache much longer (with 10,000 posts waiting it held 1,005 MiB
against 311 MiB; 432 against 277 MiB with 4,000), and the closed-loop accept p99 was worse in three paired runs
of five. So the thresholds stay Python's, and these series show what the collector costs in production.
"""

from __future__ import annotations

import gc
import time

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_PAUSES: GcPauses | None = None
_FROZEN = False


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
        yield GaugeMetricFamily("herald_gc_frozen_objects", "Objects moved out of the collector's reach at startup "
                                "(gc.get_freeze_count()).", value=gc.get_freeze_count())


def watch() -> GcPauses:
    """Start timing this process's collections (once per process)."""
    global _PAUSES
    if _PAUSES is None:
        _PAUSES = GcPauses()
        gc.callbacks.append(_PAUSES.callback)
        REGISTRY.register(_PAUSES)
    return _PAUSES


def freeze_startup() -> None:
    """Collect once, then move every object that survives (modules, routes, schemas, pools: what startup built)
    out of the collector's reach, once per process. Full collections then walk only what came after. Objects
    frozen are never collected: anything startup built and drops later stays, which is why only once."""
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.collect()
        gc.freeze()
        if _PAUSES is not None:
            _PAUSES.longest = 0.0  # the collection above ran before serving: not a pause anyone waited on
