"""Threads adapter against the Threads sandbox, over real HTTP."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from adapters.base import AccountAuth, ClientCredentials, MediaSource, PartDraft, Pending, PostRef, Prepared
from adapters.catalogue import resolve_endpoints
from adapters.errors import (
    AuthExpired,
    AuthRevoked,
    ContentRejected,
    MediaRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    Unverifiable,
)
from adapters import graph, threads
from adapters.sandbox import graph as sandbox_graph
from adapters.sandbox.core import WORLD
from adapters.threads import PROVIDER, ThreadsAdapter
from tests.support.drive import settle
from tests.support.sandbox import sandbox_server

REDIRECT = "https://herald.test/oauth/callback"


@pytest.fixture(scope="module")
def base():
    with sandbox_server(["threads"]) as url:
        yield url


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture(autouse=True)
async def reset(base, http):
    await http.post(f"{base}/sandbox/_control/reset")


@pytest.fixture
def adapter(base, http):
    endpoints = resolve_endpoints(PROVIDER, sandbox_base=f"{base}/sandbox")
    return ThreadsAdapter(http, endpoints, ClientCredentials("th-app", "th-secret"))


async def consent(http, adapter, decision="approve", username="th_writer") -> httpx.Response:
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st-1", code_verifier=None)
    page = await http.get(url)
    assert page.status_code == 200
    form = {
        k: html.unescape(v) for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }
    form.update(sandbox_username=username, decision=decision)
    action = html.unescape(re.search(r'action="([^"]+)"', page.text)[1])
    return await http.post(urljoin(url, action), data=form)


def code_of(resp: httpx.Response) -> str:
    assert resp.status_code in (302, 303)
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


async def connect(http, adapter) -> AccountAuth:
    tokens = await adapter.exchange_code(
        code=code_of(await consent(http, adapter)), redirect_uri=REDIRECT, code_verifier=None
    )
    profile = await adapter.fetch_profile(tokens)
    return AccountAuth(external_id=profile.external_id, tokens=tokens, username=profile.username)


async def fault(http, base, **spec):
    resp = await http.post(f"{base}/sandbox/_control/faults", json={"platform": "threads", **spec})
    assert resp.status_code == 201


async def posts(http, base) -> list[dict]:
    return (await http.get(f"{base}/sandbox/_control/threads/posts")).json()


def media(base, name="image.jpg", content_type="image/jpeg") -> MediaSource:
    return MediaSource(url=f"{base}/media/{name}", content_type=content_type)


async def draft(adapter, auth, text, *sources, reply_to=None) -> PartDraft:
    return PartDraft(
        text=text, media=[await adapter.upload_media(auth, s) for s in sources], reply_to=reply_to
    )


async def prepare(adapter, auth, part) -> Prepared:
    return await settle(await adapter.prepare(auth, part), lambda h: adapter.poll_prepared(auth, h))


async def publish(adapter, auth, part) -> PostRef:
    return await adapter.publish(auth, await prepare(adapter, auth, part))


# --- OAuth ---


async def test_oauth_flow_long_lived_token_profile_and_refresh(http, adapter):
    """Consent → code → 1-h token → 60-day token (th_exchange_token); the profile comes from /me;
    refresh (th_refresh_token) extends a live token; Threads has no refresh token and no revoke."""
    query = parse_qs(
        urlsplit(adapter.authorization_url(redirect_uri=REDIRECT, state="s", code_verifier="v" * 50)).query
    )
    assert query["scope"] == ["threads_basic,threads_content_publish,threads_manage_replies"]
    assert "code_challenge" not in query
    tokens = await adapter.exchange_code(
        code=code_of(await consent(http, adapter)), redirect_uri=REDIRECT, code_verifier=None
    )
    assert tokens.refresh_token is None and tokens.expires_at - time.time() > 59 * 86400
    assert tokens.access_token.startswith("THAA")
    profile = await adapter.fetch_profile(tokens)
    assert profile.username == "th_writer" and profile.external_id == tokens.extra["user_id"]
    fresh = await adapter.refresh(tokens)
    assert fresh.access_token != tokens.access_token
    assert (await adapter.fetch_profile(fresh)).external_id == profile.external_id
    await adapter.revoke(fresh)


async def test_deny_redirects_with_access_denied(http, adapter):
    """Cancelling the consent screen redirects with error=access_denied and no code."""
    query = parse_qs(urlsplit((await consent(http, adapter, decision="deny")).headers["location"]).query)
    assert query["error"] == ["access_denied"] and "code" not in query


async def test_code_is_single_use(http, adapter):
    """A second exchange of the same code is refused."""
    code = code_of(await consent(http, adapter))
    await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)
    with pytest.raises(AuthRevoked):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)


# --- publishing ---


async def test_publish_text_image_video_and_carousel(http, adapter, base):
    """Text, image, video and a 2-item carousel each go container → FINISHED → threads_publish."""
    auth = await connect(http, adapter)
    text = await publish(adapter, auth, await draft(adapter, auth, "just words"))
    image = await publish(
        adapter, auth, await draft(adapter, auth, "a picture", media(base, "image.png", "image/png"))
    )
    video = await publish(
        adapter, auth, await draft(adapter, auth, "a clip", media(base, "video.mp4", "video/mp4"))
    )
    album = await publish(
        adapter, auth, await draft(adapter, auth, "two", media(base), media(base, "image.png", "image/png"))
    )
    assert text.url.startswith("https://www.threads.net/@th_writer/post/")
    stored = {p["id"]: p for p in await posts(http, base)}
    assert stored[text.external_id]["media"] == []
    assert stored[image.external_id]["media"] == [f"{base}/media/image.png"]
    assert stored[video.external_id]["media"] == [f"{base}/media/video.mp4"]
    assert stored[album.external_id]["media"] == [f"{base}/media/image.jpg", f"{base}/media/image.png"]


async def test_thread_is_a_reply_chain_in_order(http, adapter, base):
    """Each thread part replies to the previous part, in thread_position order."""
    auth = await connect(http, adapter)
    parent = None
    refs = []
    for text in ("1/3", "2/3", "3/3"):
        parent = await publish(adapter, auth, await draft(adapter, auth, text, reply_to=parent))
        refs.append(parent)
    stored = await posts(http, base)
    assert [(p["text"], p["reply_to"]) for p in stored] == [
        ("1/3", None),
        ("2/3", refs[0].external_id),
        ("3/3", refs[1].external_id),
    ]


async def test_publish_before_container_finished_is_transient(http, adapter, base):
    """threads_publish on a container still IN_PROGRESS answers 24/4279009: TransientError not_ready."""
    auth = await connect(http, adapter)
    pending = await adapter.prepare(
        auth, await draft(adapter, auth, "soon", media(base, "video.mp4", "video/mp4"))
    )
    assert isinstance(pending, Pending)
    with pytest.raises(TransientError) as err:
        await adapter.publish(auth, Prepared(draft=PartDraft(text="soon"), handle=pending.handle))
    assert err.value.code == "not_ready"


# --- validation ---


async def test_validation_counts_emoji_in_bytes_and_names_fields(adapter, base):
    """126 emoji are 504 bytes-as-characters (too long) though only 126 code points; 21 items, a GIF,
    a first comment, an unknown option and a link preview on a media post are refused with their field."""
    jpg = await adapter.upload_media(None, media(base))
    gif = await adapter.upload_media(None, media(base, "x.gif", "image/gif"))
    f = "platform_posts[1]"

    def codes(part):
        return {(i.field, i.code) for i in adapter.validate(part, field_prefix=f)}

    assert (f"{f}.caption", "caption_too_long") in codes(PartDraft(text="😀" * 126))
    assert not codes(PartDraft(text="😀" * 125))
    assert not codes(PartDraft(text="a" * 500))
    assert (f"{f}.media", "too_many_media") in codes(PartDraft(text="x", media=[jpg] * 21))
    assert (f"{f}.media[0]", "unsupported_media_type") in codes(PartDraft(text="x", media=[gif]))
    assert (f"{f}.first_comment", "first_comment_unsupported") in codes(
        PartDraft(text="x", is_comment=True, reply_to=PostRef("1"))
    )
    assert (f"{f}.platform_options.pin", "unknown_option") in codes(
        PartDraft(text="x", options={"pin": True})
    )
    assert (f"{f}.platform_options.reply_control", "invalid_option") in codes(
        PartDraft(text="x", options={"reply_control": "nobody"})
    )
    assert (f"{f}.platform_options.link_attachment", "invalid_option") in codes(
        PartDraft(text="x", media=[jpg], options={"link_attachment": "https://example.com"})
    )
    assert gif.content_type == "image/gif"


async def test_sandbox_counts_text_like_threads(http, adapter, base):
    """Sent anyway, 126 emoji are refused by the platform: 400 'text must be at most 500 characters'."""
    auth = await connect(http, adapter)
    with pytest.raises(ContentRejected) as err:
        await adapter.prepare(auth, PartDraft(text="😀" * 126))
    assert "text must be at most 500 characters" in err.value.message


# --- failures ---


async def test_server_error_is_transient(http, adapter, base):
    """A 5xx (code 2, is_transient) is a TransientError."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="http_5xx", path_contains="/threads", status=502)
    with pytest.raises(TransientError):
        await adapter.prepare(auth, PartDraft(text="x"))


