"""PublishPostWorkflow (id `post/<id>`): wait until due, fan out, aggregate.

- Sleeps until `scheduled_at` on a timer that updates can move (`edit`, which
  also carries content changes) or stop (`cancel`); an edit is applied by an activity while the
  workflow holds off publishing, so the edit the API accepted is what runs.
- Fans out one branch per target account, concurrently. Inside a branch:
  media, then each thread part in order (each replying to the previous one),
  then the first comment. Platform processing (media, containers, TikTok's
  publish status) is waited on here, with timers, never inside an adapter.
- Every platform call is an activity with the platform retry policy; the
  activity records each attempt durably and reconciles before any retry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.publish import (
        EditInput,
        PostOutcome,
        PostStatusInput,
        PublishActivities,
        StepInput,
        StepOutput,
        TargetOutcome,
    )
    from adapters.base import PostRef

from workflows import search_attributes as sa
from workflows.policies import (
    DB_RETRY,
    DB_TIMEOUT,
    PLATFORM_HEARTBEAT,
    PLATFORM_RETRY,
    PLATFORM_TIMEOUT,
    POLL_LIMIT,
)

UNCONFIRMED_MESSAGE = ("The platform did not confirm whether an earlier attempt was published, so Herald did not "
                       "post again (that could duplicate it). Check the account, then retry this result if the "
                       "post is missing.")


@dataclass
class PublishPostInput:
    post_id: str
    scheduled_at: datetime | None = None
    # An engineer's retry names the results to run again; otherwise every target is read at publish time.
    retry_result_ids: list[str] = field(default_factory=list)


@dataclass
class EditRequest:
    changes: dict
    scheduled_at: datetime | None = None


@dataclass
class CancelRequest:
    reason: str = "cancelled by request"


@dataclass
class WorkflowState:
    phase: str
    scheduled_at: datetime | None
    results: dict[str, str] = field(default_factory=dict)


@workflow.defn(name="PublishPostWorkflow")
class PublishPostWorkflow:
    def __init__(self) -> None:
        self.phase = "waiting"
        self.scheduled_at: datetime | None = None
        self.cancelled = False
        self.changed = False
        self.editing = 0
        self.results: dict[str, str] = {}

    @workflow.run
    async def run(self, inp: PublishPostInput) -> PostOutcome:
        self.scheduled_at = inp.scheduled_at
        await self._wait_until_due()
        if self.cancelled:
            self.phase = "cancelled"
            workflow.upsert_search_attributes([sa.STATUS.value_set("cancelled")])
            await workflow.wait_condition(workflow.all_handlers_finished)
            return PostOutcome(post_id=inp.post_id, status="cancelled", published=0, failed=0)

        self.phase = "publishing"
        workflow.upsert_search_attributes([sa.STATUS.value_set("publishing")])
        await self._db(PublishActivities.set_post_status, PostStatusInput(inp.post_id, "publishing"))
        result_ids = inp.retry_result_ids or await self._db(PublishActivities.list_results, inp.post_id)
        self.results = {r: "pending" for r in result_ids}
        await asyncio.gather(*(self._target(result_id) for result_id in result_ids))
        outcome: PostOutcome = await self._db(PublishActivities.finish_post, inp.post_id)
        self.phase = "done"
        workflow.upsert_search_attributes([sa.STATUS.value_set(outcome.status)])
        return outcome

    # --- the timer ---

    async def _wait_until_due(self) -> None:
        while not self.cancelled or self.editing:
            remaining = (self.scheduled_at - workflow.now()).total_seconds() if self.scheduled_at else 0.0
            if (remaining <= 0 or self.cancelled) and self.editing == 0:
                return
            self.changed = False
            try:
                await workflow.wait_condition(lambda: self.changed,
                                              timeout=timedelta(seconds=remaining) if remaining > 0 else None)
            except asyncio.TimeoutError:
                pass

    def _check_waiting(self) -> None:
        if self.phase != "waiting" or self.cancelled:
            raise ApplicationError(f"the post is {self.phase if not self.cancelled else 'cancelled'}; "
                                   "it can no longer be changed", type="NotEditable", non_retryable=True)

    @workflow.update
    async def edit(self, req: EditRequest) -> WorkflowState:
        self._check_waiting()
        self.editing += 1
        try:
            await self._db(PublishActivities.apply_edit, EditInput(workflow.info().workflow_id.split("/", 1)[1],
                                                                   req.changes))
            if req.scheduled_at is not None:
                self.scheduled_at = req.scheduled_at
        finally:
            self.editing -= 1
            self.changed = True
        return self.state()

    @edit.validator
    def _validate_edit(self, req: EditRequest) -> None:
        self._check_waiting()

    @workflow.update
    async def cancel(self, req: CancelRequest) -> WorkflowState:
        self._check_waiting()
        self.editing += 1
        try:
            await self._db(PublishActivities.set_post_status,
                           PostStatusInput(workflow.info().workflow_id.split("/", 1)[1], "cancelled"))
            self.cancelled = True
        finally:
            self.editing -= 1
            self.changed = True
        return self.state()

    @cancel.validator
    def _validate_cancel(self, req: CancelRequest) -> None:
        self._check_waiting()

    @workflow.query
    def state(self) -> WorkflowState:
        return WorkflowState(phase=self.phase, scheduled_at=self.scheduled_at, results=dict(self.results))

    # --- one branch per target account ---

    async def _target(self, result_id: str) -> None:
        self.results[result_id] = "publishing"
        try:
            outcome = await self._publish_target(result_id)
        except ActivityError as err:
            outcome = _failure(result_id, err)
        if outcome is not None:
            await self._db(PublishActivities.finish_target, outcome)
            self.results[result_id] = outcome.status

    async def _publish_target(self, result_id: str) -> TargetOutcome | None:
        plan = await self._db(PublishActivities.plan_target, StepInput(result_id))
        if plan.skip:
            self.results[result_id] = "published"
            return None
        queue = plan.task_queue
        parent: PostRef | None = None
        first: PostRef | None = None
        for part in range(plan.part_count):
            done = plan.published[part] if part < len(plan.published) else None
            if done is None:
                media = [await self._until_done(PublishActivities.upload_media,
                                                StepInput(result_id, part=part, index=i), "media", queue)
                         for i in range(plan.media_counts[part])]
                prepared = await self._until_done(
                    PublishActivities.prepare, StepInput(result_id, part=part, media=media, reply_to=parent),
                    "prepared", queue)
                out: StepOutput = await self._platform(PublishActivities.publish_part,
                                                       StepInput(result_id, part=part, prepared=prepared), queue)
                done = out.post if out.pending is None else await self._poll_publish(result_id, part, out, queue)
            parent = done
            first = first or done
        if plan.has_comment and not plan.comment_done and first is not None:
            await self._platform(PublishActivities.comment, StepInput(result_id, reply_to=first), queue)
        return TargetOutcome(result_id=result_id, status="published")

    async def _until_done(self, activity_fn, step: StepInput, field_name: str, queue: str):
        """Run a step, then poll it (same activity, with the handle) while the platform is processing."""
        out: StepOutput = await self._platform(activity_fn, step, queue)
        polls = 0
        while out.pending is not None:
            polls += 1
            if polls > POLL_LIMIT:
                raise ApplicationError("the platform kept processing for too long", {"code": "processing_timeout"},
                                       type="MediaRejected", non_retryable=True)
            await workflow.sleep(timedelta(seconds=max(0.2, out.pending.check_after)))
            out = await self._platform(activity_fn, StepInput(step.result_id, part=step.part, index=step.index,
                                                              handle=out.pending.handle, media=step.media,
                                                              reply_to=step.reply_to), queue)
        return getattr(out, field_name)

    async def _poll_publish(self, result_id: str, part: int, out: StepOutput, queue: str) -> PostRef:
        polls = 0
        while out.pending is not None:
            polls += 1
            if polls > POLL_LIMIT:
                raise ApplicationError("the platform did not finish publishing in time",
                                       {"code": "processing_timeout"}, type="Unverifiable", non_retryable=True)
            await workflow.sleep(timedelta(seconds=max(0.2, out.pending.check_after)))
            out = await self._platform(PublishActivities.poll_publish,
                                       StepInput(result_id, part=part, handle=out.pending.handle), queue)
        assert out.post is not None
        return out.post

    # --- activity helpers ---

    async def _platform(self, fn, arg, queue: str):
        return await workflow.execute_activity_method(fn, arg, start_to_close_timeout=PLATFORM_TIMEOUT,
                                                      heartbeat_timeout=PLATFORM_HEARTBEAT,
                                                      retry_policy=PLATFORM_RETRY, task_queue=queue or None)

    async def _db(self, fn, arg):
        return await workflow.execute_activity_method(fn, arg, start_to_close_timeout=DB_TIMEOUT,
                                                      retry_policy=DB_RETRY)


def _failure(result_id: str, err: ActivityError) -> TargetOutcome:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else {}
        code = details.get("code") if isinstance(details, dict) else None
        if cause.type == "Unverifiable":
            return TargetOutcome(result_id, "unconfirmed", "unconfirmed", UNCONFIRMED_MESSAGE)
        return TargetOutcome(result_id, "failed", code or _snake(cause.type or "platform_error"), cause.message)
    return TargetOutcome(result_id, "failed", "platform_unavailable",
                         "The platform kept failing; Herald gave up after retrying with backoff")


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
