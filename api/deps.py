"""Annotated dependencies shared by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.auth import Principal, authenticate
from api.errors import ServiceUnavailable
from api.state import AppState
from store.settings import Settings


def app_state(request: Request) -> AppState:
    return request.app.state.herald


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    async with app_state(request).db.session() as s:
        yield s


def settings(request: Request) -> Settings:
    return app_state(request).settings


def temporal(request: Request) -> Client:
    client = app_state(request).temporal
    if client is None:
        raise ServiceUnavailable("The workflow engine is not reachable yet; retry shortly")
    return client


StateDep = Annotated[AppState, Depends(app_state)]
SessionDep = Annotated[AsyncSession, Depends(session)]
SettingsDep = Annotated[Settings, Depends(settings)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
# The workspace a request acts for: its id and mode come from the API key.
WorkspaceDep = PrincipalDep
TemporalDep = Annotated[Client, Depends(temporal)]
