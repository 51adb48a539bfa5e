"""bench/plot.py draws a benchmark result as a PNG in real Chromium."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from bench.plot import render, rows

RESULT = Path(__file__).resolve().parent.parent / "bench" / "baseline-2026-12-04-api-frozen.json"


async def test_a_full_result_becomes_a_png_with_a_row_per_figure(tmp_path):
    result = json.loads(RESULT.read_text())
    figures = rows(result)
    assert [label for label, *_ in figures][:3] == [f"throughput, {n} target(s), posts/s" for n in (1, 3, 9)]
    assert ("burst of 2000: drain, posts/s", 14.79, 27.92, "ratio 0.53 (target 0.6)") in figures
    out = tmp_path / "figures.png"
    await render(result, out)
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 900 and height > 46 * len(figures)
