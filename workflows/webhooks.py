"""Webhook workflows: the outbox loop and one durable delivery per event and subscription.

- `WebhookOutboxWorkflow` (id `webhook-outbox/<task queue>`, started by the worker): every second, an
  activity starts the delivery workflows of the events `store.events.emit` wrote to the outbox; it
  continues as new every few hundred rounds so its history stays small.
- `WebhookDeliveryWorkflow` (id `webhook/<event id>/<subscription id>`): attempts with exponential backoff
  (`DeliveryPolicy`, by default 34 attempts over just over 24 h), each attempt an activity that logs a
  `WebhookDelivery` row. It ends at the first 2xx, at a 410 or a refused address, when the subscription is
  disabled or deleted, or after the last attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import (
        AttemptInput,
        AttemptOutcome,
        DeliveryInput,
        DeliveryPolicy,
        DeliveryResult,
        DispatchInput,
        WebhookActivities,
    )
    import workflows.search_attributes as sa  # see workflows/publish.py for why not `from workflows import`
    from workflows.policies import (
        DB_RETRY,
        DB_TIMEOUT,
        WEBHOOK_ATTEMPT_TIMEOUT,
        WEBHOOK_OUTBOX_POLL,
        WEBHOOK_OUTBOX_RETRY,
    )

# Events handled per round; a full batch is followed at once by the next round.
OUTBOX_BATCH = 100
OUTBOX_ROUNDS = 500


def delivery_workflow_id(event_id: str, subscription_id: str) -> str:
    return f"webhook/{event_id}/{subscription_id}"


def outbox_workflow_id(task_queue: str) -> str:
    return f"webhook-outbox/{task_queue}"


@dataclass
class OutboxInput:
    policy: DeliveryPolicy | None = None  # None: the current defaults (tests pass a short one)
    poll_interval: timedelta = WEBHOOK_OUTBOX_POLL
    rounds: int = OUTBOX_ROUNDS


@workflow.defn(name="WebhookDeliveryWorkflow")
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, inp: DeliveryInput) -> DeliveryResult:
        policy = inp.policy
        for n in range(1, policy.max_attempts + 1):
            attempt = AttemptInput(event_id=inp.event_id, subscription_id=inp.subscription_id,
                                   attempt=inp.first_attempt + n - 1, final=n == policy.max_attempts,
                                   failure_limit=policy.failure_limit)
            try:
                outcome: AttemptOutcome = await workflow.execute_activity_method(
                    WebhookActivities.attempt, attempt, start_to_close_timeout=WEBHOOK_ATTEMPT_TIMEOUT,
                    retry_policy=DB_RETRY)
            except ActivityError:
                # Our own side failed (database down) even after retries: wait like any failed attempt.
                outcome = AttemptOutcome("retry")
            if outcome.status != "retry":
                return DeliveryResult(outcome.status, n)
            if n < policy.max_attempts:
                await workflow.sleep(policy.delay_after(n))
        return DeliveryResult("failed", policy.max_attempts)


@workflow.defn(name="WebhookOutboxWorkflow")
class WebhookOutboxWorkflow:
    @workflow.run
    async def run(self, inp: OutboxInput) -> None:
        for _ in range(inp.rounds):
            handled = await workflow.execute_activity_method(
                WebhookActivities.dispatch_pending, DispatchInput(policy=inp.policy, limit=OUTBOX_BATCH),
                start_to_close_timeout=DB_TIMEOUT, retry_policy=WEBHOOK_OUTBOX_RETRY)
            if workflow.info().is_continue_as_new_suggested():
                break
            if handled < OUTBOX_BATCH:
                await workflow.sleep(inp.poll_interval)
        workflow.continue_as_new(inp)


async def start_delivery(client, task_queue: str, event, sub, policy: DeliveryPolicy, *,
                         first_attempt: int = 1, again: bool = False) -> bool:
    """Start `webhook/<event>/<subscription>`; False when it already exists.

    The outbox never starts one twice (a running one is used, a finished one refused). A redelivery
    (`again`) starts a new run once the previous one has finished."""
    from temporalio.common import (
        SearchAttributePair,
        TypedSearchAttributes,
        WorkflowIDConflictPolicy,
        WorkflowIDReusePolicy,
    )
    from temporalio.exceptions import WorkflowAlreadyStartedError

    reuse, conflict = ((WorkflowIDReusePolicy.ALLOW_DUPLICATE, WorkflowIDConflictPolicy.FAIL) if again else
                       (WorkflowIDReusePolicy.REJECT_DUPLICATE, WorkflowIDConflictPolicy.USE_EXISTING))
    try:
        await client.start_workflow(
            WebhookDeliveryWorkflow.run,
            DeliveryInput(event_id=event.id, subscription_id=sub.id, policy=policy, first_attempt=first_attempt),
            id=delivery_workflow_id(event.id, sub.id),
            task_queue=task_queue,
            id_reuse_policy=reuse,
            id_conflict_policy=conflict,
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.WORKSPACE, sub.workspace_id),
                                                     SearchAttributePair(sa.LIVEMODE, sub.livemode)]),
            static_summary=f"{event.type} {event.id} to webhook {sub.id}",
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def ensure_outbox(client, task_queue: str, inp: OutboxInput | None = None):
    """Start the outbox loop of `task_queue` unless it runs already; returns its handle."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

    return await client.start_workflow(
        WebhookOutboxWorkflow.run, inp or OutboxInput(), id=outbox_workflow_id(task_queue), task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Starts webhook deliveries for new events")
