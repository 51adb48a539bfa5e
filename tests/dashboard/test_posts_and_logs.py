"""Posts with per-platform results, retrying a failed one from the dashboard, and the operator log."""

from __future__ import annotations

import asyncio
import html
import re
from urllib.parse import quote

from store.models import OperatorLog
from tests.dashboard.support import Dashboard, failed_post, wait_logged
from tests.support.accounts import connect_bluesky, connect_oauth, fault, sandbox_posts


def post_card(page: str, post_id: str) -> str:
    start = page.index(f'<div class="card post" id="{post_id}">')
    return page[start:page.index("</table>", start)]


async def wait_post(api, post_id: str, status: str, timeout: float = 40) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        post = (await api.get(f"/v1/social-posts/{post_id}")).json()["data"]
        if post["status"] == status:
            return post
        assert asyncio.get_running_loop().time() < deadline, post
        await asyncio.sleep(0.3)


async def test_a_failed_result_is_retried_from_the_dashboard_and_publishes_once(pubstack):
    stack = pubstack
    ws = stack.tenant.workspace_id
    x = await connect_oauth(stack, "twitter", "alice")
    async with stack.client(stack.tenant.test_key) as api, Dashboard(stack.url) as d:
        bsky = await connect_bluesky(api)
        await fault(stack, "bluesky", "reject_content", path_contains="createRecord")
        r = await api.post("/v1/social-posts", json={"caption": "Launch day", "account_ids": [x, bsky]})
        post = r.json()["data"]
        assert post["status"] == "partial", post
        failed = next(res for res in post["results"] if res["platform"] == "bluesky")
        published = next(res for res in post["results"] if res["platform"] == "twitter")
        assert failed["status"] == "failed" and failed["error_code"]

        await d.logged_in()
        posts_url = f"/dashboard/apps/{ws}/posts"
        card = post_card(await d.page(posts_url), post["id"])
        assert 'badge partial">partial' in card and "Launch day" in card
        workflow_id = quote(f"post/{post['id']}", safe="")
        workflow = f"{stack.settings.temporal_ui_url}/namespaces/default/workflows/{workflow_id}"
        assert f'class="temporal" href="{workflow}"' in card
        failed_row = card[card.index("<td>bluesky</td>"):].split("</tr>")[0]
        assert f"<code>{failed['error_code']}</code>" in failed_row
        assert html.escape(failed["error_message"], quote=True) in failed_row
        assert f"/results/{failed['id']}/retry" in failed_row
        assert f"/results/{published['id']}/retry" not in card  # only failed results offer a retry

        for params, shown in (({"status": "partial"}, True), ({"status": "published"}, False),
                              ({"platform": "bluesky"}, True), ({"platform": "youtube"}, False),
                              ({"mode": "live"}, False)):
            assert (post["id"] in await d.page(posts_url, **params)) is shown, params
        assert (await d.get(posts_url, status="exploded")).status_code == 400

        r = await d.post(f"{posts_url}/{post['id']}/results/{published['id']}/retry")
        assert r.status_code == 409 and "Only failed or unconfirmed results" in r.text

        r = await d.post(f"{posts_url}/{post['id']}/results/{failed['id']}/retry")
        assert r.status_code == 303 and "done=retry_started" in r.headers["location"]
        done = await wait_post(api, post["id"], "published")
        assert {res["status"] for res in done["results"]} == {"published"}
        card = post_card(await d.page(posts_url), post["id"])
        assert 'badge published">published' in card and "/retry" not in card
    assert len(await sandbox_posts(stack, "bluesky")) == 1
    assert len(await sandbox_posts(stack, "twitter")) == 1  # the published result was not posted again


async def test_posts_are_filtered_by_end_user_and_paged(dstack):
    ws = dstack.tenant.workspace_id
    ids = [(await failed_post(dstack, ws, external_user_id=user))[0] for user in ("user_1", "user_2", "user_1")]
    async with Dashboard(dstack.url) as d:
        await d.logged_in()
        posts_url = f"/dashboard/apps/{ws}/posts"
        shown = re.findall(r'<div class="card post" id="(post_\w+)">', await d.page(posts_url,
                                                                               external_user_id="user_1"))
        assert shown == [ids[2], ids[0]]
        page = await d.page(posts_url, limit="2")
        assert re.findall(r'<div class="card post" id="(post_\w+)">', page) == [ids[2], ids[1]]
        following = html.unescape(re.search(r'id="next" href="([^"]+)"', page).group(1))
        rest = await d.page(following)
        assert re.findall(r'<div class="card post" id="(post_\w+)">', rest) == [ids[0]] and 'id="next"' not in rest


