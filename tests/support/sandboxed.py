"""Workflows for the tests of Herald's workflow runner (tests/workflows/test_sandbox.py). A module of their own,
with nothing else in it, because the sandbox imports a workflow's module again for every run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import activity, workflow


@dataclass
class Greeting:
    name: str
    times: int


@activity.defn
async def greet(greeting: Greeting) -> str:
    return " ".join([f"hello {greeting.name}"] * greeting.times)


@workflow.defn
class GreetTwice:
    @workflow.run
    async def run(self, greeting: Greeting) -> list[str]:
        first = await workflow.execute_local_activity(greet, greeting, start_to_close_timeout=timedelta(seconds=10))
        second = await workflow.execute_activity(greet, Greeting(greeting.name.upper(), 1),
                                                 start_to_close_timeout=timedelta(seconds=10))
        return [first, second]


@workflow.defn
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()  # non-deterministic: the sandbox must refuse it


RUNS: list[str] = []  # module state: each run must see its own module, so its own empty list


@workflow.defn
class CountsRuns:
    @workflow.run
    async def run(self) -> int:
        RUNS.append(workflow.info().workflow_id)
        return len(RUNS)
