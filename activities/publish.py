"""Publish activities: every platform call of a post, and the bookkeeping around it.

The never-duplicate ledger (`publish_attempts`): an attempt row is committed
before the irreversible platform call, and completed as soon as the platform
answers. A later attempt for the same step that finds an unfinished row first
asks the platform (reconcile) whether the earlier call landed: found means it
is recorded, not posted again; "cannot tell" ends the target as `unconfirmed`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.accounts import AccountAccess, AccountAccessError, auth_of
from adapters.base import MediaRef, MediaSource, PartDraft, Pending, PostRef, Prepared
from adapters.errors import AdapterError, OutcomeUnknown, RateLimited, TransientError, Unverifiable
from adapters.registry import adapter_class
from observability import metrics
from store.db import Database
from store.events import emit, event_insert, new_event
from store.models import Media, Post, PostResult, PublishAttempt, SocialAccount, new_id, utcnow
from store.posts import result_json
from store.settings import Settings

TERMINAL_RESULT = {"published", "failed", "unconfirmed", "cancelled"}
# A platform step's target, post and account (see `_step_rows`), built once rather than on every step.
_STEP_ROWS = (select(PostResult, Post, SocialAccount)
              .join(Post, Post.id == PostResult.post_id)
              .join(SocialAccount, SocialAccount.id == PostResult.social_account_id)
              .where(PostResult.id == bindparam("result_id")))
HEARTBEAT_EVERY = 2.0
# The error code of an attempt that was interrupted and then not found on the platform by reconciliation.
INTERRUPTED = "interrupted"
UNCONFIRMED_MESSAGE = ("The platform did not confirm whether an earlier attempt was published, so Herald did not "
                       "post again (that could duplicate it). Check the account, then retry this result if the "
                       "post is missing.")


# --- inputs and outputs ---------------------------------------------------------


@dataclass
class TargetPlan:
    result_id: str
    platform: str
    part_count: int
    media_counts: list[int]
    has_comment: bool
    # Parts a previous run already published (retry continues after them).
    published: list[PostRef | None] = field(default_factory=list)
    comment_done: bool = False
    skip: bool = False
    # Platform calls of this target run on this queue (settings can give a slow platform its own).
    task_queue: str = ""
    # Per part: whether `prepare` does platform work (otherwise the publish step builds the draft itself).
    stages: list[bool] = field(default_factory=list)


@dataclass
class StepInput:
    result_id: str
    part: int = 0
    index: int = 0
    handle: dict[str, Any] | None = None
    media: list[MediaRef] = field(default_factory=list)
    reply_to: PostRef | None = None
    prepared: Prepared | None = None
    # The target's last platform step: its success marks the result published in the same transaction.
    final: bool = False


@dataclass
class StepOutput:
    media: MediaRef | None = None
    prepared: Prepared | None = None
    post: PostRef | None = None
    pending: Pending | None = None
    reconciled: bool = False


@dataclass
class TargetOutcome:
    result_id: str
    status: str  # published | failed | unconfirmed
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class PostOutcome:
    post_id: str
    status: str
    published: int
    failed: int


@dataclass
class PostStatusInput:
    post_id: str
    status: str


@dataclass
class BeginInput:
    post_id: str
    # An engineer's retry names the results to run again; otherwise every target of the post.
    result_ids: list[str] = field(default_factory=list)


@dataclass
class EditInput:
    post_id: str
    changes: dict[str, Any]


def app_error(exc: AdapterError) -> ApplicationError:
    """Adapter errors become Temporal failures whose type is the error class and whose retry is Temporal's."""
    delay = None
    if isinstance(exc, RateLimited) and exc.retry_after:
        delay = timedelta(seconds=max(1.0, min(exc.retry_after, 3600.0)))
    return ApplicationError(exc.message, {"code": exc.code}, type=type(exc).__name__,
                            non_retryable=not exc.retryable, next_retry_delay=delay)


def access_error(exc: AccountAccessError) -> ApplicationError:
    return ApplicationError(exc.message, {"code": exc.code}, type="AccountUnavailable", non_retryable=True)


