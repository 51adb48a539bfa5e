"""Idempotency for every creating POST, as one route class.

A router built with `route_class=IdempotentRoute` gets, on each POST that
carries an `Idempotency-Key` header (or, in dialect U, a body field
`idempotency_key`):
- the first request runs and its answer (any status below 500) is kept 24 h;
- the same key and body replays that answer with `Idempotent-Replayed: true`;
- the same key with another body, or while the first is still running, is a 409.
A request that fails with a 5xx releases the key, so the client can retry it.
The kept answer is sealed at rest like any other secret: some answers show one (a new API key, a webhook
secret) exactly once, and the replay must be able to show it again without the database ever holding it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from api.auth import Principal, authenticate
from api.deps import release_sessions
from api.errors import ApiError, Conflict, ValidationFailed, api_error_response, validation_response
from store import crypto
from store.models import IdempotencyRecord

MAX_KEY_LENGTH = 64
# Answers that say nothing about the request itself are not remembered.
NOT_STORED = {401, 409, 429}
BODY_CONTEXT = "idempotency_records.response_body"


def seal_body(body: str) -> str:
    return crypto.cipher().seal(body, BODY_CONTEXT)


def open_body(stored: str | None) -> str:
    """The kept answer; rows written before answers were sealed hold the JSON itself."""
    if stored and stored.startswith("v1."):
        return crypto.cipher().open(stored, BODY_CONTEXT)
    return stored or ""


def _key_from(request: Request, body: bytes, allow_body_field: bool) -> tuple[str | None, str]:
    header = request.headers.get("idempotency-key")
    if header is not None:
        return header, "Idempotency-Key"
    if allow_body_field and body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None, ""
        if isinstance(data, dict) and isinstance(data.get("idempotency_key"), str):
            return data["idempotency_key"], "idempotency_key"
    return None, ""


def request_fingerprint(request: Request, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(request.url.path.encode() + b"\n" + canonical).hexdigest()


class IdempotentRoute(APIRoute):
    """Wraps creating POST handlers with the idempotency protocol."""

    body_field = True  # dialect U accepts `idempotency_key` in the body

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if "POST" not in self.methods:
            return handler
        allow_body_field = self.body_field

        async def idempotent_handler(request: Request) -> Response:
            body = await request.body()
            key, source = _key_from(request, body, allow_body_field)
            if key is None:
                return await handler(request)
            if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
                raise ValidationFailed.one(source, "invalid_idempotency_key",
                                           f"Idempotency key must be 1 to {MAX_KEY_LENGTH} printable characters")
            principal = await authenticate(request)
            store = IdempotencyStore(request)
            replay = await store.claim(principal, key, request_fingerprint(request, body), request.url.path)
            if replay is not None:
                return replay
            try:
                response = await handler(request)
            except ApiError as exc:
                response = api_error_response(request, exc)
            except RequestValidationError as exc:
                response = validation_response(request, exc)
            except BaseException:
                await release_sessions(request)
                await store.release(principal, key)
                raise
            await release_sessions(request)
            if response.status_code >= 500 or response.status_code in NOT_STORED:
                await store.release(principal, key)
            else:
                await store.complete(principal, key, response)
            return response

        return idempotent_handler


class PlainIdempotentRoute(IdempotentRoute):
    """Header-only variant (dialect M has no body field)."""

    body_field = False


class IdempotencyStore:
    def __init__(self, request: Request):
        self.state = request.app.state.herald
        self.settings = self.state.settings

    def _scope(self, principal: Principal, key: str):
        return (IdempotencyRecord.workspace_id == principal.workspace_id,
                IdempotencyRecord.livemode == principal.livemode,
                IdempotencyRecord.key == key)

    async def claim(self, principal: Principal, key: str, fingerprint: str, route: str) -> Response | None:
        """Take the key for this request, or return the replay, or raise 409."""
        now = datetime.now(UTC)
        for _ in range(3):
            async with self.state.db.session() as s:
                s.add(IdempotencyRecord(
                    workspace_id=principal.workspace_id, livemode=principal.livemode, key=key, route=route,
                    request_hash=fingerprint, created_at=now,
                    expires_at=now + timedelta(hours=self.settings.idempotency_ttl_hours),
                ))
                try:
                    await s.commit()
                    return None
                except IntegrityError:
                    await s.rollback()
                rec = (await s.execute(select(IdempotencyRecord).where(*self._scope(principal, key)))).scalar_one_or_none()
                if rec is None:
                    continue  # released in between: try to take it again
                if rec.expires_at <= now:
                    await s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == rec.id))
                    await s.commit()
                    continue
                if rec.request_hash != fingerprint:
                    raise Conflict("Idempotency key was already used with a different request body")
                if rec.status == "done":
                    resp = Response(content=open_body(rec.response_body), status_code=rec.response_status or 200,
                                    media_type="application/json")
                    resp.headers["Idempotent-Replayed"] = "true"
                    return resp
                lease_over = rec.created_at + timedelta(seconds=self.settings.idempotency_lease_seconds) <= now
                if not lease_over:
                    raise Conflict("A request with this idempotency key is still in flight; retry shortly")
                # The process that held the key died: take it over, atomically.
                taken = await s.execute(
                    update(IdempotencyRecord)
                    .where(IdempotencyRecord.id == rec.id, IdempotencyRecord.created_at == rec.created_at)
                    .values(created_at=now)
                )
                await s.commit()
                if taken.rowcount == 1:
                    return None
        raise Conflict("A request with this idempotency key is still in flight; retry shortly")

    async def complete(self, principal: Principal, key: str, response: Response) -> None:
        async with self.state.db.session() as s:
            await s.execute(
                update(IdempotencyRecord).where(*self._scope(principal, key)).values(
                    status="done", response_status=response.status_code,
                    response_body=seal_body(bytes(response.body).decode("utf-8")),
                )
            )
            await s.commit()

    async def release(self, principal: Principal, key: str) -> None:
        async with self.state.db.session() as s:
            await s.execute(delete(IdempotencyRecord).where(*self._scope(principal, key),
                                                            IdempotencyRecord.status == "in_flight"))
            await s.commit()
