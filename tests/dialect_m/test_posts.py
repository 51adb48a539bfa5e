"""Dialect M posts: the seed's publish and schedule requests against sandbox platforms, over real HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from tests.dialect_m.support import END_USER, allow_redirect, connect_platform, m_client
from tests.support.accounts import sandbox_posts

PUBLISH_BODY = {"externalUserId": "user_123", "title": "Launch update",
                "content": "Testing mypostshare direct posting from docs.", "platforms": ["linkedin"],
                "metadata": {"source": "api-docs"}}
SCHEDULE_BODY = {"externalUserId": "user_123", "content": "Scheduled via mypostshare docs page.",
                 "platforms": ["linkedin", "twitter"], "scheduleAt": "2026-03-22T09:30:00.000Z",
                 "metadata": {"campaign": "launch-week"}}


async def onboard(stack, m: httpx.AsyncClient, *platforms: str) -> None:
    """The seed's quickstart: upsert the end user, then connect each platform through the hosted flow."""
    await allow_redirect(stack)
    assert (await m.post("/v1/end-users", json=END_USER)).status_code == 200
    async with httpx.AsyncClient(timeout=30) as http:
        for platform in platforms:
            await connect_platform(m, http, platform)


def in_seconds(seconds: float) -> str:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def post_count(stack) -> int:
    async with stack.db.session() as s:
        return (await s.execute(text("SELECT count(*) FROM posts"))).scalar_one()


async def test_seed_publish_now_and_read_back_in_both_dialects(mstack):
    """The seed's immediate publish answers 201 with request- and platform-level status once LinkedIn has
    the post; GET and the list return it; dialect U reads the same post with its metadata and title."""
    async with m_client(mstack, mstack.tenant.test_key) as m:
        await onboard(mstack, m, "linkedin")
        r = await m.post("/v1/posts", json=PUBLISH_BODY)
        assert r.status_code == 201, r.text
        post = r.json()
        assert set(post) == {"id", "mode", "status", "externalUserId", "platformResults"}
        assert post["mode"] == "immediate" and post["status"] == "published"
        assert post["externalUserId"] == "user_123"
        [result] = post["platformResults"]
        assert result["platform"] == "linkedin" and result["status"] == "published"
        assert result["externalId"].startswith("urn:li:")
        assert len(await sandbox_posts(mstack, "linkedin")) == 1

        r = await m.get(f"/v1/posts/{post['id']}")
        assert r.status_code == 200 and r.json() == post
        listed = (await m.get("/v1/posts", params={"externalUserId": "user_123", "status": "published"})).json()
        assert listed == [{"id": post["id"], "mode": "immediate", "status": "published",
                           "externalUserId": "user_123"}]

    async with mstack.client(mstack.tenant.test_key) as u:
        seen = (await u.get(f"/v1/social-posts/{post['id']}")).json()["data"]
        assert seen["status"] == "published" and seen["title"] == "Launch update"
        assert seen["caption"] == PUBLISH_BODY["content"]
        assert seen["results"][0]["external_id"] == result["externalId"]
    async with mstack.db.session() as s:
        row = (await s.execute(text("SELECT dialect, external_user_id, metadata FROM posts"))).one()
    assert row[0] == "m" and row[1] == "user_123"
    assert (row[2] if isinstance(row[2], dict) else json.loads(row[2])) == {"source": "api-docs"}