async def test_throttling_is_rate_limited_with_retry_after(http, adapter, base):
    """Throttling (code 4) is RateLimited, retry_after from the usage header's minutes."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="rate_limit", retry_after=60)
    with pytest.raises(RateLimited) as err:
        await adapter.prepare(auth, PartDraft(text="x"))
    assert err.value.retry_after == 60


async def test_expired_token_is_auth_expired_and_cannot_be_extended(http, adapter, base):
    """190/463 → AuthExpired; an expired token cannot be refreshed: AuthRevoked reauth_required."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="expire_token", account=auth.external_id)
    with pytest.raises(AuthExpired):
        await adapter.prepare(auth, PartDraft(text="x"))
    with pytest.raises(AuthRevoked) as err:
        await adapter.refresh(auth.tokens)
    assert err.value.code == "reauth_required"


async def test_revoked_token_is_auth_revoked(http, adapter, base):
    """A revoked grant (190/458) → AuthRevoked."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="revoke_token", account=auth.external_id)
    with pytest.raises(AuthRevoked):
        await adapter.prepare(auth, PartDraft(text="x"))


async def test_rejected_content_is_content_rejected(http, adapter, base):
    """A refused post (code 100) is ContentRejected and nothing is posted."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="reject_content")
    with pytest.raises(ContentRejected):
        await adapter.prepare(auth, PartDraft(text="bad"))
    assert await posts(http, base) == []


