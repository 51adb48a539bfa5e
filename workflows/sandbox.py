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

The sandbox also imports each workflow's module afresh for every run it starts, which includes finding the module
on `sys.path` (a stat per candidate file) and reading and unmarshalling its bytecode: about 4% of the worker's CPU
on 3-target posts (py-spy), for a file that does not change while the worker runs. `compile_once` serves those
modules from code compiled once per process; the sandbox still executes it afresh for every run, in the run's own
module namespace, so nothing it isolates is shared.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, ModuleType

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


class _CodeLoader(importlib.abc.Loader):
    def __init__(self, code: CodeType):
        self._code = code

    def exec_module(self, module: ModuleType) -> None:
        exec(self._code, module.__dict__)


class _CompiledOnce(importlib.abc.MetaPathFinder):
    """Finds the named modules as the path finder does, once; later imports get a fresh spec over the same code."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._found: dict[str, tuple[importlib.machinery.ModuleSpec, CodeType]] = {}

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        found = self._found.get(fullname)
        if found is None:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
                return None
            found = self._found[fullname] = (spec, spec.loader.get_code(fullname))
        spec, code = found
        fresh = importlib.machinery.ModuleSpec(fullname, _CodeLoader(code), origin=spec.origin,
                                               is_package=spec.submodule_search_locations is not None)
        if fresh.submodule_search_locations is not None:
            fresh.submodule_search_locations[:] = spec.submodule_search_locations
        fresh.cached, fresh.has_location = spec.cached, True
        return fresh


_COMPILED_ONCE = _CompiledOnce()


def compile_once(workflows: Iterable[type]) -> None:
    """Serve the modules defining `workflows` (and their packages) from code compiled once for this process."""
    for cls in workflows:
        parts = cls.__module__.split(".")
        _COMPILED_ONCE.names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    if _COMPILED_ONCE not in sys.meta_path:
        sys.meta_path.insert(0, _COMPILED_ONCE)
