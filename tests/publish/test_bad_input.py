"""Every bad post request of the issue gets a 4xx naming the field, and creates nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import start_stack
from tests.support.accounts import connect_bluesky, connect_oauth, sandbox_posts


@pytest.fixture
async def bstack(database, temporal_env):
    s, close = await start_stack(database, temporal_env)
    try:
        yield s
    finally:
        await close()


async def _counts(stack) -> tuple[int, int]:
    async with stack.db.session() as s:
        posts = (await s.execute(text("SELECT count(*) FROM posts"))).scalar_one()
        results = (await s.execute(text("SELECT count(*) FROM post_results"))).scalar_one()
    return posts, results


async def test_bad_post_requests(bstack):
    stack = bstack
    x = await connect_oauth(stack, "twitter", "badin")
    li = await connect_oauth(stack, "linkedin", "badin")
    pin = await connect_oauth(stack, "threads", "badin")
    other = await stack.new_tenant("Other")
    foreign = await connect_oauth(stack, "twitter", "foreigner", workspace_id=other.workspace_id)
    async with stack.client(stack.tenant.test_key) as c:
        bsky = await connect_bluesky(c, "badin.test")
        now = datetime.now(UTC)
        cases = [
            # (body, headers, expected status, expected field)
            ({"caption": "x", "account_ids": [x], "platform_posts": [{"account_id": x}]}, {}, 422, "platform_posts"),
            ({"caption": "neither"}, {}, 422, "account_ids"),
            ({"caption": "", "account_ids": [x]}, {}, 422, "account_ids[0].caption"),
            ({"account_ids": [x]}, {}, 422, "account_ids[0].caption"),
            ({"caption": "dup", "account_ids": [x, x]}, {}, 422, "account_ids[1]"),
            ({"caption": "many", "account_ids": [f"sa_{i}" for i in range(21)]}, {}, 422, "account_ids"),
            ({"platform_posts": [{"account_id": li, "caption": "a", "thread_position": 1},
                                 {"account_id": li, "caption": "b", "thread_position": 2}]}, {}, 422,
             "platform_posts[0].thread_position"),
            ({"platform_posts": [{"account_id": x, "caption": "a", "thread_position": 1},
                                 {"account_id": x, "caption": "b", "thread_position": 3}]}, {}, 422,
             "platform_posts[0].thread_position"),
            ({"platform_posts": [{"account_id": bsky, "caption": "a", "first_comment": "c"}]}, {}, 422,
             "platform_posts[0].first_comment"),
            ({"platform_posts": [{"account_id": pin, "caption": "a", "first_comment": "c"}]}, {}, 422,
             "platform_posts[0].first_comment"),
            ({"caption": "past", "account_ids": [x], "scheduled_at": (now - timedelta(hours=1)).isoformat()}, {}, 422,
             "scheduled_at"),
            ({"caption": "soon", "account_ids": [x], "scheduled_at": (now + timedelta(seconds=5)).isoformat()}, {},
             422, "scheduled_at"),
            ({"caption": "garbage", "account_ids": [x], "scheduled_at": "next tuesday"}, {}, 400, "scheduled_at"),
            ({"caption": "naive", "account_ids": [x], "scheduled_at": "2030-01-01T10:00:00"}, {}, 422, "scheduled_at"),
            ({"caption": "k", "account_ids": [x]}, {"Idempotency-Key": "k" * 65}, 422, "Idempotency-Key"),
            ({"platform_posts": [{"account_id": x, "caption": "o", "platform_options": {"colour": "red"}}]}, {}, 422,
             "platform_posts[0].platform_options.colour"),
            ({"caption": "foreign", "account_ids": [foreign]}, {}, 404, None),
            ({"caption": "unknown", "account_ids": ["sa_doesnotexist"]}, {}, 404, None),
            ({"caption": "m", "account_ids": [x], "media_ids": ["med_unknown"]}, {}, 422, "account_ids[0].media_ids[0]"),
            ({"caption": "x" * 281, "account_ids": [x]}, {}, 422, "account_ids[0].caption"),
            ({"caption": "status", "account_ids": [x], "status": "published"}, {}, 422, "status"),
            ({"caption": "url", "account_ids": [x], "media_urls": ["ftp://nope/a.png"]}, {}, 422, "media_urls[0]"),
        ]
        for body, headers, status, field in cases:
            r = await c.post("/v1/social-posts", json=body, headers=headers)
            assert r.status_code == status, (body, r.text)
            err = r.json()["error"]
            assert err["code"] in ("VALIDATION_ERROR", "NOT_FOUND"), err
            if field is not None:
                assert field in [i["field"] for i in err["issues"]], (body, err)
        r = await c.post("/v1/social-posts", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        r = await c.post("/v1/social-posts", json={"caption": 5, "account_ids": [x]})
        assert r.status_code == 400 and r.json()["error"]["issues"][0]["field"] == "caption"
    assert await _counts(stack) == (0, 0)
    assert await sandbox_posts(stack, "twitter") == []


async def test_test_keys_cannot_use_live_accounts(bstack):
    """An account connected in test mode is invisible (404) to a live key, and vice versa."""
    x = await connect_oauth(bstack, "twitter", "modey")
    async with bstack.client(bstack.tenant.live_key) as c:
        r = await c.post("/v1/social-posts", json={"caption": "live", "account_ids": [x]})
        assert r.status_code == 404
        assert (await c.get(f"/v1/accounts/{x}")).status_code == 404
    assert await _counts(bstack) == (0, 0)
