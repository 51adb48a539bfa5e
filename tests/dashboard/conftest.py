"""A running Herald with an operator password, on SQLite and PostgreSQL like every database test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.conftest import Stack, start_stack
from tests.dashboard.support import PASSWORD


async def started(database, temporal_env, **overrides):
    stack, close = await start_stack(database, temporal_env, **overrides)
    async with stack.client() as c:
        for _ in range(100):
            if (await c.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
    return stack, close


@pytest_asyncio.fixture
async def dstack(database, temporal_env) -> AsyncIterator[Stack]:
    """No worker: pages and forms only change rows."""
    stack, close = await started(database, temporal_env, worker=False, operator_password=PASSWORD)
    try:
        yield stack
    finally:
        await close()


@pytest_asyncio.fixture
async def pubstack(database, temporal_env) -> AsyncIterator[Stack]:
    """With a worker, for posts that really publish to the sandbox platforms."""
    stack, close = await started(database, temporal_env, operator_password=PASSWORD,
                                 immediate_publish_wait_seconds=30)
    try:
        yield stack
    finally:
        await close()