async def test_seed_schedule_then_it_publishes(mstack):
    """The seed's schedule request (with a future scheduleAt) answers 201 scheduled with no results yet;
    when the time comes both platforms get the post and GET shows each platform's result."""
    async with m_client(mstack, mstack.tenant.test_key) as m:
        await onboard(mstack, m, "linkedin", "twitter")
        at = in_seconds(4)
        r = await m.post("/v1/posts/scheduled", json={**SCHEDULE_BODY, "scheduleAt": at})
        assert r.status_code == 201, r.text
        post = r.json()
        assert post == {"id": post["id"], "mode": "scheduled", "status": "scheduled", "externalUserId": "user_123",
                        "scheduleAt": at, "platformResults": []}
        assert (await m.get(f"/v1/posts/{post['id']}")).json() == post
        listed = (await m.get("/v1/posts", params={"status": "scheduled"})).json()
        assert [p["id"] for p in listed] == [post["id"]]
        assert (await m.get("/v1/posts", params={"status": "published"})).json() == []

        for _ in range(100):
            done = (await m.get(f"/v1/posts/{post['id']}")).json()
            if done["status"] == "published":
                break
            await asyncio.sleep(0.3)
        assert done["status"] == "published" and done["scheduleAt"] == at, done
        assert sorted((res["platform"], res["status"]) for res in done["platformResults"]) == [
            ("linkedin", "published"), ("twitter", "published")]
        assert all(res["externalId"] for res in done["platformResults"])
    for platform in ("linkedin", "twitter"):
        assert len(await sandbox_posts(mstack, platform)) == 1


async def test_list_filters(mstack):
    """externalUserId, status, platform, dateFrom and dateTo narrow the list; bad filters are 422."""
    async with m_client(mstack, mstack.tenant.test_key) as m:
        await onboard(mstack, m, "linkedin", "twitter")
        a = (await m.post("/v1/posts", json={**PUBLISH_BODY, "platforms": ["twitter"]})).json()
        b = (await m.post("/v1/posts/scheduled", json={**SCHEDULE_BODY, "platforms": ["linkedin"],
                                                         "scheduleAt": in_seconds(3600)})).json()

        async def ids(params: dict) -> list[str]:
            return [p["id"] for p in (await m.get("/v1/posts", params=params)).json()]

        assert await ids({}) == [b["id"], a["id"]]
        assert await ids({"platform": "twitter"}) == [a["id"]]
        assert await ids({"platform": "linkedin", "status": "scheduled"}) == [b["id"]]
        assert await ids({"externalUserId": "someone_else"}) == []
        today = datetime.now(UTC).date().isoformat()
        assert await ids({"dateFrom": today, "dateTo": today}) == [b["id"], a["id"]]
        assert await ids({"dateTo": "2020-01-01"}) == []
        assert await ids({"dateFrom": in_seconds(60)}) == []
        for params, field in (({"status": "bogus"}, "status"), ({"platform": "myspace"}, "platform"),
                              ({"dateFrom": "yesterday"}, "dateFrom")):
            r = await m.get("/v1/posts", params=params)
            assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == field, r.text


async def test_dialect_u_post_is_visible_in_dialect_m(mstack):
    """A post created through /v1/social-posts is readable (and listed) at /api/v1/posts."""
    async with m_client(mstack, mstack.tenant.test_key) as m:
        await onboard(mstack, m, "twitter")
        [conn] = (await m.get("/v1/end-users/user_123/connections")).json()
    async with mstack.client(mstack.tenant.test_key) as u:
        r = await u.post("/v1/social-posts", json={"caption": "From dialect U", "account_ids": [conn["id"]]})
        assert r.status_code == 200, r.text
        u_post = r.json()["data"]
    async with m_client(mstack, mstack.tenant.test_key) as m:
        seen = (await m.get(f"/v1/posts/{u_post['id']}")).json()
        assert seen == {"id": u_post["id"], "mode": "immediate", "status": "published", "externalUserId": None,
                        "platformResults": [{"platform": "twitter", "status": "published",
                                             "externalId": u_post["results"][0]["external_id"]}]}
        assert [p["id"] for p in (await m.get("/v1/posts")).json()] == [u_post["id"]]


