"""PublishPostWorkflow (id `post/<id>`): wait until due, fan out, aggregate.

- Waits until `scheduled_at`. The starter has the server hold the run until then (a start delay, see
  `temporal_client.start_delay`), so a waiting post costs no workflow task, timer or cached run. An update
  starts a held run at once: `edit` (which also carries content changes) or `cancel`. From then on it sleeps
  on a timer that further updates can move or stop; an edit is applied by an activity while the workflow
  holds off publishing, so the edit the API accepted is what runs.
- Fans out one branch per target account, concurrently. Inside a branch:
  media, then each thread part in order (each replying to the previous one),
  then the first comment. Platform processing (media, containers, TikTok's
  publish status) is waited on here, with timers, never inside an adapter.
- Every platform call is an activity with the platform retry policy; the
  activity records each attempt durably and reconciles before any retry.
- A scheduled post with media does its preparation `prep_lead_seconds` before it is due:
  it uploads every part's media and stages the first part's container, so that
  at the due time only the publish call is left. An edit discards that work
  (it may have staged the old caption); it is done again, ahead if there is
  still time, otherwise at the due time.
"""

# No `from __future__ import annotations`: the SDK reads the handlers' type hints for every run, in the sandbox,
# and evaluating them from strings there was about 3% of the worker's CPU (py-spy).
import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

# Passed through, not re-imported by the sandbox for every run: types and constants, no workflow logic
# (re-running the payload dataclasses' definitions for each run was about 5% of the worker's CPU, py-spy).
with workflow.unsafe.imports_passed_through():
    from activities.publish import (
        BeginInput,
        EditInput,
        PostOutcome,
        PostStatusInput,
        PublishActivities,
        StepInput,
        StepOutput,
        TargetOutcome,
        TargetPlan,
        UNCONFIRMED_MESSAGE,
    )
    from adapters.base import PostRef
    # Not `from workflows import search_attributes`: that finds the attribute missing on the run's own copy of the
    # package and loads the submodule from disk again for every run.
    import workflows.search_attributes as sa
    from workflows.policies import (
        DB_RETRY,
        DB_TIMEOUT,
        PLATFORM_HEARTBEAT,
        PLATFORM_RETRY,
        PLATFORM_TIMEOUT,
        POLL_LIMIT,
    )
    from workflows.publish_payloads import (
        CancelRequest,
        EditRequest,
        Prepped,
        PublishPostInput,
        WorkflowState,
    )

# Runs started with `revision` 0 that reach their publish step with this patch take the lean path: one local
# activity plans every target, a platform that stages nothing skips `prepare`, and the last platform step of a
# target records its success itself. Runs started with revision 1 (publish_payloads.REVISION) always do, without
# the marker. Histories made before the patch replay on the original path (`_fan_out_v1`), which can go once
# every run started before the patch has closed.
LEAN_FAN_OUT = "lean-fan-out"
# Runs started with `revision` 0 and a `prep_lead_seconds` prepare ahead of their due time when they pass this
# patch (see the module docstring); later runs with a `prep_lead_seconds` always do.
PREP_AHEAD = "prep-ahead"


