"""A PNG of one benchmark result: Herald beside the baseline for each figure, with the issue's target.

    .venv/bin/python bench/plot.py bench/baseline-2026-12-04-api-frozen.json [--out figures.png]

Drawn as SVG and rendered by Debian's Chromium through Playwright (the browser the tests use), so it needs no
plotting library.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.browser import chromium  # noqa: E402

HERALD, BASELINE = "#2f6fdf", "#9aa5b1"
ROW, BAR, LABEL_W, PLOT_W = 46, 16, 330, 400


def rows(result: dict) -> list[tuple[str, float, float, str]]:
    """(figure, herald, baseline, verdict) for every figure the run has; higher is better unless it says 'lower'."""
    f, out = result["figures"], []
    for targets, tp in f.get("throughput", {}).items():
        out.append((f"throughput, {targets} target(s), posts/s", tp["herald"]["posts_per_s"],
                    tp["baseline"]["posts_per_s"], f"ratio {tp['ratio']:.2f} (target 0.6)"))
    if "steady" in f:
        h, b = f["steady"]["herald"]["lag_s"]["p99"], f["steady"]["baseline"]["lag_s"]["p99"]
        out.append(("steady stream lag p99, s (lower)", h, b, f"{h} s (target < 1 s)"))
    if "burst" in f:
        bu = f["burst"]
        out.append((f"burst of {bu['herald']['posts']}: drain, posts/s", bu["herald"]["drain_posts_per_s"],
                    bu["baseline"]["drain_posts_per_s"], f"ratio {bu['drain_ratio']:.2f} (target 0.6)"))
    if "waiting" in f:
        w = f["waiting"]
        h, b = w["herald"]["accept_ms_paced"]["p99"], w["baseline"]["accept_ms_paced"]["p99"]
        rate = w["herald"]["accept_ms_paced"]["rate_per_s"]
        out.append((f"accept p99 at {rate}/s, ms (lower)", h, b, f"{h} ms (target < 50 ms)"))
        h, b = w["herald"]["accept_ms"]["p99"], w["baseline"]["accept_ms"]["p99"]
        out.append(("accept p99, 50 closed-loop clients, ms (lower)", h, b, f"{h} ms (target < 50 ms)"))
        m = w["memory_mib"]
        out.append((f"worker RSS, {w['posts']} waiting, MiB (lower)", m["herald_worker"], m["baseline_worker"], ""))
    return out


def svg(result: dict) -> str:
    data = rows(result)
    height = 60 + ROW * len(data)
    width = LABEL_W + PLOT_W + 290
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="DejaVu Sans, sans-serif" font-size="13">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="10" y="22" font-size="15" font-weight="bold">Herald against the bare-Temporal baseline, '
             f'{html.escape(result.get("started_at", "")[:16])} UTC</text>',
             f'<rect x="10" y="32" width="12" height="12" fill="{HERALD}"/><text x="28" y="43">Herald</text>',
             f'<rect x="100" y="32" width="12" height="12" fill="{BASELINE}"/><text x="118" y="43">baseline</text>']
    for i, (label, herald, baseline, verdict) in enumerate(data):
        top = 56 + i * ROW
        scale = PLOT_W / max(herald, baseline, 1e-9)
        parts.append(f'<text x="10" y="{top + BAR + 4}">{html.escape(label)}</text>')
        for j, (value, colour) in enumerate(((herald, HERALD), (baseline, BASELINE))):
            y = top + j * (BAR + 2)
            parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{value * scale:.1f}" height="{BAR}" fill="{colour}"/>')
            parts.append(f'<text x="{LABEL_W + value * scale + 4:.1f}" y="{y + BAR - 3}">{value:g}</text>')
        parts.append(f'<text x="{LABEL_W + PLOT_W + 75}" y="{top + BAR + 4}">{html.escape(verdict)}</text>')
    parts.append("</svg>")
    return "".join(parts)


async def render(result: dict, out: Path) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.set_content(f"<html><body style='margin:0'>{svg(result)}</body></html>")
        await page.locator("svg").screenshot(path=str(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", type=Path, help="a JSON file written by bench/publish_bench.py")
    parser.add_argument("--out", type=Path, help="where to write the PNG (default: beside the JSON)")
    args = parser.parse_args()
    out = args.out or args.result.with_suffix(".png")
    asyncio.run(render(json.loads(args.result.read_text()), out))
    print(f"PNG in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
