"""Webhook activities: move events from the outbox into delivery workflows, and make one delivery attempt.

Where a delivery may go (SSRF guard): the receiver's host is resolved at delivery time with
`getaddrinfo`; every address it resolves to must be public (test mode may also reach loopback), or the
attempt fails permanently. The request is then sent to the checked IP itself, with the original `Host`
header and, for https, the original name as TLS SNI and certificate hostname (httpcore's `sni_hostname`
extension), so a second DNS answer (rebinding) can never redirect it. Each attempt uses a fresh connection,
so no connection made for one host name serves another that shares its IP. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client

from observability import metrics
from store.db import Database
from store.models import OperatorLog, WebhookDelivery, WebhookEvent, WebhookSubscription, utcnow
from store.settings import Settings
from store.webhooks import AddressRefused, check_resolved, matches, payload, signature_headers, signing_secrets
from workflows.policies import (
    WEBHOOK_BACKOFF,
    WEBHOOK_FAILURE_LIMIT,
    WEBHOOK_FIRST_RETRY,
    WEBHOOK_MAX_ATTEMPTS,
    WEBHOOK_MAX_RETRY_INTERVAL,
    WEBHOOK_REQUEST_TIMEOUT,
)

USER_AGENT = "Herald-Webhooks/1.0"
# What of a failing receiver's answer is kept in the delivery log.
ERROR_SNIPPET = 300


@dataclass
class DeliveryPolicy:
    """How a delivery retries; carried in the workflow input so a test (or an operator) can shorten it."""

    first_retry: timedelta = WEBHOOK_FIRST_RETRY
    max_retry_interval: timedelta = WEBHOOK_MAX_RETRY_INTERVAL
    backoff: float = WEBHOOK_BACKOFF
    max_attempts: int = WEBHOOK_MAX_ATTEMPTS
    failure_limit: int = WEBHOOK_FAILURE_LIMIT

    def delay_after(self, attempt: int) -> timedelta:
        """The wait after the `attempt`-th (1-based) failed attempt of one run."""
        seconds = self.first_retry.total_seconds() * self.backoff ** min(attempt - 1, 64)
        return timedelta(seconds=min(seconds, self.max_retry_interval.total_seconds()))


@dataclass
class DeliveryInput:
    event_id: str
    subscription_id: str
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    # A redelivery numbers its attempts after those already logged.
    first_attempt: int = 1


@dataclass
class DeliveryResult:
    status: str  # succeeded | failed | skipped
    attempts: int


@dataclass
class AttemptInput:
    event_id: str
    subscription_id: str
    attempt: int
    final: bool
    failure_limit: int = WEBHOOK_FAILURE_LIMIT


@dataclass
class AttemptOutcome:
    # succeeded | retry | failed (for good: last attempt, 410, refused address) | skipped (subscription gone)
    status: str
    response_status: int | None = None
    error: str | None = None


@dataclass
class DispatchInput:
    # None: the policy this code defines, so a running outbox loop picks up a deploy's new defaults.
    policy: DeliveryPolicy | None = None
    limit: int = 100


class WebhookActivities:
    def __init__(self, db: Database, client: Client, settings: Settings):
        self.db = db
        self.client = client
        self.settings = settings
        self._tls = ssl.create_default_context()

    # --- outbox -> workflows ---------------------------------------------------------

    @activity.defn(name="webhooks.dispatch_pending")
    async def dispatch_pending(self, inp: DispatchInput) -> int:
        """Start a delivery workflow for every matching active subscription of each undispatched event.

        An event is marked dispatched only after its workflows are started, and starting is idempotent
        (workflow id per event and subscription), so a crash in between neither loses nor doubles one."""
        from workflows.webhooks import start_delivery

        policy = inp.policy or DeliveryPolicy()
        async with self.db.session() as s:
            events = (await s.exec(select(WebhookEvent).where(WebhookEvent.dispatched_at.is_(None))
                                   .order_by(WebhookEvent.created_at, WebhookEvent.id).limit(inp.limit))).all()
            subscribers: dict[tuple[str, bool], list[WebhookSubscription]] = {}
            for event in events:
                scope = (event.workspace_id, event.livemode)
                if scope not in subscribers:
                    subscribers[scope] = list((await s.exec(select(WebhookSubscription).where(
                        WebhookSubscription.workspace_id == event.workspace_id,
                        WebhookSubscription.livemode == event.livemode,
                        WebhookSubscription.active.is_(True)))).all())
                for sub in subscribers[scope]:
                    # A subscription receives what happens after it exists, never an older backlog.
                    if sub.created_at <= event.created_at and matches(sub, event.type):
                        await start_delivery(self.client, self.settings.task_queue, event, sub, policy)
                event.dispatched_at = utcnow()
                s.add(event)
                await s.commit()
        return len(events)

    # --- one attempt -------------------------------------------------------------------

    @activity.defn(name="webhooks.attempt")
    async def attempt(self, inp: AttemptInput) -> AttemptOutcome:
        """Send the event once, log the attempt, and apply the failure policy (410, refused, N in a row)."""
        async with self.db.session() as s:
            sub = await s.get(WebhookSubscription, inp.subscription_id)
            event = await s.get(WebhookEvent, inp.event_id)
        if sub is None or event is None or not sub.active:
            metrics.WEBHOOK_ATTEMPTS.labels("skipped").inc()
            return AttemptOutcome("skipped", error="The subscription was deleted or disabled")
        now = utcnow()
        body = payload(event)
        headers = {**signature_headers(signing_secrets(sub, now), event.id, int(now.timestamp()), body),
                   "Content-Type": "application/json", "User-Agent": USER_AGENT}
        started = time.monotonic()
        refused = False
        status_code: int | None = None
        try:
            async with asyncio.timeout(WEBHOOK_REQUEST_TIMEOUT.total_seconds()):
                status_code, error = await self._send(sub.url, body, headers, livemode=sub.livemode)
        except AddressRefused as exc:
            refused, error = True, f"Refused: {exc}"
        except httpx.InvalidURL as exc:
            refused, error = True, f"Refused: the URL cannot be used ({exc})"
        except TimeoutError:
            error = f"Timed out after {WEBHOOK_REQUEST_TIMEOUT.total_seconds():.0f} s"
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:ERROR_SNIPPET] if str(exc) else type(exc).__name__
        duration_ms = int((time.monotonic() - started) * 1000)
        succeeded = status_code is not None and 200 <= status_code < 300
        row = WebhookDelivery(subscription_id=sub.id, event_id=event.id, attempt=inp.attempt,
                              status="succeeded" if succeeded else "failed", response_status=status_code,
                              duration_ms=duration_ms, error=error)
        try:
            return await self._record(row, inp, succeeded=succeeded, gone=status_code == 410, refused=refused)
        except IntegrityError:  # the subscription was deleted while the request was in flight
            metrics.WEBHOOK_ATTEMPTS.labels("skipped").inc()
            return AttemptOutcome("skipped", status_code, error)

    async def _send(self, url: str, body: bytes, headers: dict[str, str], *,
                    livemode: bool) -> tuple[int, str | None]:
        target = httpx.URL(url)
        host = target.raw_host.decode("ascii")
        port = target.port or (443 if target.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        addresses = check_resolved(host, [info[4][0] for info in infos], livemode=livemode)
        extensions = {"sni_hostname": host.strip("[]")} if target.scheme == "https" else {}
        last_error: httpx.ConnectError | None = None
        for address in addresses:
            try:
                async with httpx.AsyncClient(verify=self._tls, follow_redirects=False, trust_env=False,
                                             timeout=WEBHOOK_REQUEST_TIMEOUT.total_seconds()) as http, \
                        http.stream("POST", target.copy_with(host=address), content=body,
                                    headers={**headers, "Host": target.netloc.decode("ascii")},
                                    extensions=extensions) as response:
                    if 200 <= response.status_code < 300:
                        return response.status_code, None
                    return response.status_code, await _error_of(response)
            except httpx.ConnectError as exc:  # try the host's next address
                last_error = exc
        assert last_error is not None
        raise last_error

    async def _record(self, row: WebhookDelivery, inp: AttemptInput, *, succeeded: bool, gone: bool,
                      refused: bool) -> AttemptOutcome:
        outcome = AttemptOutcome("succeeded" if succeeded else "retry", row.response_status, row.error)
        async with self.db.session() as s:
            s.add(row)
            table = WebhookSubscription
            if succeeded:
                await s.execute(update(table).where(table.id == inp.subscription_id)
                                .values(consecutive_failures=0))
            elif gone:
                outcome.status = "failed"
                await self._disable(s, inp.subscription_id, "The receiver answered 410 Gone")
            elif refused or inp.final:
                # The delivery has failed for good: it counts towards disabling the subscription.
                outcome.status = "failed"
                await s.execute(update(table).where(table.id == inp.subscription_id)
                                .values(consecutive_failures=table.consecutive_failures + 1))
                failures = (await s.exec(select(table.consecutive_failures)
                                         .where(table.id == inp.subscription_id))).one()
                if failures >= inp.failure_limit:
                    await self._disable(s, inp.subscription_id, f"{failures} deliveries in a row failed")
            await s.commit()
        metrics.WEBHOOK_ATTEMPTS.labels(outcome.status).inc()
        return outcome

    @staticmethod
    async def _disable(s, subscription_id: str, reason: str) -> None:
        table = WebhookSubscription
        changed = await s.execute(update(table).where(table.id == subscription_id, table.active.is_(True))
                                  .values(active=False, disabled_reason=reason, updated_at=utcnow()))
        if changed.rowcount != 1:
            return
        sub = (await s.exec(select(table).where(table.id == subscription_id))).one()
        s.add(OperatorLog(workspace_id=sub.workspace_id, livemode=sub.livemode, kind="pipeline", level="warn",
                          message=f"Webhook {sub.id} disabled: {reason}"))
        activity.logger.warning("webhook %s disabled: %s", subscription_id, reason)


async def _error_of(response: httpx.Response) -> str:
    """"HTTP 503: <start of the body>", reading no more of the body than is kept."""
    snippet = b""
    async for chunk in response.aiter_bytes():
        snippet += chunk
        if len(snippet) >= ERROR_SNIPPET:
            break
    text = snippet[:ERROR_SNIPPET].decode("utf-8", "replace").strip()
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")
