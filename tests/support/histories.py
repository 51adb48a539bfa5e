"""Recorded workflow histories for replay tests.

Histories are committed. A test that runs a workflow records its history only
when the file is missing or HERALD_RECORD_HISTORIES=1, so replay tests check
the current code against histories made by earlier code.
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import WorkflowHistory

HISTORIES = Path(__file__).parent.parent / "histories"


def record_history(history: WorkflowHistory, name: str) -> None:
    path = HISTORIES / name
    if path.exists() and os.environ.get("HERALD_RECORD_HISTORIES") != "1":
        return
    HISTORIES.mkdir(exist_ok=True)
    path.write_text(history.to_json())
