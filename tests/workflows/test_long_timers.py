"""Timers measured in hours, on the time-skipping test server.

The connect session's 30-minute expiry runs here. PublishPostWorkflow's timers are covered on the dev
server (short schedules): the time-skipping server cannot register Herald's custom search attributes
(it does not implement the operator service), and that workflow upserts them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.worker import Worker

from store.models import ConnectSession, Profile
from temporal_client import DATA_CONVERTER
from worker import WORKFLOWS, Dependencies
from workflows.connect import ConnectSessionInput, ConnectSessionWorkflow
from workflows.sandbox import workflow_runner


@pytest.fixture
async def skipping_worker(stack, time_skipping_env):
    from temporalio.client import Client

    # Keep the environment's interceptors: they are what lets time skip while we wait on a result.
    client = Client(**{**time_skipping_env.client.config(), "data_converter": DATA_CONVERTER})
    deps = Dependencies(stack.settings)
    queue = f"skip-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=deps.activities(client),
                      workflow_runner=workflow_runner(client.data_converter)):
        yield client, queue
    await deps.close()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_connect_session_expires_after_thirty_minutes(stack, time_skipping_env, skipping_worker):
    client, queue = skipping_worker
    now = await time_skipping_env.get_current_time()
    async with stack.db.session() as s:
        profile = Profile(workspace_id=stack.tenant.workspace_id, livemode=False, name="Default")
        s.add(profile)
        await s.flush()
        row = ConnectSession(workspace_id=stack.tenant.workspace_id, livemode=False, profile_id=profile.id,
                             platform="twitter", external_user_id="u1", expires_at=now + timedelta(minutes=30))
        s.add(row)
        await s.commit()
    handle = await client.start_workflow(ConnectSessionWorkflow.run, ConnectSessionInput(row.id, row.expires_at),
                                         id=f"connect-session/{row.id}", task_queue=queue)
    assert await handle.result() == "expired"
    async with stack.db.session() as s:
        assert (await s.get(ConnectSession, row.id)).status == "expired"
