"""Webhook events as an outbox: written in the same transaction as the change they describe."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import WebhookEvent

EVENT_TYPES = (
    "account.connected", "account.disconnected", "account.reauth_required",
    "connect_session.completed", "connect_session.expired",
    "post.scheduled", "post.published", "post.partial", "post.failed", "post.cancelled",
    "post.result.published", "post.result.failed",
)


def new_event(workspace_id: str, livemode: bool, type_: str, data: dict[str, Any]) -> WebhookEvent:
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_}")
    return WebhookEvent(workspace_id=workspace_id, livemode=livemode, type=type_, data=data)


def event_insert(event: WebhookEvent):
    """One INSERT, not the ORM's flush: events are written on every publish, and nothing reads the object back
    from the transaction that writes it."""
    return insert(WebhookEvent.__table__).values(
        id=event.id, workspace_id=event.workspace_id, livemode=event.livemode, type=event.type, data=event.data,
        created_at=event.created_at)


async def emit(session: AsyncSession, workspace_id: str, livemode: bool, type_: str,
               data: dict[str, Any]) -> WebhookEvent:
    event = new_event(workspace_id, livemode, type_, data)
    await session.execute(event_insert(event))
    return event
