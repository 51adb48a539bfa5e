"""observability/gc_pauses.py in a fresh interpreter each: settling changes the whole process's collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc
from prometheus_client import REGISTRY, generate_latest
from observability import gc_pauses
default = gc.get_threshold()
gc_pauses.watch()
gc_pauses.settle({threshold})
gc_pauses.settle(123)  # only the first call of a process acts
gc.collect()
print(default, gc.get_threshold(), gc.get_freeze_count() > 0)
print(generate_latest(REGISTRY).decode())
"""


def probe(threshold: int) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(threshold=threshold)], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    first, _, metrics = out.partition("\n")
    return first, metrics


def test_settling_freezes_startup_and_raises_the_young_threshold():
    first, metrics = probe(50_000)
    assert first == "(700, 10, 10) (50000, 10, 10) True"
    assert 'herald_gc_threshold{generation="0"} 50000.0' in metrics
    full = next(line for line in metrics.splitlines()
                if line.startswith('herald_gc_pause_seconds_total{generation="2"}'))
    assert float(full.split()[-1]) > 0  # the collections were timed
    assert "herald_gc_longest_pause_seconds" in metrics


def test_zero_keeps_pythons_collector():
    first, metrics = probe(0)
    assert first == "(700, 10, 10) (700, 10, 10) False"
    assert 'herald_gc_threshold{generation="0"} 700.0' in metrics
