"""Sandbox accounts for the benchmark: connected to Herald, and usable directly by the baseline.

The sandbox enforces each platform's per-user rate limits (X: 100 posts per 15 minutes), so every platform
gets a pool of accounts and posts take them round-robin. The baseline sends the same publish request
Herald's adapter sends, with the same account's token, so the sandbox does the same work for both.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx

from adapters.linkedin import LINKEDIN_VERSION
from bench.baseline import HttpCall
from store.db import Database
from store.models import Profile, SocialAccount
from tests.support.accounts import connect_bluesky, connect_oauth

PLATFORMS = ("twitter", "linkedin", "bluesky")
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


@dataclass
class Account:
    id: str
    platform: str
    external_id: str
    token: str

    def publish_call(self, sandbox_url: str, text: str) -> HttpCall:
        """The one HTTP request that creates a text post on this account's platform."""
        bearer = {"Authorization": f"Bearer {self.token}"}
        if self.platform == "twitter":
            return HttpCall("POST", f"{sandbox_url}/twitter/2/tweets", bearer, {"text": text})
        if self.platform == "linkedin":
            return HttpCall("POST", f"{sandbox_url}/linkedin/rest/posts",
                            {**bearer, "LinkedIn-Version": LINKEDIN_VERSION, "X-Restli-Protocol-Version": "2.0.0"},
                            {"author": f"urn:li:person:{self.external_id}", "commentary": text,
                             "visibility": "PUBLIC", "lifecycleState": "PUBLISHED",
                             "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                                              "thirdPartyDistributionChannels": []},
                             "isReshareDisabledByAuthor": False})
        record = {"$type": "app.bsky.feed.post", "text": text,
                  "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        return HttpCall("POST", f"{sandbox_url}/bluesky/xrpc/com.atproto.repo.createRecord", bearer,
                        {"repo": self.external_id, "collection": "app.bsky.feed.post", "record": record})


class Pools:
    """Round-robin account pools, one per platform."""

    def __init__(self, accounts: dict[str, list[Account]]):
        self.accounts = accounts
        self._cursors = {p: itertools.cycle(accs) for p, accs in accounts.items()}

    def targets(self, n: int, offset: int = 0) -> list[Account]:
        """n accounts cycling through the platforms (distinct accounts while n <= 3 x pool size)."""
        return [next(self._cursors[PLATFORMS[(offset + j) % len(PLATFORMS)]]) for j in range(n)]


async def connect_pools(*, api_url: str, sandbox_url: str, settings, workspace_id: str, test_key: str,
                        per_platform: int, concurrency: int = 8) -> Pools:
    db = Database(settings.sqlalchemy_url)
    try:
        async with db.session() as s:
            s.add(Profile(workspace_id=workspace_id, livemode=False, name="Default"))
            await s.commit()
        ctx = SimpleNamespace(settings=SimpleNamespace(sandbox_url=sandbox_url), db=db,
                              tenant=SimpleNamespace(workspace_id=workspace_id))
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {test_key}"},
                                     timeout=30) as client:
            async def one(platform: str, i: int) -> str:
                async with gate:
                    if platform == "bluesky":
                        return await connect_bluesky(client, f"bench{i}.test")
                    return await connect_oauth(ctx, platform, f"bench{i}")

            ids = {p: await asyncio.gather(*(one(p, i) for i in range(per_platform))) for p in PLATFORMS}
        accounts: dict[str, list[Account]] = {}
        async with db.session() as s:
            for platform, account_ids in ids.items():
                accounts[platform] = []
                for account_id in account_ids:
                    row = await s.get(SocialAccount, account_id)
                    accounts[platform].append(Account(row.id, platform, row.external_account_id,
                                                      row.access_token or ""))
        return Pools(accounts)
    finally:
        await db.close()
