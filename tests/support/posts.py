"""Waiting on a post through the API, as a customer polling it would."""

from __future__ import annotations

import asyncio


async def wait_status(c, post_id: str, statuses: set[str], timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        post = (await c.get(f"/v1/social-posts/{post_id}")).json()["data"]
        if post["status"] in statuses:
            return post
        assert asyncio.get_running_loop().time() < deadline, post
        await asyncio.sleep(0.3)
