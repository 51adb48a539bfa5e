"""The API killed (SIGKILL) and restarted while clients create posts with idempotency keys and retry.

The API under test is a real uvicorn process. The sandbox platforms live in another process (the test's
own stack), so they keep their record across the API's restarts. Each client retries its request with the
same key after a dropped connection, a 5xx, or a 409 (the key's first request is still marked running until
its lease lapses). Every key must end with exactly one post, every post terminal, each target posted once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import start_stack
from tests.fault.support import PLATFORMS, tally, wait_terminal
from tests.support.accounts import connect_bluesky, connect_oauth
from tests.support.processes import spawn_api, stop
from tests.support.servers import free_port

POSTS = int(os.environ.get("HERALD_FAULT_API_POSTS", "120"))
RESTARTS = 3
CLIENTS = 12
RETRYABLE = {409, 500, 502, 503, 504}


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_api_restarts_lose_and_duplicate_nothing(database, temporal_env, tmp_path, request):
    rng = random.Random(os.environ.get("HERALD_FAULT_SEED"))
    stack, close = await start_stack(database, temporal_env, immediate_publish_wait_seconds=0,
                                     rate_limit_per_minute=100_000)
    port = free_port()
    log = tmp_path / "api.log"
    api = None
    try:
        async with stack.client(stack.tenant.test_key) as c:
            accounts = {"twitter": [await connect_oauth(stack, "twitter", f"restart{i}") for i in range(3)],
                        "linkedin": [await connect_oauth(stack, "linkedin", "restart")],
                        "bluesky": [await connect_bluesky(c, "restart.test")]}
        api = await asyncio.to_thread(spawn_api, stack.settings, port, log, sandbox_url=stack.settings.sandbox_url)
        retries = 0

        async def create(http: httpx.AsyncClient, i: int) -> str:
            nonlocal retries
            body = {"caption": f"restart {i}", "account_ids": [accounts[p][i % len(accounts[p])] for p in PLATFORMS]}
            for _ in range(200):
                try:
                    r = await http.post("/v1/social-posts", json=body, headers={"Idempotency-Key": f"restart-{i}"})
                except httpx.TransportError:
                    r = None
                if r is not None and r.status_code not in RETRYABLE:
                    assert r.status_code == 200, r.text
                    return r.json()["data"]["id"]
                retries += 1
                await asyncio.sleep(0.25)
            raise AssertionError(f"request {i} never succeeded")

        async def client(n: int, http: httpx.AsyncClient) -> list[str]:
            return [await create(http, i) for i in range(n, POSTS, CLIENTS)]

        async def restart() -> None:
            nonlocal api
            for _ in range(RESTARTS):
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                api.send_signal(signal.SIGKILL)
                await asyncio.to_thread(api.wait, 10)
                api = await asyncio.to_thread(spawn_api, stack.settings, port, log,
                                              sandbox_url=stack.settings.sandbox_url)

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                     headers={"Authorization": f"Bearer {stack.tenant.test_key}"}) as http:
            restarter = asyncio.create_task(restart())
            ids = [pid for batch in await asyncio.gather(*(client(n, http) for n in range(CLIENTS)))
                   for pid in batch]
            await restarter
            assert len(ids) == POSTS and len(set(ids)) == POSTS
            async with stack.db.session() as s:
                per_key = (await s.execute(text(
                    "SELECT idempotency_key, count(*) FROM posts WHERE workspace_id = :w GROUP BY idempotency_key"),
                    {"w": stack.tenant.workspace_id})).all()
            assert len(per_key) == POSTS and all(n == 1 for _, n in per_key), per_key
            posts = await wait_terminal(http, ids, timeout=120, temporal=temporal_env.client)
        result = await tally(stack, posts, "restart ")
        result.report(request.node, "api restarts", f"client_retries={retries}")
        assert result.duplicates == 0 and result.lost == 0 and result.failed == 0, result
        assert retries > 0, "no request was cut off by a restart"
    finally:
        stop(api)
        await close()
