"""MaintenanceWorkflow on a real Temporal server, its schedule, and its replay test."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.maintenance import PurgeInput
from store.models import IdempotencyRecord, OperatorLog, RateLimitWindow
from worker import WORKFLOWS, ensure_schedules
from workflows.maintenance import SCHEDULE_ID, MaintenanceWorkflow

from tests.support.histories import HISTORIES, record_history


async def _seed(stack) -> None:
    old = datetime.now(UTC) - timedelta(days=60)
    async with stack.db.session() as s:
        s.add(IdempotencyRecord(workspace_id=stack.tenant.workspace_id, livemode=False, key="old", route="/x",
                                request_hash="h", expires_at=old))
        s.add(IdempotencyRecord(workspace_id=stack.tenant.workspace_id, livemode=False, key="fresh", route="/x",
                                request_hash="h", expires_at=datetime.now(UTC) + timedelta(hours=1)))
        s.add(RateLimitWindow(api_key_id="key_x", window_start=1, count=3))
        s.add(OperatorLog(workspace_id=stack.tenant.workspace_id, livemode=False, kind="request", created_at=old))
        await s.commit()


async def test_purge_removes_only_expired_rows(stack, temporal_env):
    """The workflow runs its activity on the worker and deletes exactly the expired rows."""
    await _seed(stack)
    handle = await temporal_env.client.start_workflow(
        MaintenanceWorkflow.run, PurgeInput(), id=f"maintenance/test-{uuid.uuid4().hex[:6]}",
        task_queue=stack.settings.task_queue)
    result = await handle.result()
    assert (result.idempotency_records, result.rate_limit_windows, result.operator_logs) == (1, 1, 1)
    async with stack.db.session() as s:
        keys = [r[0] for r in (await s.execute(text("SELECT key FROM idempotency_records"))).all()]
    assert keys == ["fresh"]
    record_history(await handle.fetch_history(), "maintenance.json")


async def test_schedule_is_created_once(stack, temporal_env):
    await ensure_schedules(temporal_env.client, stack.settings)
    await ensure_schedules(temporal_env.client, stack.settings)  # idempotent
    desc = await temporal_env.client.get_schedule_handle(SCHEDULE_ID).describe()
    assert desc.schedule.spec.intervals[0].every == timedelta(minutes=10)


async def test_replay_recorded_history():
    """A change to the workflow code that breaks running executions fails here."""
    path = HISTORIES / "maintenance.json"
    history = WorkflowHistory.from_json("maintenance/recorded", json.loads(path.read_text()))
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)
