"""`/v1/webhooks`: subscriptions to the events of API.md, their delivery log, and redelivery.

- The secret (`whsec_...`) is returned only by create and rotate; otherwise `secret_preview`. After a
  rotation the previous secret keeps signing (a second signature) for 24 hours.
- Each event reaches every matching active subscription of its workspace and mode that existed when the
  event happened, as one durable delivery (retried with exponential backoff, 5 s up to 1 h apart, for just
  over 24 hours). Every attempt is logged and listed under `/v1/webhooks/{id}/deliveries`.
- Failure policy: any 2xx is a success. A `410 Gone` disables the subscription at once. A delivery that
  has failed for good (all attempts used, or a refused address) counts as a failure; 50 failed deliveries
  in a row disable the subscription. A disabled subscription has `active=false` and `disabled_reason`;
  PATCH `active=true` re-enables it and clears the count.
- Live-mode deliveries only go to public addresses (checked on the resolved address at delivery time);
  test mode may also deliver to loopback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func
from sqlmodel import select

from api import pagination
from api.deps import PrincipalDep, SessionDep, SettingsDep, TemporalDep
from api.errors import ERROR_RESPONSES, Conflict, NotFound, ValidationFailed
from api.idempotency import IdempotentRoute
from api.ownership import get_owned, scoped
from api.validators import http_url
from store.events import EVENT_TYPES
from store.models import WebhookDelivery, WebhookEvent, WebhookSubscription, utcnow
from store.webhooks import ALL_EVENTS, new_secret, rotate, secret_preview

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES,
                   route_class=IdempotentRoute)


def _event_type(value: str) -> str:
    if value != ALL_EVENTS and value not in EVENT_TYPES:
        raise ValueError(f"unknown event type; use \"*\" or one of: {', '.join(EVENT_TYPES)}")
    return value


EventType = Annotated[str, AfterValidator(_event_type)]


def _unique(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


class WebhookBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _url = field_validator("url", check_fields=False)(http_url)
    _events = field_validator("events", check_fields=False)(_unique)


class WebhookCreate(WebhookBase):
    name: str = Field(default="", max_length=200)
    url: str = Field(max_length=2048, description="An absolute http(s) URL")
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES) + 1,
                                    description='Event types, or ["*"] for all')
    active: bool = True
    idempotency_key: str | None = Field(default=None, max_length=64)


class WebhookUpdate(WebhookBase):
    name: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2048)
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES) + 1)
    active: bool | None = None


class WebhookPublic(BaseModel):
    id: str
    object: str = "webhook"
    name: str
    url: str
    events: list[str]
    active: bool
    secret: str | None = Field(default=None, description="Present only in the create and rotate responses")
    secret_preview: str
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the previous secret signs as well (after a rotation)")
    consecutive_failures: int
    disabled_reason: str | None
    livemode: bool
    created_at: datetime
    updated_at: datetime


class WebhookOut(BaseModel):
    data: WebhookPublic


class WebhookList(BaseModel):
    data: list[WebhookPublic]
    meta: dict


class DeliveryPublic(BaseModel):
    id: str
    object: str = "webhook_delivery"
    webhook_id: str
    event_id: str
    event_type: str
    attempt: int
    status: str
    response_status: int | None
    duration_ms: int | None
    error: str | None
    livemode: bool
    created_at: datetime


class DeliveryList(BaseModel):
    data: list[DeliveryPublic]
    meta: dict


class Redelivery(BaseModel):
    object: str = "webhook_redelivery"
    webhook_id: str
    event_id: str
    first_attempt: int
    livemode: bool


class RedeliveryOut(BaseModel):
    data: Redelivery


class Deleted(BaseModel):
    id: str
    object: str = "webhook"
    deleted: bool = True


class DeletedOut(BaseModel):
    data: Deleted


def public(sub: WebhookSubscription, secret: str | None = None) -> WebhookPublic:
    return WebhookPublic(id=sub.id, name=sub.name, url=sub.url, events=sub.events, active=sub.active,
                         secret=secret, secret_preview=sub.secret_preview,
                         previous_secret_expires_at=sub.previous_secret_expires_at,
                         consecutive_failures=sub.consecutive_failures, disabled_reason=sub.disabled_reason,
                         livemode=sub.livemode, created_at=sub.created_at, updated_at=sub.updated_at)


@router.get("", response_model=WebhookList)
async def list_webhooks(principal: PrincipalDep, session: SessionDep, page: pagination.PageDep) -> dict:
    query = scoped(WebhookSubscription, principal)
    rows = (await session.exec(pagination.apply(query, WebhookSubscription, page))).all()
    return pagination.envelope(list(rows), page, public)


@router.post("", status_code=201, response_model=WebhookOut)
async def create_webhook(body: WebhookCreate, principal: PrincipalDep, session: SessionDep) -> WebhookOut:
    secret = new_secret()
    sub = WebhookSubscription(workspace_id=principal.workspace_id, livemode=principal.livemode, name=body.name,
                              url=body.url, events=body.events, active=body.active, secret=secret,
                              secret_preview=secret_preview(secret))
    session.add(sub)
    await session.commit()
    return WebhookOut(data=public(sub, secret))


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: str, principal: PrincipalDep, session: SessionDep) -> WebhookOut:
    return WebhookOut(data=public(await get_owned(session, WebhookSubscription, webhook_id, principal, "Webhook")))


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update_webhook(webhook_id: str, body: WebhookUpdate, principal: PrincipalDep,
                         session: SessionDep) -> WebhookOut:
    sub = await get_owned(session, WebhookSubscription, webhook_id, principal, "Webhook")
    changes = body.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise ValidationFailed.one(name, "required", f"{name} cannot be null")
        setattr(sub, name, value)
    if changes.get("active") is True:
        sub.disabled_reason = None
        sub.consecutive_failures = 0
    sub.updated_at = utcnow()
    session.add(sub)
    await session.commit()
    return WebhookOut(data=public(sub))


@router.delete("/{webhook_id}", response_model=DeletedOut)
async def delete_webhook(webhook_id: str, principal: PrincipalDep, session: SessionDep) -> DeletedOut:
    """Deletes the subscription and its delivery log; deliveries still retrying stop at their next attempt."""
    sub = await get_owned(session, WebhookSubscription, webhook_id, principal, "Webhook")
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id))
    await session.delete(sub)
    await session.commit()
    return DeletedOut(data=Deleted(id=webhook_id))


@router.post("/{webhook_id}/rotate", response_model=WebhookOut)
async def rotate_secret(webhook_id: str, principal: PrincipalDep, session: SessionDep) -> WebhookOut:
    sub = await get_owned(session, WebhookSubscription, webhook_id, principal, "Webhook")
    now = utcnow()
    secret = rotate(sub, now)
    sub.updated_at = now
    session.add(sub)
    await session.commit()
    return WebhookOut(data=public(sub, secret))


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(
    webhook_id: str, principal: PrincipalDep, session: SessionDep, page: pagination.PageDep,
    event_id: Annotated[str | None, Query(max_length=40, description="Only attempts for this event")] = None,
    status: Annotated[str | None, Query(pattern="^(succeeded|failed)$")] = None,
) -> dict:
    """Every delivery attempt, newest first."""
    sub = await get_owned(session, WebhookSubscription, webhook_id, principal, "Webhook")
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == event_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    rows = list((await session.exec(pagination.apply(query, WebhookDelivery, page))).all())
    event_ids = {r.event_id for r in rows}
    types = dict((await session.exec(select(WebhookEvent.id, WebhookEvent.type)
                                     .where(WebhookEvent.id.in_(event_ids)))).all()) if event_ids else {}

    def render(row: WebhookDelivery) -> DeliveryPublic:
        return DeliveryPublic(id=row.id, webhook_id=sub.id, event_id=row.event_id, event_type=types[row.event_id],
                              attempt=row.attempt, status=row.status, response_status=row.response_status,
                              duration_ms=row.duration_ms, error=row.error, livemode=sub.livemode,
                              created_at=row.created_at)

    return pagination.envelope(rows, page, render)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202, response_model=RedeliveryOut)
async def redeliver(webhook_id: str, delivery_id: str, principal: PrincipalDep, session: SessionDep,
                    settings: SettingsDep, temporal: TemporalDep) -> RedeliveryOut:
    """Send that delivery's event to this webhook again, as a new delivery (with its own retries)."""
    from workflows.webhooks import DeliveryPolicy, start_delivery

    sub = await get_owned(session, WebhookSubscription, webhook_id, principal, "Webhook")
    row = (await session.exec(select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == sub.id))).first()
    if row is None:
        raise NotFound("Delivery")
    if not sub.active:
        raise Conflict("The webhook is disabled; set active=true first")
    event = await session.get(WebhookEvent, row.event_id)
    logged = (await session.exec(select(func.max(WebhookDelivery.attempt)).where(
        WebhookDelivery.subscription_id == sub.id, WebhookDelivery.event_id == event.id))).one()
    first_attempt = (logged or 0) + 1
    if not await start_delivery(temporal, settings.task_queue, event, sub, DeliveryPolicy(),
                                first_attempt=first_attempt, again=True):
        raise Conflict("This event is still being delivered to this webhook; wait for it to finish")
    return RedeliveryOut(data=Redelivery(webhook_id=sub.id, event_id=event.id, first_attempt=first_attempt,
                                         livemode=sub.livemode))