async def test_bad_media_is_media_rejected(http, adapter, base):
    """Bytes that are not a video put the container in ERROR (FAILED_PROCESSING_VIDEO): MediaRejected."""
    auth = await connect(http, adapter)
    with pytest.raises(MediaRejected) as err:
        await prepare(adapter, auth, await draft(adapter, auth, "x", media(base, "image.jpg", "video/mp4")))
    assert "FAILED_PROCESSING_VIDEO" in err.value.message


async def test_dropped_publish_is_outcome_unknown_then_reconciled(http, adapter, base):
    """The answer to threads_publish is lost: OutcomeUnknown; reconcile finds exactly that post (by the
    profile's threads and by the PUBLISHED container) and the sandbox holds one copy."""
    auth = await connect(http, adapter)
    since = time.time()
    part = PartDraft(text="exactly once")
    prepared = await prepare(adapter, auth, part)
    assert await adapter.reconcile(auth, part, since=since) is None
    await fault(http, base, kind="drop_after_accept", path_contains="/threads_publish")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, prepared)
    stored = await posts(http, base)
    assert len(stored) == 1
    assert (await adapter.reconcile(auth, part, since=since)).external_id == stored[0]["id"]
    assert (await adapter.reconcile_prepared(auth, prepared, since=since)).external_id == stored[0]["id"]