async def test_idempotency_key_header_replays_the_same_post(mstack):
    """The same Idempotency-Key and body replays the first answer; another body is a 409; one platform post."""
    async with m_client(mstack, mstack.tenant.test_key) as m:
        await onboard(mstack, m, "linkedin")
        headers = {"Idempotency-Key": "order-42"}
        first = await m.post("/v1/posts", json=PUBLISH_BODY, headers=headers)
        again = await m.post("/v1/posts", json=PUBLISH_BODY, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        other = await m.post("/v1/posts", json={**PUBLISH_BODY, "content": "different"}, headers=headers)
        assert other.status_code == 409 and other.json()["error"]["code"] == "CONFLICT"
    assert len(await sandbox_posts(mstack, "linkedin")) == 1 and await post_count(mstack) == 1


async def test_post_bad_input_creates_nothing(mstack):
    """Unknown end user, an unconnected or unsupported platform, empty platforms, a past scheduleAt (the
    seed's own example date), missing content and broken JSON: each a clear 4xx naming the field; no post."""
    async with m_client(mstack, mstack.tenant.test_key) as m:
        await onboard(mstack, m, "linkedin")
        cases = [
            ("/v1/posts", {**PUBLISH_BODY, "externalUserId": "user_404"}, 404, None),
            ("/v1/posts", {**PUBLISH_BODY, "platforms": ["linkedin", "twitter"]}, 422, "platforms[1]"),
            ("/v1/posts", {**PUBLISH_BODY, "platforms": ["linkedin", "myspace"]}, 422, "platforms[1]"),
            ("/v1/posts", {**PUBLISH_BODY, "platforms": ["linkedin", "linkedin"]}, 422, "platforms[1]"),
            ("/v1/posts", {**PUBLISH_BODY, "platforms": []}, 422, "platforms"),
            ("/v1/posts", {k: v for k, v in PUBLISH_BODY.items() if k != "content"}, 422, "content"),
            ("/v1/posts", {**PUBLISH_BODY, "mediaUrl": "ftp://files.example.com/a.png"}, 422, "mediaUrl"),
            ("/v1/posts", {**PUBLISH_BODY, "content": "x" * 3001}, 422, "platforms[0].content"),
            ("/v1/posts", {**PUBLISH_BODY, "scheduleAt": in_seconds(600)}, 422, "scheduleAt"),
            ("/v1/posts/scheduled", {**SCHEDULE_BODY, "platforms": ["linkedin"]}, 422, "scheduleAt"),
            ("/v1/posts/scheduled", {k: v for k, v in SCHEDULE_BODY.items() if k != "scheduleAt"}, 422,
             "scheduleAt"),
        ]
        for path, body, status, field in cases:
            r = await m.post(path, json=body)
            assert r.status_code == status, (body, r.text)
            err = r.json()["error"]
            assert set(err) == {"code", "normalized_code", "message", "issues"} and err["message"]
            if field:
                assert err["issues"][0]["field"] == field, (body, err)
        past = await m.post("/v1/posts/scheduled", json={**SCHEDULE_BODY, "platforms": ["linkedin"]})
        assert "scheduleAt is in the past" in past.json()["error"]["message"]
        r = await m.post("/v1/posts", content=b'{"externalUserId": "user_123", ',
                         headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["issues"][0]["code"] == "malformed_json"
        r = await m.post("/v1/posts", json={**PUBLISH_BODY, "platforms": "linkedin"})
        assert r.status_code == 400
    assert await post_count(mstack) == 0 and await sandbox_posts(mstack, "linkedin") == []


async def test_other_workspaces_posts_are_not_found(mstack):
    """Another workspace cannot read, list or post for this workspace's post and end user."""
    async with m_client(mstack, mstack.tenant.test_key) as m:
        await onboard(mstack, m, "linkedin")
        post = (await m.post("/v1/posts", json=PUBLISH_BODY)).json()
    other = await mstack.new_tenant("Other")
    async with m_client(mstack, other.test_key) as theirs:
        assert (await theirs.get(f"/v1/posts/{post['id']}")).status_code == 404
        assert (await theirs.get("/v1/posts")).json() == []
        assert (await theirs.post("/v1/posts", json=PUBLISH_BODY)).status_code == 404
    async with mstack.client(other.test_key) as theirs_u:
        assert (await theirs_u.get(f"/v1/social-posts/{post['id']}")).status_code == 404
    async with m_client(mstack, "hrld_test_" + "x" * 32) as nobody:
        r = await nobody.get("/v1/posts")
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
