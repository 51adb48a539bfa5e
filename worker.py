"""The Temporal worker: registers every workflow and activity from one registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import httpx
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
)
from temporalio.worker import Worker

from activities.accounts import AccountAccess
from activities.connect import ConnectActivities
from activities.maintenance import MaintenanceActivities, PurgeInput
from activities.publish import PublishActivities
from activities.webhooks import WebhookActivities
from observability import gc_pauses, http_transport, logs, start_worker_telemetry
from observability.temporal import worker_interceptors
from store import crypto
from store.db import Database
from store.media import download_url
from store.settings import Settings, get_settings
from temporal_client import connect_with_retry, ensure_search_attributes
from workflows import maintenance
from workflows.connect import ConnectSessionWorkflow
from workflows.maintenance import MaintenanceWorkflow
from workflows.publish import PublishPostWorkflow
from workflows.sandbox import compile_once, workflow_runner
from workflows.webhooks import WebhookDeliveryWorkflow, WebhookOutboxWorkflow, ensure_outbox

log = logging.getLogger("herald.worker")

WORKFLOWS = [MaintenanceWorkflow, PublishPostWorkflow, ConnectSessionWorkflow,
             WebhookDeliveryWorkflow, WebhookOutboxWorkflow]


class Dependencies:
    """What class-based activities share: one database, one HTTP client."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.sqlalchemy_url)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False,
                                      transport=http_transport(settings))

    def activities(self, client: Client) -> list:
        accounts = AccountAccess(self.db, self.http, self.settings)
        maintenance = MaintenanceActivities(self.db, client, self.settings, accounts)
        publish = PublishActivities(self.db, accounts, self.settings,
                                    media_urls=lambda media: download_url(self.settings, media))
        connect = ConnectActivities(self.db, self.http, self.settings)
        webhooks = WebhookActivities(self.db, client, self.settings)
        return [*activity_methods(maintenance), *activity_methods(publish), *activity_methods(connect),
                *activity_methods(webhooks)]

    async def close(self) -> None:
        await self.http.aclose()
        await self.db.close()


def activity_methods(instance) -> list:
    """Every @activity.defn method of a class-based activity object."""
    return [getattr(instance, name) for name in dir(type(instance))
            if not name.startswith("_") and hasattr(getattr(type(instance), name), "__temporal_activity_definition")]


def build_workers(client: Client, deps: Dependencies) -> list[Worker]:
    """One Worker per polled queue: the main queue runs the workflows and every activity; a platform queue
    (settings `platform_task_queues`) runs only activities, those of its platform's calls."""
    activities = deps.activities(client)
    compile_once(WORKFLOWS)
    return [Worker(client, task_queue=queue, workflows=WORKFLOWS if queue == deps.settings.task_queue else [],
                   activities=activities, interceptors=worker_interceptors(),
                   workflow_runner=workflow_runner(client.data_converter),
                   max_cached_workflows=deps.settings.worker_max_cached_workflows)
            for queue in deps.settings.polled_queues()]


async def ensure_schedules(client: Client, settings: Settings) -> None:
    try:
        await client.create_schedule(
            maintenance.SCHEDULE_ID,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    MaintenanceWorkflow.run, PurgeInput(), id=maintenance.WORKFLOW_ID, task_queue=settings.task_queue),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=maintenance.INTERVAL)]),
            ),
        )
    except ScheduleAlreadyRunningError:
        pass


async def run(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    crypto.configure(settings.encryption_key_list())
    gc_pauses.watch()
    stop_telemetry = start_worker_telemetry(settings)
    client = await connect_with_retry(settings, log=log)
    await ensure_search_attributes(client, settings.temporal_namespace)
    if settings.schedules_enabled:
        await ensure_schedules(client, settings)
        await ensure_outbox(client, settings.task_queue)
    deps = Dependencies(settings)
    workers = build_workers(client, deps)
    if not workers:
        raise SystemExit(f"HERALD_WORKER_QUEUES names no queue this instance has: {settings.worker_queues}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue%s %s on %s", "s" if len(workers) > 1 else "",
             ", ".join(w.task_queue for w in workers), settings.temporal_address)
    async with contextlib.AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        await stop.wait()
    await deps.close()
    stop_telemetry()


def main() -> None:
    logs.configure(get_settings())
    asyncio.run(run())


if __name__ == "__main__":
    main()
