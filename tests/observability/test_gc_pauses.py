"""observability/gc_pauses.py in a fresh interpreter: its callback is global to the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc
from prometheus_client import REGISTRY, generate_latest
from observability import gc_pauses
assert gc_pauses.watch() is gc_pauses.watch()  # once per process
for _ in range(20_000):  # cycles, so that the young generation is collected many times
    a, b = [], []
    a.append(b); b.append(a)
gc.collect()
before = gc.get_freeze_count()
gc_pauses.freeze_startup()
frozen = gc.get_freeze_count()
assert before == 0 and frozen > 1000, (before, frozen)
assert gc_pauses.watch().longest == 0.0  # the freeze's own collection ran before serving: not a pause
later = [[] for _ in range(5000)]  # built after startup: a second startup must not freeze them
gc_pauses.freeze_startup()
assert gc.get_freeze_count() == frozen
print(generate_latest(REGISTRY).decode())
"""


def series(metrics: str, prefix: str) -> float:
    return float(next(line for line in metrics.splitlines() if line.startswith(prefix)).split()[-1])


def test_collections_are_timed_per_generation():
    metrics = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, check=True, capture_output=True, text=True,
                             timeout=60).stdout
    assert series(metrics, 'herald_gc_pause_seconds_total{generation="0"}') > 0
    assert series(metrics, 'herald_gc_pause_seconds_total{generation="2"}') > 0  # the explicit full collection
    assert series(metrics, "herald_gc_longest_pause_seconds") > 0
    assert series(metrics, 'herald_gc_threshold{generation="0"}') == 700  # Python's own, left alone
    assert series(metrics, "herald_gc_frozen_objects") > 1000
