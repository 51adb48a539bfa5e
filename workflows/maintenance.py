"""MaintenanceWorkflow: purges expired idempotency records, rate-limit windows and old logs.

Started by the `herald-maintenance` Temporal Schedule that the worker keeps in place.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities, PurgeInput, PurgeResult

from workflows.policies import DB_RETRY, DB_TIMEOUT

WORKFLOW_ID = "maintenance/purge"
SCHEDULE_ID = "herald-maintenance"
INTERVAL = timedelta(minutes=10)


@workflow.defn(name="MaintenanceWorkflow")
class MaintenanceWorkflow:
    @workflow.run
    async def run(self, params: PurgeInput) -> PurgeResult:
        cutoff = workflow.now()
        return await workflow.execute_activity_method(
            MaintenanceActivities.purge_expired,
            PurgeInput(now=cutoff, log_retention_days=params.log_retention_days),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
