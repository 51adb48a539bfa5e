"""A stack for dialect M tests: scheduled posts may run a second ahead, immediate posts wait for the platforms."""

from __future__ import annotations

import pytest

from tests.conftest import start_stack


@pytest.fixture
async def mstack(database, temporal_env):
    s, close = await start_stack(database, temporal_env, schedule_lead_seconds=1,
                                 immediate_publish_wait_seconds=30)
    try:
        yield s
    finally:
        await close()
