"""ConnectSessionWorkflow (id `connect-session/<id>`): await the callback or the expiry timer.

The hosted callback reaches the workflow as an update (a signal with an
answer), so the page the user lands on can say whether it worked. A failed
exchange or a denied consent leaves the session pending with `last_error`, and
the workflow waits again, until a success, a cancel or the expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.connect import CallbackInput, ConnectActivities, ConnectOutcome, SessionStatusInput
    from workflows.policies import CONNECT_RETRY, CONNECT_TIMEOUT, DB_RETRY, DB_TIMEOUT


@dataclass
class ConnectSessionInput:
    session_id: str
    expires_at: datetime


@dataclass
class AuthorizationError:
    error_code: str
    error_message: str


@workflow.defn(name="ConnectSessionWorkflow")
class ConnectSessionWorkflow:
    @workflow.init
    def __init__(self, inp: ConnectSessionInput) -> None:
        # Set before any update can arrive, even one delivered in the very first workflow task.
        self.session_id = inp.session_id
        self.status = "pending"
        self.busy = False

    @workflow.run
    async def run(self, inp: ConnectSessionInput) -> str:
        remaining = (inp.expires_at - workflow.now()).total_seconds()
        try:
            await workflow.wait_condition(lambda: self.status != "pending", timeout=max(remaining, 0.001))
        except TimeoutError:
            pass
        await workflow.wait_condition(lambda: not self.busy)
        if self.status == "pending":
            expired = await self._db(ConnectActivities.set_status, SessionStatusInput(inp.session_id, "expired"))
            self.status = "expired" if expired else self.status
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status

    def _check_pending(self) -> None:
        if self.status != "pending":
            raise ApplicationError(f"The connect session is {self.status}", type="SessionClosed",
                                   non_retryable=True)

    @workflow.update
    async def callback(self, inp: CallbackInput) -> ConnectOutcome:
        self._check_pending()
        self.busy = True
        try:
            outcome: ConnectOutcome = await workflow.execute_activity_method(
                ConnectActivities.complete, inp, start_to_close_timeout=CONNECT_TIMEOUT, retry_policy=CONNECT_RETRY)
        finally:
            self.busy = False
        if outcome.status == "completed":
            self.status = "completed"
        return outcome

    @callback.validator
    def _validate_callback(self, inp: CallbackInput) -> None:
        self._check_pending()
        if self.busy:
            raise ApplicationError("Another attempt is in progress", type="Busy", non_retryable=True)

    @workflow.update
    async def authorization_error(self, err: AuthorizationError) -> None:
        self._check_pending()
        await self._db(ConnectActivities.record_error,
                       SessionStatusInput(self.session_id, "pending", err.error_code, err.error_message))

    @workflow.update
    async def cancel(self) -> str:
        self._check_pending()
        if await self._db(ConnectActivities.set_status, SessionStatusInput(self.session_id, "cancelled")):
            self.status = "cancelled"
        return self.status

    @workflow.query
    def current_status(self) -> str:
        return self.status

    async def _db(self, fn, arg):
        return await workflow.execute_activity_method(fn, arg, start_to_close_timeout=DB_TIMEOUT,
                                                      retry_policy=DB_RETRY)
