"""Herald's workflow runner (workflows/sandbox.py): the SDK's sandbox, minus the per-payload round trips, over
workflow modules compiled once per process.

It must convert payloads as the SDK's runner does, still refuse what the sandbox refuses, and still give every run
its own module."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from temporal_client import DATA_CONVERTER
from tests.support.sandboxed import CountsRuns, Greeting, GreetTwice, ReadsTheClock, greet
from workflows.sandbox import _COMPILED_ONCE, compile_once, workflow_runner

# As the worker does (worker.build_workers): every test here runs its workflows through the compiled-once modules.
compile_once([GreetTwice, ReadsTheClock, CountsRuns])


async def _client(temporal_env) -> Client:
    return Client(**{**temporal_env.client.config(), "data_converter": DATA_CONVERTER})


async def test_payloads_go_through_as_with_the_sdk_runner(temporal_env):
    client = await _client(temporal_env)
    queue = f"sandbox-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[GreetTwice], activities=[greet],
                      workflow_runner=workflow_runner(DATA_CONVERTER)):
        result = await client.execute_workflow(GreetTwice.run, Greeting("ada", 2), id=f"greet-{queue}",
                                               task_queue=queue)
    assert result == ["hello ada hello ada", "hello ADA"]


async def test_the_sandbox_still_refuses_a_non_deterministic_call(temporal_env):
    client = await _client(temporal_env)
    queue = f"sandbox-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[ReadsTheClock],
                      workflow_runner=workflow_runner(DATA_CONVERTER)):
        handle = await client.start_workflow(ReadsTheClock.run, id=f"clock-{queue}", task_queue=queue)
        failure = None
        for _ in range(100):
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    failure = event.workflow_task_failed_event_attributes.failure
            if failure:
                break
            await asyncio.sleep(0.1)
        await handle.terminate()
    assert failure is not None
    assert failure.application_failure_info.type == "RestrictedWorkflowAccessError"
    assert "datetime.datetime.now" in failure.message


async def test_every_run_still_gets_its_own_module(temporal_env):
    client = await _client(temporal_env)
    queue = f"sandbox-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[CountsRuns],
                      workflow_runner=workflow_runner(DATA_CONVERTER), max_cached_workflows=0):
        counts = [await client.execute_workflow(CountsRuns.run, id=f"count-{queue}-{i}", task_queue=queue)
                  for i in range(3)]
    assert counts == [1, 1, 1]  # module state is not shared between runs
    assert "tests.support.sandboxed" in _COMPILED_ONCE._found  # and the module came from the compiled code


class _Identity(PayloadCodec):
    async def encode(self, payloads):
        return payloads

    async def decode(self, payloads):
        return payloads


def test_a_codec_or_an_external_store_gets_the_sdk_runner():
    assert type(workflow_runner(DATA_CONVERTER)) is not SandboxedWorkflowRunner
    assert isinstance(workflow_runner(DATA_CONVERTER), SandboxedWorkflowRunner)
    assert type(workflow_runner(DataConverter(payload_codec=_Identity()))) is SandboxedWorkflowRunner
