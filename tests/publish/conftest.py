"""The stack the publish tests share: schedules may fall due a second ahead, and an immediate post's answer
waits for its fan-out."""

from __future__ import annotations

import pytest

from tests.conftest import start_stack


@pytest.fixture
async def pstack(database, temporal_env):
    s, close = await start_stack(database, temporal_env, schedule_lead_seconds=1, immediate_publish_wait_seconds=30)
    try:
        yield s
    finally:
        await close()