async def dropped_reply(http, adapter, base):
    """A thread part published under a root post, whose answer was lost; returns (auth, since, root, part)."""
    auth = await connect(http, adapter)
    since = time.time()
    root = await publish(adapter, auth, PartDraft(text="root"))
    part = PartDraft(text="reply", reply_to=root)
    prepared = await prepare(adapter, auth, part)
    await fault(http, base, kind="drop_after_accept", path_contains="/threads_publish")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, prepared)
    return auth, since, root, part


async def test_dropped_reply_is_reconciled_under_its_parent(http, adapter, base):
    """A lost thread part is found among its parent's replies, not mistaken for a top-level post."""
    auth, since, _, part = await dropped_reply(http, adapter, base)
    found = await adapter.reconcile(auth, part, since=since)
    assert found.external_id == (await posts(http, base))[-1]["id"]
    assert await adapter.reconcile(auth, PartDraft(text="reply"), since=since) is None


@pytest.fixture
def quick(monkeypatch):
    """Containers are ready and polled at once, so a test can publish many posts."""
    monkeypatch.setattr(graph, "POLL_DELAYS", (0.0,))
    monkeypatch.setitem(sandbox_graph.PROCESSING_SECONDS, "TEXT", 0.0)


def backdate(post_id: str, seconds: float) -> None:
    """Moves a sandbox post into the past, as if it had been published `seconds` earlier."""
    with WORLD.lock:
        post = WORLD.state("threads").table("posts")[post_id]
        post["created_at"] -= seconds
        post["timestamp"] = sandbox_graph.graph_time(post["created_at"])


async def test_reconcile_reads_threads_past_newer_posts(http, adapter, base, monkeypatch, quick):
    """An interrupted post pushed pages down by newer threads is still found (by listing and by its
    container); "not there" is said once the listing was read back past the attempt (not to its end),
    and a window longer than the page budget is Unverifiable."""
    monkeypatch.setattr(threads, "RECONCILE_PAGE", 2)
    auth = await connect(http, adapter)
    for i in range(5):
        backdate((await publish(adapter, auth, PartDraft(text=f"older {i}"))).external_id, 60)
    since = time.time()
    part = PartDraft(text="the interrupted one")
    prepared = await prepare(adapter, auth, part)
    await fault(http, base, kind="drop_after_accept", path_contains="/threads_publish")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, prepared)
    for i in range(5):  # more than two pages of newer threads
        await publish(adapter, auth, PartDraft(text=f"newer {i}"))
    [interrupted] = [p for p in await posts(http, base) if p["text"] == part.text]
    assert (await adapter.reconcile(auth, part, since=since)).external_id == interrupted["id"]
    assert (await adapter.reconcile_prepared(auth, prepared, since=since)).external_id == interrupted["id"]
    assert await adapter.reconcile(auth, PartDraft(text="never posted"), since=since) is None
    assert await adapter.reconcile(auth, PartDraft(text="older 4"), since=since) is None
    # One thread a page: the 6 posts since the attempt and one older fit the budget, the 11 posts do not.
    monkeypatch.setattr(threads, "RECONCILE_PAGE", 1)
    assert await adapter.reconcile(auth, PartDraft(text="never posted"), since=since) is None
    with pytest.raises(Unverifiable, match="Too many recent items"):
        await adapter.reconcile(auth, PartDraft(text="never posted"), since=since - 120)


async def test_reply_reconcile_follows_cursors(http, adapter, base, quick):
    """A lost thread part with a page of newer replies above it (the sandbox's default 25 a page) is
    found on the next page of its parent's replies."""
    auth, since, root, part = await dropped_reply(http, adapter, base)
    for i in range(25):
        await publish(adapter, auth, PartDraft(text=f"newer reply {i}", reply_to=root))
    [interrupted] = [p for p in await posts(http, base) if p["text"] == "reply"]
    assert (await adapter.reconcile(auth, part, since=since)).external_id == interrupted["id"]
    assert await adapter.reconcile(auth, PartDraft(text="never", reply_to=root), since=since) is None
