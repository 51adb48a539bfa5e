"""The short form of the load and soak driver (bench/load.py): 20 s of the mixed workload, with no error and
every post terminal. The 10-minute soak is the same command with --seconds 600 (README, Development)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_mixed_workload_runs_clean(tmp_path):
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, "bench/load.py", "--seconds", "20", "--rate", "10", "--accounts", "10",
                           "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["error_rate"] == 0 and result["posts_not_terminal"] == 0, result["error_samples"]
    assert set(result["routes"]) == {"create_immediate", "create_scheduled", "poll", "list", "connect_session",
                                      "cancel_session"}
    assert all(r["ops"] > 0 and r["errors"] == 0 for r in result["routes"].values())
    assert result["throughput_ops_per_s"] > 8  # the driver kept up with its 10 ops/s
    assert len(result["memory_mib"]) >= 4 and {"api", "worker", "temporal"} <= set(result["memory_mib"][0])
