"""The bare-Temporal baseline: a workflow that waits until due, then fans out N activities, each of which
makes exactly one HTTP call (the same platform call Herald makes, to the same sandbox, with the same
latency) and nothing else: no database, no webhooks, no bookkeeping.

Run as its own worker process: `python -m bench.baseline --address host:port --task-queue q`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import httpx

CALL_TIMEOUT = timedelta(seconds=60)
CALL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)


@dataclass
class HttpCall:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None


@dataclass
class FanoutInput:
    calls: list[HttpCall]
    scheduled_at: datetime | None = None


@dataclass
class FanoutOutput:
    statuses: list[int]


class CallActivities:
    def __init__(self) -> None:
        self.http = httpx.AsyncClient(timeout=30)

    @activity.defn(name="baseline.call")
    async def call(self, call: HttpCall) -> int:
        resp = await self.http.request(call.method, call.url, headers=call.headers, json=call.json)
        return resp.status_code


@workflow.defn(name="BaselineFanout")
class BaselineFanout:
    @workflow.run
    async def run(self, inp: FanoutInput) -> FanoutOutput:
        if inp.scheduled_at is not None:
            remaining = (inp.scheduled_at - workflow.now()).total_seconds()
            if remaining > 0:
                await workflow.sleep(timedelta(seconds=remaining))
        statuses = await asyncio.gather(*(
            workflow.execute_activity_method(CallActivities.call, call, start_to_close_timeout=CALL_TIMEOUT,
                                             retry_policy=CALL_RETRY)
            for call in inp.calls))
        return FanoutOutput(statuses=list(statuses))


async def serve(address: str, task_queue: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    calls = CallActivities()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Worker options are the SDK defaults, as Herald's worker.py uses them.
    async with Worker(client, task_queue=task_queue, workflows=[BaselineFanout], activities=[calls.call]):
        await stop.wait()
    await calls.http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
