"""The workflow runner Herald's workers and replays use: the SDK's sandbox, without one round trip into it per
payload.

Before a workflow activation is decoded and after its completion is encoded, the worker asks the run, for every
payload, which serialization context and external-store target apply, so that a payload codec or an external
store can be told which workflow or activity a payload belongs to. The sandboxed runner answers each question by
compiling and running a snippet inside the sandbox: about 8% of the worker's CPU on 3-target posts (py-spy).
Herald's data converter has neither a codec nor an external store, so the answers change nothing the converter
does; this runner gives them without entering the sandbox. With a codec or a store it is the SDK's runner.
It subclasses the SDK's private sandbox instance class: uv.lock pins the SDK, and tests/workflows/test_sandbox.py
runs workflows through it and checks that the sandbox still refuses what it must.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.converter import DataConverter, StorageDriverStoreContext, StorageDriverWorkflowInfo
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance


class _ContextFreeInstance(_Instance):
    def get_serialization_context(self, command_info) -> None:
        return None  # the converter without a context: the same converter, as nothing in it reads one

    def get_external_store_context(self, command_info) -> StorageDriverStoreContext:
        info = self.instance_details.info
        return StorageDriverStoreContext(target=StorageDriverWorkflowInfo(
            id=info.workflow_id, run_id=info.run_id, type=info.workflow_type, namespace=info.namespace))


@dataclass(frozen=True)
class _ContextFreeSandboxedRunner(SandboxedWorkflowRunner):
    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(det, self.runner_class, self.restrictions)


def workflow_runner(data_converter: DataConverter) -> WorkflowRunner:
    if data_converter.payload_codec is None and data_converter.external_storage is None:
        return _ContextFreeSandboxedRunner()
    return SandboxedWorkflowRunner()