@contextlib.asynccontextmanager
async def heartbeating(every: float = HEARTBEAT_EVERY):
    """Heartbeat while a platform call runs, so a dead worker's attempt is retried within the
    heartbeat timeout instead of the whole start-to-close timeout. The first beat comes after `every`
    seconds: most calls are over by then, and each beat is a call to the Temporal server."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class PublishActivities:
    def __init__(self, db: Database, accounts: AccountAccess, settings: Settings, media_urls=None, ingest=None):
        from activities.media import MediaIngest

        self.db = db
        self.accounts = accounts
        self.settings = settings
        # Resolves a media row to a download URL platforms can fetch (the media library).
        self.media_urls = media_urls
        # Takes a post's media_urls into the library once, so retries and pulling platforms reuse Herald's copy.
        self.ingest = ingest or MediaIngest(db, settings)

    # --- loading ---

    @staticmethod
    def _result(s: Session, result_id: str) -> PostResult:
        row = s.get(PostResult, result_id)
        if row is None:
            raise ApplicationError(f"result {result_id} not found", type="NotFound", non_retryable=True)
        return row

    async def _step_rows(self, result_id: str) -> tuple[PostResult, Post, SocialAccount]:
        """A target, its post and its account, read in one query at the start of a platform step; the step's
        writes reuse them."""
        result, post, account, _ = await self._ledger_rows(result_id, None)
        return result, post, account

    async def _ledger_rows(self, result_id: str,
                           label: str | None) -> tuple[PostResult, Post, SocialAccount, str | None]:
        """`_step_rows`, and for a step that creates something on the platform (`label`) on the target's first
        attempt, the step's ledger row written in the same transaction, ahead of the call as the ledger requires:
        one database round trip instead of two. Returns that row's id, or None when `_ledgered` must look for an
        earlier attempt first; `_unstart` takes the row back if the call is never made."""
        attempt_id = new_id("att")

        def work(conn):
            with Session(conn) as s:
                row = s.execute(_STEP_ROWS, {"result_id": result_id}).first()
            if label is None or row is None or row[0].attempts:
                return row, None
            _insert_attempt(conn, attempt_id, result_id, label)
            return row, attempt_id

        row, started = await self.db.unit(work, writes=label is not None)
        if row is None:
            raise ApplicationError(f"result {result_id} not found", type="NotFound", non_retryable=True)
        result, post, account = row
        if started:
            set_committed_value(result, "attempts", result.attempts + 1)
        return result, post, account, started

    async def _unstart(self, attempt_id: str, result_id: str) -> None:
        """Remove a ledger row written by `_ledger_rows` whose platform call was never made (the account could
        not be used, say), so that nothing reads it as an attempt whose outcome is unknown."""
        def work(conn):
            gone = conn.execute(delete(PublishAttempt.__table__).where(
                PublishAttempt.id == attempt_id, PublishAttempt.status == "started")).rowcount
            if gone:
                conn.execute(update(PostResult.__table__).where(PostResult.id == result_id)
                             .values(attempts=PostResult.attempts - 1))

        await self.db.unit(work)

    async def _ledgered_call(self, account: SocialAccount, result: PostResult, started: str | None, step):
        """Run `step(account, adapter, started)` through `_platform_call`; `started` (from `_ledger_rows`) goes
        to the first run only: a run after a token refresh starts its own attempt."""
        fresh = [started] if started else []
        try:
            return await self._platform_call(account, lambda acc, adapter: step(
                acc, adapter, fresh.pop() if fresh else None))
        finally:
            if fresh:
                await self._unstart(fresh.pop(), result.id)

    async def _sources(self, s, result: PostResult, post: Post, part: int) -> list[MediaSource]:
        """Every media item of a part as a presigned library URL; `media_urls` entries are fetched into the
        library first (once per result and URL: a retry finds the row stored by an earlier attempt)."""
        from activities.media import IngestError

        spec = result.parts[part]
        library: list[tuple[str, Media | None]] = []
        if spec.get("media_urls"):
            for i, url in enumerate(spec["media_urls"]):
                try:
                    async with heartbeating():
                        media = await self.ingest.ingest_url(url, post.workspace_id, post.livemode,
                                                             cache_key=result.id)
                except IngestError as exc:
                    raise ApplicationError(exc.message, {"code": exc.code},
                                           type="TransientError" if exc.retryable else "MediaRejected",
                                           non_retryable=not exc.retryable) from None
                library.append((f"media_urls[{i}]", media))
        library += [(media_id, await s.get(Media, media_id)) for media_id in spec.get("media_ids", [])]
        sources = []
        for name, media in library:
            if media is None or media.status != "uploaded":
                raise ApplicationError(f"media {name} is not uploaded or was deleted",
                                       {"code": "media_unavailable"}, type="MediaRejected", non_retryable=True)
            sources.append(MediaSource(url=self.media_urls(media), content_type=media.content_type,
                                       size_bytes=media.size_bytes, filename=media.filename))
        return sources

    def _draft(self, post: Post, result: PostResult, part: int, media: list[MediaRef],
               reply_to: PostRef | None) -> PartDraft:
        spec = result.parts[part]
        return PartDraft(text=spec.get("caption") or "", media=media, options=dict(result.platform_options),
                         reply_to=reply_to, tag=_tag(result.id, f"part:{part}"), title=post.title)

    @activity.defn(name="publish.list_results")
    async def list_results(self, post_id: str) -> list[str]:
        """The targets to publish, read at publish time so edits made while waiting are honoured."""
        async with self.db.session() as s:
            rows = (await s.exec(select(PostResult.id).where(PostResult.post_id == post_id)
                                 .order_by(PostResult.created_at, PostResult.id))).all()
        return list(rows)

    @activity.defn(name="publish.begin_post")
    async def begin_post(self, inp: BeginInput) -> list[TargetPlan]:
        """Mark the post publishing and plan every target, in one transaction, read at publish time so
        edits made while waiting are honoured."""
        def work(conn):
            conn.execute(update(Post.__table__).where(Post.id == inp.post_id)
                         .values(status="publishing", updated_at=utcnow()))
            query = select(PostResult).where(PostResult.post_id == inp.post_id)
            if inp.result_ids:
                query = query.where(PostResult.id.in_(inp.result_ids))
            with Session(conn) as s:
                return self._plans(s, s.scalars(query.order_by(PostResult.created_at, PostResult.id)).all())

        return await self.db.unit(work)

    @activity.defn(name="publish.plan_ahead")
    async def plan_ahead(self, post_id: str) -> list[TargetPlan]:
        """Every target as it stands while the post waits, changing nothing: what work can be done ahead."""
        async with self.db.session() as s:
            results = (await s.exec(select(PostResult).where(PostResult.post_id == post_id)
                                    .order_by(PostResult.created_at, PostResult.id))).all()
            return [self._plan(r, []) for r in results]

    @activity.defn(name="publish.plan_target")
    async def plan_target(self, step: StepInput) -> TargetPlan:
        """Runs only for workflows started before `begin_post` (see PublishPostWorkflow.run)."""
        def work(conn):
            with Session(conn) as s:
                [plan] = self._plans(s, [self._result(s, step.result_id)])
            return plan

        return await self.db.unit(work)

    def _plans(self, s: Session, results: list[PostResult]) -> list[TargetPlan]:
        """What is left to do for each target; marks those not yet published as publishing."""
        succeeded: list[PublishAttempt] = []
        # `attempts` counts a result's ledger rows: a target never tried has no step to skip.
        if any(r.attempts for r in results):
            succeeded = list(s.scalars(select(PublishAttempt).where(
                PublishAttempt.result_id.in_([r.id for r in results]),
                PublishAttempt.status == "succeeded")).all())
        plans = [self._plan(r, [a for a in succeeded if a.result_id == r.id]) for r in results]
        publishing = [plan.result_id for plan in plans if not plan.skip]
        if publishing:
            s.execute(update(PostResult.__table__).where(PostResult.id.in_(publishing))
                      .values(status="publishing", updated_at=utcnow()))
        return plans

    def _plan(self, result: PostResult, succeeded: list[PublishAttempt]) -> TargetPlan:
        """What is left to do for one target."""
        done = {a.step: a for a in succeeded}
        media_counts = [len(p.get("media_urls", [])) + len(p.get("media_ids", [])) for p in result.parts]
        adapter = adapter_class(result.platform)
        return TargetPlan(
            result_id=result.id, platform=result.platform, part_count=len(result.parts),
            media_counts=media_counts, has_comment=bool(result.first_comment),
            published=[_ref(done.get(f"part:{i}")) for i in range(len(result.parts))],
            comment_done="comment" in done, skip=result.status == "published",
            task_queue=self.settings.queue_for(result.platform),
            stages=[adapter.stages(n) for n in media_counts],
        )

    # --- media ---

    @activity.defn(name="publish.upload_media")
    async def upload_media(self, step: StepInput) -> StepOutput:
        result, post, account = await self._step_rows(step.result_id)
        async with self.db.session() as s:
            source = (await self._sources(s, result, post, step.part))[step.index]

        async def go(account, adapter):
            if step.handle is not None:
                return await adapter.poll_media(auth_of(account), step.handle)
            return await adapter.upload_media(auth_of(account), source)

        out = await self._platform_call(account, go)
        return StepOutput(pending=out) if isinstance(out, Pending) else StepOutput(media=out)

    # --- staging ---

    @activity.defn(name="publish.prepare")
    async def prepare(self, step: StepInput) -> StepOutput:
        result, post, account = await self._step_rows(step.result_id)
        draft = self._draft(post, result, step.part, step.media, step.reply_to)

        async def go(account, adapter):
            if step.handle is not None:
                return await adapter.poll_prepared(auth_of(account), step.handle)
            return await adapter.prepare(auth_of(account), draft)

        out = await self._platform_call(account, go)
        return StepOutput(pending=out) if isinstance(out, Pending) else StepOutput(prepared=out)

    # --- the irreversible call ---

    @activity.defn(name="publish.publish_part")
    async def publish_part(self, step: StepInput) -> StepOutput:
        label = f"part:{step.part}"
        result, post, account, started = await self._ledger_rows(step.result_id, label)
        # The platform stages nothing for this part: the draft is built here.
        prepared = step.prepared or Prepared(draft=self._draft(post, result, step.part, step.media, step.reply_to))

        async def go(account, adapter, started):
            auth = auth_of(account)

            async def reconcile(since: float):
                # Container platforms can tell from the staged container whether it was published.
                if prepared.handle and hasattr(adapter, "reconcile_prepared"):
                    return await adapter.reconcile_prepared(auth, prepared, since=since)
                return await adapter.reconcile(auth, prepared.draft, since=since)

            return await self._ledgered(result, post, label, prepared.draft, reconcile,
                                        lambda: adapter.publish(auth, prepared),
                                        lambda handle: adapter.poll_publish(auth, handle), final=step.final,
                                        started=started)

        return await self._ledgered_call(account, result, started, go)

    @activity.defn(name="publish.poll_publish")
    async def poll_publish(self, step: StepInput) -> StepOutput:
        label = f"part:{step.part}"
        result, post, account = await self._step_rows(step.result_id)

        async def go(account, adapter):
            out = await adapter.poll_publish(auth_of(account), step.handle or {})
            return await self._settle(result, post, label, out, final=step.final)

        return await self._platform_call(account, go)

    @activity.defn(name="publish.comment")
    async def comment(self, step: StepInput) -> StepOutput:
        result, post, account, started = await self._ledger_rows(step.result_id, "comment")
        parent = step.reply_to
        assert parent is not None
        draft = PartDraft(text=result.first_comment or "", reply_to=parent, tag=_tag(result.id, "comment"),
                          is_comment=True)

        async def go(account, adapter, started):
            auth = auth_of(account)
            return await self._ledgered(result, post, "comment", draft,
                                        lambda since: adapter.reconcile(auth, draft, since=since),
                                        lambda: adapter.comment(auth, parent, draft.text, tag=draft.tag), None,
                                        final=step.final, started=started)

        return await self._ledgered_call(account, result, started, go)

    async def _ledgered(self, result: PostResult, post: Post, label: str, draft: PartDraft, reconcile, create,
                        poll, *, final: bool, started: str | None = None):
        """Reconcile any unfinished earlier attempt, then record, call, and record the answer. `started` is this
        attempt's ledger row when `_ledger_rows` wrote it (there was no earlier attempt to reconcile).

        `result` and `post` were read at the start of this activity; the writes below update them in place.
        """
        tag = draft.tag
        previous = None
        # `attempts` counts every attempt row of the result, in the transaction that writes the row: with none
        # there is no earlier attempt of this step to look for.
        if started is None and result.attempts:
            async with self.db.session() as s:
                previous = (await s.exec(select(PublishAttempt).where(PublishAttempt.tag == tag)
                                         .order_by(PublishAttempt.started_at.desc()))).first()
        if previous is not None and previous.status == "succeeded":
            ref = _ref(previous)
            await self._succeeded(result, post, label, None, ref, final=final)
            return StepOutput(post=ref, reconciled=True)
        if previous is not None and previous.status == "processing" and poll is not None:
            return await self._settle(result, post, label, await poll(previous.external_data.get("handle", {})),
                                      final=final)
        if previous is not None and previous.status in ("started", "unknown"):
            try:
                found = await reconcile(previous.started_at.timestamp() - 60)
            except Unverifiable as exc:
                metrics.RECONCILIATIONS.labels(result.platform, "unverifiable").inc()
                await self._finish_attempt(previous.id, "unknown", error=exc)
                raise
            metrics.RECONCILIATIONS.labels(result.platform, "found" if found is not None else "not_found").inc()
            if found is not None:
                await self._succeeded(result, post, label, previous.id, found, final=final,
                                      note="reconciled: found on the platform after an interrupted attempt")
                activity.logger.info("reconciled %s: already on %s as %s", tag, result.platform, found.external_id)
                return StepOutput(post=found, reconciled=True)
            await self._finish_attempt(previous.id, "failed", error_code=INTERRUPTED,
                                       error_message="interrupted attempt not found on the platform; posting again")
        attempt_id = started or await self._start_attempt(result, label)
        try:
            out = await create()
        except OutcomeUnknown as exc:
            # The create may have landed: the next attempt follows up on the handle, or reconciles first.
            await self._finish_attempt(attempt_id, "processing" if exc.handle else "unknown", error=exc,
                                       handle=exc.handle)
            raise
        except TransientError as exc:  # by the adapter contract nothing was created: retry plainly
            await self._finish_attempt(attempt_id, "failed", error=exc)
            raise
        except AdapterError as exc:
            interrupted = await self._first_interrupted(tag, attempt_id) if exc.code == "duplicate_content" else None
            if interrupted is not None:
                # The platform refuses a repeat of a post an interrupted attempt made after all (its listing
                # had not shown it): record it if it shows now, otherwise it is unconfirmed, never failed.
                found = await reconcile(interrupted.timestamp() - 60)
                if found is not None:
                    await self._succeeded(result, post, label, attempt_id, found, final=final,
                                          note="reconciled: the platform refused a duplicate of an earlier attempt")
                    return StepOutput(post=found, reconciled=True)
                await self._finish_attempt(attempt_id, "unknown", error=exc)
                raise Unverifiable(f"{exc.message} (an earlier attempt may have published it)") from None
            await self._finish_attempt(attempt_id, "failed", error=exc)
            raise
        if isinstance(out, Pending):
            await self._finish_attempt(attempt_id, "processing", handle=out.handle)
            return StepOutput(pending=out)
        await self._succeeded(result, post, label, attempt_id, out, final=final)
        return StepOutput(post=out)

    async def _settle(self, result: PostResult, post: Post, label: str, out, *, final: bool) -> StepOutput:
        if isinstance(out, Pending):
            return StepOutput(pending=out)
        async with self.db.session() as s:
            att = (await s.exec(select(PublishAttempt.id).where(
                PublishAttempt.result_id == result.id, PublishAttempt.step == label)
                .order_by(PublishAttempt.started_at.desc()))).first()
        await self._succeeded(result, post, label, att, out, final=final)
        return StepOutput(post=out)

    async def _first_interrupted(self, tag: str, attempt_id: str):
        """When the first attempt of this tag whose outcome was never learned from the platform started, if any:
        one still open, or one closed as absent by a reconciliation (which a lagging listing can get wrong)."""
        async with self.db.session() as s:
            return (await s.exec(select(PublishAttempt.started_at).where(
                PublishAttempt.tag == tag, PublishAttempt.id != attempt_id,
                PublishAttempt.status.in_(("started", "unknown", "processing"))
                | PublishAttempt.error_code.in_((INTERRUPTED, "outcome_unknown")))
                .order_by(PublishAttempt.started_at))).first()

    async def _start_attempt(self, result: PostResult, label: str) -> str:
        attempt_id = new_id("att")
        await self.db.unit(lambda conn: _insert_attempt(conn, attempt_id, result.id, label))
        set_committed_value(result, "attempts", result.attempts + 1)
        return attempt_id

    async def _finish_attempt(self, attempt_id: str, status: str, *, error: AdapterError | None = None,
                              error_code: str | None = None, error_message: str | None = None,
                              handle: dict | None = None) -> None:
        values = _closing(status, error=error, error_message=error_message, handle=handle)
        if error_code:
            values["error_code"] = error_code
        await self.db.unit(lambda conn: conn.execute(
            update(PublishAttempt.__table__).where(PublishAttempt.id == attempt_id).values(**values)))

    async def _succeeded(self, result: PostResult, post: Post, label: str, attempt_id: str | None, ref: PostRef,
                         *, final: bool, note: str | None = None) -> None:
        """One transaction: the attempt succeeded; the first part's id becomes the result's (visible as soon as
        the platform answers); and on the target's last step the result is published."""
        first_id = ({"external_id": ref.external_id, "url": ref.url}
                    if label == "part:0" and result.external_id != ref.external_id else {})

        def write(conn):
            if attempt_id is not None:
                conn.execute(update(PublishAttempt.__table__)
                             .where(PublishAttempt.id == attempt_id, PublishAttempt.status != "succeeded")
                             .values(**_closing("succeeded", ref=ref, error_message=note)))
            if final:
                self._mark_result(conn, result, TargetOutcome(result.id, "published"), post, **first_id)
            elif first_id:
                _set(conn, result, **first_id, updated_at=utcnow())

        await self.db.unit(write)

    async def _platform_call(self, account: SocialAccount, fn):
        try:
            async with heartbeating():
                return await self.accounts.call(account, fn)
        except AccountAccessError as exc:
            raise access_error(exc) from None
        except AdapterError as exc:
            raise app_error(exc) from None

    # --- outcomes ---

    @activity.defn(name="publish.finish_target")
    async def finish_target(self, outcome: TargetOutcome) -> None:
        def work(conn):
            final = outcome
            with Session(conn) as s:
                if outcome.status == "failed":
                    # A call whose outcome was never settled may have published (e.g. the answer was lost, then
                    # reconciling failed too): that target is unconfirmed, never failed, so it is not lost.
                    unsettled = s.scalars(select(PublishAttempt.id).where(
                        PublishAttempt.result_id == outcome.result_id,
                        PublishAttempt.status.in_(("started", "unknown", "processing")))).first()
                    if unsettled is not None:
                        final = TargetOutcome(outcome.result_id, "unconfirmed", "unconfirmed", UNCONFIRMED_MESSAGE)
                result = self._result(s, outcome.result_id)
                post = s.get(Post, result.post_id)
            self._mark_result(conn, result, final, post)

        await self.db.unit(work)

    def _mark_result(self, conn, result: PostResult, outcome: TargetOutcome, post: Post, **also: Any) -> None:
        """A result's terminal status (with any other columns in `also`, in the same statement) and its webhook
        event; a repeat of the same outcome changes nothing but `also`."""
        if result.status in TERMINAL_RESULT and result.status == outcome.status:
            if also:
                _set(conn, result, **also, updated_at=utcnow())
            return
        metrics.RESULTS.labels(result.platform, outcome.status).inc()
        now = utcnow()
        changes: dict[str, Any] = {**also, "status": outcome.status, "error_code": outcome.error_code,
                                   "error_message": outcome.error_message, "updated_at": now}
        if outcome.status == "published":
            changes["published_at"] = now
            conn.execute(update(SocialAccount.__table__).where(SocialAccount.id == result.social_account_id)
                         .values(last_successful_post_at=now))
        _set(conn, result, **changes)
        event = "post.result.published" if outcome.status == "published" else "post.result.failed"
        conn.execute(event_insert(new_event(post.workspace_id, post.livemode, event,
                                            {"post_id": post.id, "result": result_json(result)})))

    @activity.defn(name="publish.set_post_status")
    async def set_post_status(self, inp: PostStatusInput) -> None:
        async with self.db.session() as s:
            post = await s.get(Post, inp.post_id)
            post.status = inp.status
            post.updated_at = utcnow()
            s.add(post)
            if inp.status == "cancelled":
                for r in (await s.exec(select(PostResult).where(PostResult.post_id == post.id))).all():
                    r.status = "cancelled"
                    s.add(r)
                await emit(s, post.workspace_id, post.livemode, "post.cancelled", {"post_id": post.id})
            await s.commit()
        if inp.status == "cancelled":
            metrics.POSTS.labels("cancelled").inc()

    @activity.defn(name="publish.finish_post")
    async def finish_post(self, post_id: str) -> PostOutcome:
        """Aggregate the results: published, partial or failed. A success is never rolled back."""
        def work(conn) -> tuple[PostOutcome, bool]:
            with Session(conn) as s:
                post = s.get(Post, post_id)
                results = s.scalars(select(PostResult).where(PostResult.post_id == post_id)).all()
            published = sum(r.status == "published" for r in results)
            failed = len(results) - published
            status = "published" if failed == 0 else ("failed" if published == 0 else "partial")
            outcome = PostOutcome(post_id=post_id, status=status, published=published, failed=failed)
            if post.status == status:  # a repeated run (local activities can run twice): emit nothing twice
                return outcome, False
            now = utcnow()
            changes = {"status": status, "updated_at": now}
            if published and post.published_at is None:
                changes["published_at"] = now
            conn.execute(update(Post.__table__).where(Post.id == post_id).values(**changes))
            conn.execute(event_insert(new_event(post.workspace_id, post.livemode, f"post.{status}", {
                "post_id": post.id, "status": status, "results": [result_json(r) for r in results]})))
            return outcome, True

        outcome, changed = await self.db.unit(work)
        if changed:
            metrics.POSTS.labels(outcome.status).inc()
        return outcome

    @activity.defn(name="publish.apply_edit")
    async def apply_edit(self, edit: EditInput) -> None:
        """Write a validated edit while the workflow holds off publishing."""
        from store.posts import apply_changes

        async with self.db.session() as s:
            post = await s.get(Post, edit.post_id)
            await apply_changes(s, post, edit.changes)
            await s.commit()


