"""MaintenanceWorkflow: dispatches orphaned posts, refreshes tokens that expire soon, then purges
expired idempotency records, rate-limit windows and old operator logs.

Started every minute by the `herald-maintenance` Temporal Schedule that the worker keeps in place.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities, PurgeInput, PurgeResult
    from workflows.policies import DB_RETRY, DB_TIMEOUT, REFRESH_TIMEOUT

WORKFLOW_ID = "maintenance/purge"
SCHEDULE_ID = "herald-maintenance"
INTERVAL = timedelta(minutes=1)


@workflow.defn(name="MaintenanceWorkflow")
class MaintenanceWorkflow:
    @workflow.run
    async def run(self, params: PurgeInput) -> PurgeResult:
        now = PurgeInput(now=workflow.now(), log_retention_days=params.log_retention_days)
        dispatched = await workflow.execute_activity_method(
            MaintenanceActivities.dispatch_orphans, now, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)
        refreshed = await workflow.execute_activity_method(
            MaintenanceActivities.refresh_due_tokens, now, start_to_close_timeout=REFRESH_TIMEOUT,
            retry_policy=DB_RETRY)
        result = await workflow.execute_activity_method(
            MaintenanceActivities.purge_expired, now, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)
        result.dispatched_posts = dispatched
        result.refreshed_accounts = refreshed
        return result
