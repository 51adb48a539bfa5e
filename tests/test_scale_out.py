"""The short form of the scale-out benchmark (bench/scale_out.py): two API replicas and two workers beside one of
each, on one Temporal server and PostgreSQL, publish every target exactly once. Its throughput figures are the
benchmark's business (README, Scaling out); here only what must hold on any machine is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import PG_ADMIN_URL, require_postgres

ROOT = Path(__file__).parent.parent


def test_two_apis_and_two_workers_publish_each_target_once(tmp_path):
    require_postgres()
    server = PG_ADMIN_URL.split("?")[0].rsplit("/", 1)[0]
    out = tmp_path / "scale-out.json"
    done = subprocess.run([sys.executable, "bench/scale_out.py", "--posts", "30", "--warmup", "5",
                           "--postgres", server, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    for name, phase in result["phases"].items():
        assert (phase["duplicates"], phase["missing"], phase["not_published"]) == (0, 0, 0), (name, phase)
        assert not phase["submit_errors"], (name, phase["submit_errors"])
    two = result["phases"]["two"]
    assert (two["apis"], two["workers"]) == (2, 2)
    # Both replicas and both workers took part in the run.
    assert min(two["cpu_cores"][name] for name in ("api", "api2", "worker", "worker2")) > 0, two["cpu_cores"]
    assert (result["phases"]["one_again"]["apis"], result["phases"]["one_again"]["workers"]) == (1, 1)