@workflow.defn(name="PublishPostWorkflow")
class PublishPostWorkflow:
    def __init__(self) -> None:
        self.phase = "waiting"
        self.scheduled_at: datetime | None = None
        self.cancelled = False
        self.changed = False
        self.editing = 0
        self.results: dict[str, str] = {}
        # Result id -> platform, for the activity summaries the Temporal UI shows.
        self.platforms: dict[str, str] = {}
        # Work done ahead of the due time: every edit starts a new generation, whose preparation is redone.
        self.prep_lead: float | None = None
        self.generation = 0
        self.prepped_generation: int | None = None
        self.prep_tasks: dict[str, asyncio.Task] = {}

    @workflow.run
    async def run(self, inp: PublishPostInput) -> PostOutcome:
        self.scheduled_at = inp.scheduled_at
        self.platform_retry = inp.platform_retry.policy() if inp.platform_retry else PLATFORM_RETRY
        if inp.prep_lead_seconds and inp.scheduled_at and (inp.revision >= 1 or workflow.patched(PREP_AHEAD)):
            self.prep_lead = inp.prep_lead_seconds
        await self._wait_until_due(inp.post_id)
        if self.cancelled:
            await self._drop_prepared()
            self.phase = "cancelled"
            workflow.upsert_search_attributes([sa.STATUS.value_set("cancelled")])
            await workflow.wait_condition(workflow.all_handlers_finished)
            return PostOutcome(post_id=inp.post_id, status="cancelled", published=0, failed=0)

        self.phase = "publishing"
        if inp.revision < 1 or inp.scheduled_at is not None:  # else the starter set it
            workflow.upsert_search_attributes([sa.STATUS.value_set("publishing")])
        lean = inp.revision >= 1 or workflow.patched(LEAN_FAN_OUT)
        outcome = await (self._fan_out(inp) if lean else self._fan_out_v1(inp))
        self.phase = "done"
        workflow.upsert_search_attributes([sa.STATUS.value_set(outcome.status)])
        return outcome

    # --- the timer ---

    async def _wait_until_due(self, post_id: str) -> None:
        while not self.cancelled or self.editing:
            remaining = (self.scheduled_at - workflow.now()).total_seconds() if self.scheduled_at else 0.0
            if (remaining <= 0 or self.cancelled) and self.editing == 0:
                return
            wake = remaining
            if self.prep_lead is not None and self.prepped_generation != self.generation and not self.editing:
                if remaining <= self.prep_lead:
                    await self._prepare_ahead(post_id)
                    continue  # an edit may have come in meanwhile: look again
                wake = remaining - self.prep_lead
            self.changed = False
            try:
                await workflow.wait_condition(lambda: self.changed,
                                              timeout=timedelta(seconds=wake) if wake > 0 else None)
            except asyncio.TimeoutError:
                pass

    # --- preparation ahead of the due time ---

    async def _prepare_ahead(self, post_id: str) -> None:
        """Start preparing every target in the background; the fan-out takes what is ready (or waits for it)."""
        await self._drop_prepared()
        self.prepped_generation = self.generation
        plans: list[TargetPlan] = await self._local(PublishActivities.plan_ahead, post_id)
        for plan in plans:
            if not plan.skip and (any(plan.media_counts) or any(plan.stages)):
                self.platforms[plan.result_id] = plan.platform
                self.prep_tasks[plan.result_id] = asyncio.create_task(self._prepare_target(plan))

    async def _prepare_target(self, plan: TargetPlan) -> Prepped:
        done = Prepped()
        for part in range(plan.part_count):
            done.media[part] = [await self._until_done(PublishActivities.upload_media,
                                                       StepInput(plan.result_id, part=part, index=i), "media",
                                                       plan.task_queue)
                                for i in range(plan.media_counts[part])]
        # Later parts reply to the part before them, whose id only exists once it is published.
        if plan.stages and plan.stages[0]:
            done.prepared = await self._until_done(PublishActivities.prepare,
                                                   StepInput(plan.result_id, part=0, media=done.media[0]),
                                                   "prepared", plan.task_queue)
        return done

    async def _prepared_for(self, result_id: str) -> Prepped | None:
        """What was prepared ahead for this target, for the content that is publishing now; None to do it now."""
        task = self.prep_tasks.get(result_id)
        if task is None or self.prepped_generation != self.generation:
            return None
        try:
            return await task
        except (ActivityError, ApplicationError):
            return None  # whatever failed ahead fails (or succeeds) again now, and is reported then

    async def _drop_prepared(self) -> None:
        tasks, self.prep_tasks = list(self.prep_tasks.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _check_waiting(self) -> None:
        if self.phase != "waiting" or self.cancelled:
            raise ApplicationError(f"the post is {self.phase if not self.cancelled else 'cancelled'}; "
                                   "it can no longer be changed", type="NotEditable", non_retryable=True)

    @workflow.update
    async def edit(self, req: EditRequest) -> WorkflowState:
        self._check_waiting()
        self.editing += 1
        self.generation += 1
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

    # --- the fan-out: one branch per target account ---

    async def _fan_out(self, inp: PublishPostInput) -> PostOutcome:
        plans: list[TargetPlan] = await self._local(PublishActivities.begin_post,
                                                    BeginInput(inp.post_id, inp.retry_result_ids))
        self.results = {plan.result_id: "pending" for plan in plans}
        await asyncio.gather(*(self._target(plan, lean=True) for plan in plans))
        await self._drop_prepared()  # anything prepared for a target that is not publishing
        return await self._local(PublishActivities.finish_post, inp.post_id)

    async def _fan_out_v1(self, inp: PublishPostInput) -> PostOutcome:
        await self._db(PublishActivities.set_post_status, PostStatusInput(inp.post_id, "publishing"))
        result_ids = inp.retry_result_ids or await self._db(PublishActivities.list_results, inp.post_id)
        self.results = {r: "pending" for r in result_ids}

        async def target(result_id: str) -> None:
            self.results[result_id] = "publishing"
            try:
                plan = await self._db(PublishActivities.plan_target, StepInput(result_id))
            except ActivityError as err:
                await self._db(PublishActivities.finish_target, _failure(result_id, err))
                return
            await self._target(plan, lean=False)

        await asyncio.gather(*(target(result_id) for result_id in result_ids))
        return await self._db(PublishActivities.finish_post, inp.post_id)

    async def _target(self, plan: TargetPlan, *, lean: bool) -> None:
        result_id = plan.result_id
        self.results[result_id] = "publishing"
        self.platforms[result_id] = plan.platform
        try:
            outcome = await self._publish_target(plan, lean)
        except ActivityError as err:
            outcome = _failure(result_id, err)
        if outcome is None:
            self.results[result_id] = "published"
            return
        await (self._local(PublishActivities.finish_target, outcome) if lean
               else self._db(PublishActivities.finish_target, outcome))
        self.results[result_id] = outcome.status

    async def _publish_target(self, plan: TargetPlan, lean: bool) -> TargetOutcome | None:
        """Publish what is left of one target. None when it needs no finishing: already published, or (lean)
        its last platform step recorded the success."""
        if plan.skip:
            return None
        result_id, queue = plan.result_id, plan.task_queue
        comment_left = plan.has_comment and not plan.comment_done
        parent: PostRef | None = None
        first: PostRef | None = None
        finished = False
        ahead = await self._prepared_for(result_id) if lean else None
        for part in range(plan.part_count):
            done = plan.published[part] if part < len(plan.published) else None
            if done is None:
                final = lean and part == plan.part_count - 1 and not comment_left
                media = ahead.media[part] if ahead is not None else [
                    await self._until_done(PublishActivities.upload_media,
                                           StepInput(result_id, part=part, index=i), "media", queue)
                    for i in range(plan.media_counts[part])]
                prepared = ahead.prepared if ahead is not None and part == 0 else None
                if prepared is None and (not lean or plan.stages[part]):
                    prepared = await self._until_done(
                        PublishActivities.prepare, StepInput(result_id, part=part, media=media, reply_to=parent),
                        "prepared", queue)
                out: StepOutput = await self._platform(
                    PublishActivities.publish_part,
                    StepInput(result_id, part=part, prepared=prepared, media=media, reply_to=parent, final=final),
                    queue)
                done = out.post if out.pending is None else await self._poll_publish(result_id, part, out, queue,
                                                                                     final)
                finished = final
            parent = done
            first = first or done
        if comment_left and first is not None:
            await self._platform(PublishActivities.comment, StepInput(result_id, reply_to=first, final=lean), queue)
            finished = lean
        return None if finished else TargetOutcome(result_id=result_id, status="published")

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

    async def _poll_publish(self, result_id: str, part: int, out: StepOutput, queue: str, final: bool) -> PostRef:
        polls = 0
        while out.pending is not None:
            polls += 1
            if polls > POLL_LIMIT:
                raise ApplicationError("the platform did not finish publishing in time",
                                       {"code": "processing_timeout"}, type="Unverifiable", non_retryable=True)
            await workflow.sleep(timedelta(seconds=max(0.2, out.pending.check_after)))
            out = await self._platform(PublishActivities.poll_publish,
                                       StepInput(result_id, part=part, handle=out.pending.handle, final=final),
                                       queue)
        assert out.post is not None
        return out.post

    # --- activity helpers ---

    async def _platform(self, fn, arg, queue: str):
        return await workflow.execute_activity_method(fn, arg, start_to_close_timeout=PLATFORM_TIMEOUT,
                                                      heartbeat_timeout=PLATFORM_HEARTBEAT,
                                                      retry_policy=self.platform_retry, task_queue=queue or None,
                                                      summary=_summary(fn, arg, self.platforms.get(arg.result_id)))

    async def _db(self, fn, arg):
        return await workflow.execute_activity_method(fn, arg, start_to_close_timeout=DB_TIMEOUT,
                                                      retry_policy=DB_RETRY)

    async def _local(self, fn, arg):
        # Short database steps run in the worker beside the workflow: no task queue round trip.
        return await workflow.execute_local_activity_method(fn, arg, start_to_close_timeout=DB_TIMEOUT,
                                                            retry_policy=DB_RETRY)


def _summary(fn, step: StepInput, platform: str | None) -> str:
    """The line the Temporal UI shows for a platform call, e.g. "publish part 1 to bluesky". Metadata only:
    it is not part of what replay compares, so it can change without breaking running workflows."""
    part, where = step.part + 1, platform or "the platform"
    polling = step.handle is not None
    what = {
        "upload_media": (f"wait for media {step.index + 1} of part {part} on {where}" if polling
                         else f"upload media {step.index + 1} of part {part} to {where}"),
        "prepare": f"wait for part {part} to be ready on {where}" if polling else f"prepare part {part} on {where}",
        "publish_part": f"publish part {part} to {where}",
        "poll_publish": f"wait for part {part} to publish on {where}",
        "comment": f"post the first comment on {where}",
    }
    return what.get(fn.__name__, f"{fn.__name__} on {where}")


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
