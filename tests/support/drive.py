"""Test-side loop over Pending results (in production a workflow does this with timers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.base import Pending


async def settle(first: Any, poll: Callable[[dict[str, Any]], Awaitable[Any]], *, timeout: float = 20.0) -> Any:
    """Poll while the result is Pending, sleeping as the platform asked."""
    result = first
    deadline = time.monotonic() + timeout
    while isinstance(result, Pending):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still pending: {result}")
        await asyncio.sleep(min(result.check_after, 1.0))
        result = await poll(result.handle)
    return result
