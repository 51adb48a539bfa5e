"""Replay every recorded workflow history against the current code.

A change that breaks determinism for executions already running fails here.
Histories are committed; re-record them deliberately with HERALD_RECORD_HISTORIES=1. PublishPostWorkflow has
three generations of them: `publish-v1_*` (before the lean fan-out), `publish-patched_*` (the lean fan-out behind
its patch marker) and `publish_*` (runs started with `revision` 1, see workflows/publish_payloads.py).
"""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.support.histories import HISTORIES
from temporal_client import DATA_CONVERTER
from worker import WORKFLOWS
from workflows.sandbox import workflow_runner

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_every_workflow_has_recorded_histories():
    assert {"maintenance", "publish", "connect"} <= {p.stem.split("_")[0] for p in RECORDED}


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_replay(path):
    history = WorkflowHistory.from_json(f"recorded/{path.stem}", json.loads(path.read_text()))
    await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER,
                   workflow_runner=workflow_runner(DATA_CONVERTER)).replay_workflow(history)