def _tag(result_id: str, label: str) -> str:
    """What identifies one step's post on the platform and its rows in the ledger."""
    return f"{result_id}:{label}"


def _insert_attempt(conn, attempt_id: str, result_id: str, label: str) -> None:
    """A step's ledger row, before its platform call, and the result's count of them."""
    conn.execute(insert(PublishAttempt.__table__).values(
        id=attempt_id, result_id=result_id, step=label, tag=_tag(result_id, label), status="started",
        external_data={}, started_at=utcnow()))
    conn.execute(update(PostResult.__table__).where(PostResult.id == result_id)
                 .values(attempts=PostResult.attempts + 1))


def _set(conn, result: PostResult, **values: Any) -> None:
    """Update a result's columns with one statement, and the loaded object to match (without the session
    tracking it: the hot path skips the ORM's flush)."""
    conn.execute(update(PostResult.__table__).where(PostResult.id == result.id).values(**values))
    for name, value in values.items():
        set_committed_value(result, name, value)


def _closing(status: str, *, ref: PostRef | None = None, error: AdapterError | None = None,
             error_message: str | None = None, handle: dict | None = None) -> dict[str, Any]:
    """The columns an attempt's answer sets."""
    values: dict[str, Any] = {"status": status}
    if ref is not None:
        values["external_id"] = ref.external_id
        values["external_data"] = {"url": ref.url, "data": ref.data}
    if handle is not None:
        values["external_data"] = {"handle": handle}
    if error is not None:
        values["error_code"], values["error_message"] = error.code, error.message[:2000]
    elif error_message:
        values["error_message"] = error_message
    if status != "processing":
        values["finished_at"] = utcnow()
    return values


def _ref(attempt: PublishAttempt | None) -> PostRef | None:
    if attempt is None or not attempt.external_id:
        return None
    data = attempt.external_data or {}
    return PostRef(external_id=attempt.external_id, url=data.get("url"), data=data.get("data", {}))
