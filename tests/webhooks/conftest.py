"""Webhook fixtures: a receiver on loopback, and the outbox loop on the test's task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from activities.webhooks import DeliveryPolicy
from temporal_client import connect
from tests.support.servers import serve
from tests.webhooks.support import FAST, Receiver
from workflows.webhooks import OutboxInput, ensure_outbox, outbox_workflow_id


@pytest.fixture
def receiver():
    r = Receiver()
    with serve(r.app()) as url:
        r.url = url
        yield r


@pytest.fixture
async def outbox(stack) -> AsyncIterator[Callable]:
    """Starts the outbox loop on the stack's task queue (schedules are off in tests); stops it afterwards."""
    client = await connect(stack.settings)
    started = []

    async def start(policy: DeliveryPolicy = FAST, rounds: int = 500):
        handle = await ensure_outbox(client, stack.settings.task_queue, OutboxInput(
            policy=policy, poll_interval=timedelta(milliseconds=200), rounds=rounds))
        started.append(handle)
        return handle

    yield start
    if started:
        await client.get_workflow_handle(outbox_workflow_id(stack.settings.task_queue)).terminate()