def _request_ids(page: str) -> list[str]:
    """The request id of each log row shown ("—" for a pipeline event, which has none)."""
    return re.findall(r'<tr class="log">.*?<td><code>([^<]+)</code></td>', page, re.S)


async def test_logs_are_searched_by_request_post_and_account_with_cursor_paging(dstack):
    stack = dstack
    ws = stack.tenant.workspace_id
    async with stack.client(stack.tenant.test_key) as api:
        bsky = await connect_bluesky(api, "logger.test")
        post = (await api.post("/v1/social-posts", json={"caption": "draft", "account_ids": [bsky],
                                                          "status": "draft"})).json()["data"]
        for n in range(5):
            r = await api.get(f"/v1/social-posts/{post['id']}", headers={"X-Request-Id": f"dash-req-{n:04d}"})
            assert r.status_code == 200
        assert (await api.get(f"/v1/accounts/{bsky}", headers={"X-Request-Id": "dash-acct-0001"})).status_code == 200
    await wait_logged(stack, 5, post_id=post["id"])
    await wait_logged(stack, 1, account_id=bsky)
    async with stack.db.session() as s:
        s.add(OperatorLog(workspace_id=ws, livemode=False, kind="pipeline", level="warn", post_id=post["id"],
                          message="bluesky result failed: rate limited"))
        await s.commit()

    async with Dashboard(stack.url) as d:
        await d.logged_in()
        logs_url = f"/dashboard/apps/{ws}/logs"
        one = await d.page(logs_url, request_id="dash-req-0003")
        assert _request_ids(one) == ["dash-req-0003"]
        assert f"GET /v1/social-posts/{post['id']} -&gt; 200" in one

        seen: list[str] = []
        page = await d.page(logs_url, post_id=post["id"], limit="2")
        pages = 1
        while True:
            rows = re.findall(r'<tr class="log">', page)
            assert 1 <= len(rows) <= 2
            seen += _request_ids(page)
            following = re.search(r'id="next" href="([^"]+)"', page)
            if not following:
                break
            page = await d.page(html.unescape(following.group(1)))
            pages += 1
        assert pages == 3 and sorted(seen) == ["dash-req-0000", "dash-req-0001", "dash-req-0002", "dash-req-0003",
                                               "dash-req-0004", "—"]

        pipeline = await d.page(logs_url, post_id=post["id"], kind="pipeline")
        assert "rate limited" in pipeline and _request_ids(pipeline) == ["—"]
        assert _request_ids(await d.page(logs_url, account_id=bsky)) == ["dash-acct-0001"]
        assert "No log entries match" in await d.page(logs_url, post_id=post["id"], mode="live")
        assert (await d.get(logs_url, cursor="not-a-cursor")).status_code == 400
        assert (await d.get(logs_url, kind="debug")).status_code == 400


async def test_the_logs_api_is_scoped_to_the_keys_workspace_and_mode(dstack):
    stack = dstack
    other = await stack.new_tenant("Other")
    async with stack.client(stack.tenant.test_key) as api:
        assert (await api.get("/v1/workspace", headers={"X-Request-Id": "api-logs-0001"})).status_code == 200
    await wait_logged(stack, 1, request_id="api-logs-0001")
    async with stack.client(stack.tenant.test_key) as api:
        first = await api.get("/v1/logs", params={"request_id": "api-logs-0001"})
        assert first.status_code == 200
        [row] = first.json()["data"]
        assert row["path"] == "/v1/workspace" and row["status_code"] == 200 and row["kind"] == "request"
        assert (await api.get("/v1/logs", params={"kind": "debug"})).status_code == 422
        await wait_logged(stack, 3, workspace_id=stack.tenant.workspace_id, livemode=False)
        first_page = (await api.get("/v1/logs", params={"limit": 1})).json()
        assert len(first_page["data"]) == 1 and first_page["meta"]["has_more"]
        second_page = (await api.get("/v1/logs", params={"limit": 1,
                                                         "cursor": first_page["meta"]["next_cursor"]})).json()
        assert second_page["data"][0]["created_at"] <= first_page["data"][0]["created_at"]
        assert second_page["data"][0]["id"] != first_page["data"][0]["id"]
    for key in (other.test_key, stack.tenant.live_key):
        async with stack.client(key) as api:
            assert (await api.get("/v1/logs", params={"request_id": "api-logs-0001"})).json()["data"] == []
