"""Lookups scoped to the caller's workspace and mode: a foreign id is simply not found."""

from __future__ import annotations

from typing import TypeVar

from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import Principal
from api.errors import NotFound

T = TypeVar("T", bound=SQLModel)


def scoped(model: type[T], principal: Principal):
    """A select of `model` limited to the principal's workspace and mode."""
    return select(model).where(model.workspace_id == principal.workspace_id, model.livemode == principal.livemode)


async def get_owned(session: AsyncSession, model: type[T], id_: str, principal: Principal, what: str) -> T:
    row = (await session.exec(scoped(model, principal).where(model.id == id_))).first()
    if row is None:
        raise NotFound(what)
    return row
