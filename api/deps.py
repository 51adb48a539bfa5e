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
        # Registered so code that runs after the endpoint (idempotency bookkeeping) can release the
        # request's transaction first: on SQLite an unfinished write would otherwise lock it out.
        request.state.db_sessions = [*getattr(request.state, "db_sessions", []), s]
        yield s


async def release_sessions(request: Request) -> None:
    """Close the request's sessions now (rolling back anything uncommitted) instead of after the response."""
    for s in getattr(request.state, "db_sessions", []):
        await s.close()


# The dependencies below are `async def` although they do not await: FastAPI runs a plain `def` dependency in a
# worker thread, a thread hop on every request (about 1.5% of the API's CPU accepting posts, py-spy).
async def state(request: Request) -> AppState:
    return app_state(request)


async def settings(request: Request) -> Settings:
    return app_state(request).settings


async def temporal(request: Request) -> Client:
    client = app_state(request).temporal
    if client is None:
        raise ServiceUnavailable("The workflow engine is not reachable yet; retry shortly")
    return client


StateDep = Annotated[AppState, Depends(state)]
SessionDep = Annotated[AsyncSession, Depends(session)]
SettingsDep = Annotated[Settings, Depends(settings)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
# The workspace a request acts for: its id and mode come from the API key.
WorkspaceDep = PrincipalDep
TemporalDep = Annotated[Client, Depends(temporal)]
