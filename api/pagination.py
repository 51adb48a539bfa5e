"""Opaque cursor pagination over (created_at, id), newest first."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import and_, or_

from api.errors import BadRequest


@dataclass(frozen=True)
class Page:
    limit: int
    after: tuple[datetime, str] | None


def encode_cursor(created_at: datetime, id_: str) -> str:
    raw = json.dumps({"t": created_at.isoformat(), "i": id_}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        created = datetime.fromisoformat(data["t"])
        if created.tzinfo is None or not isinstance(data["i"], str):
            raise ValueError
        return created, data["i"]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("cursor is not a cursor this API returned",
                         issues=[{"field": "cursor", "code": "invalid_cursor",
                                  "message": "Pass back `meta.next_cursor` unchanged"}]) from None


def page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1..100)")] = 20,
    cursor: Annotated[str | None, Query(max_length=512, description="`meta.next_cursor` of the previous page")] = None,
) -> Page:
    return Page(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[Page, Depends(page_params)]


def apply(query, model, page: Page):
    """Order newest first and start after the cursor; fetch one extra row to know `has_more`."""
    if page.after:
        created, id_ = page.after
        query = query.where(or_(model.created_at < created, and_(model.created_at == created, model.id < id_)))
    return query.order_by(model.created_at.desc(), model.id.desc()).limit(page.limit + 1)


def envelope(rows: list[Any], page: Page, render) -> dict[str, Any]:
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if has_more and rows else None
    return {"data": [render(r) for r in rows], "meta": {"next_cursor": next_cursor, "has_more": has_more}}
