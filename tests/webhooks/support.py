"""Webhook test helpers: a real receiver, short retries, and the outbox written the way Herald writes it."""

from __future__ import annotations

import asyncio
import inspect
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import FastAPI, Request, Response
from sqlmodel import select

from activities.webhooks import DeliveryPolicy
from store.events import emit
from store.models import WebhookDelivery, WebhookEvent

# Retries a test can wait for: 0.2 s, 0.4 s, 0.5 s, ...
FAST = DeliveryPolicy(first_retry=timedelta(milliseconds=200), max_retry_interval=timedelta(milliseconds=500),
                      max_attempts=6)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """A customer's endpoint: records every request and answers from `plan` (then `default`)."""

    url: str = ""
    plan: list[int] = field(default_factory=list)
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                status = self.plan.pop(0) if self.plan else self.default
                self.requests.append(Received(dict(request.headers), body, status))
            return Response(status_code=status, content=b"" if status < 300 else b"receiver says no")

        return app

    @property
    def hook(self) -> str:
        return f"{self.url}/hook"


async def emit_event(stack, type_: str, data: dict, *, livemode: bool = False,
                     workspace_id: str | None = None) -> str:
    """Write an event to the outbox the way every part of Herald does (`store.events.emit`)."""
    async with stack.db.session() as s:
        event = await emit(s, workspace_id or stack.tenant.workspace_id, livemode, type_, data)
        await s.commit()
        return event.id


async def wait_for(predicate, timeout: float = 20, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def deliveries(stack, subscription_id: str) -> list[WebhookDelivery]:
    async with stack.db.session() as s:
        return list((await s.exec(select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
                                  .order_by(WebhookDelivery.attempt))).all())


async def create_webhook(client, url: str, events: list[str] | None = None, **extra) -> dict:
    r = await client.post("/v1/webhooks", json={"url": url, "events": events or ["*"], **extra})
    assert r.status_code == 201, r.text
    return r.json()["data"]


async def dispatched(stack, event_id: str) -> bool:
    """Whether the outbox loop has started the event's delivery workflows."""
    async with stack.db.session() as s:
        return (await s.get(WebhookEvent, event_id)).dispatched_at is not None
