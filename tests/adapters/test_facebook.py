"""Facebook Pages adapter against the Facebook sandbox, over real HTTP."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from adapters.base import AccountAuth, ClientCredentials, MediaSource, PartDraft, Pending, PostRef
from dataclasses import replace

from adapters.catalogue import resolve_endpoints
from adapters.errors import (
    AdapterError,
    AuthExpired,
    AuthRevoked,
    ContentRejected,
    DuplicateContent,
    MediaRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    Unverifiable,
)
from adapters import facebook
from adapters.facebook import PROVIDER, FacebookAdapter
from adapters.sandbox.core import WORLD
from adapters.sandbox.graph import graph_time
from tests.support.drive import settle
from tests.support.sandbox import sandbox_server

REDIRECT = "https://herald.test/oauth/callback"


@pytest.fixture(scope="module")
def base():
    with sandbox_server(["facebook"]) as url:
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
    return FacebookAdapter(http, endpoints, ClientCredentials("fb-app", "fb-secret"))


async def consent(http, adapter, decision="approve", username="fb_owner", verifier=None) -> httpx.Response:
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st-1", code_verifier=verifier)
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


async def connect(http, adapter, username="fb_owner") -> AccountAuth:
    user_tokens = await adapter.exchange_code(
        code=code_of(await consent(http, adapter, username=username)),
        redirect_uri=REDIRECT,
        code_verifier=None,
    )
    profile = await adapter.fetch_profile(user_tokens)
    return AccountAuth(external_id=profile.external_id, tokens=profile.tokens, username=profile.username)


async def fault(http, base, **spec):
    resp = await http.post(f"{base}/sandbox/_control/faults", json={"platform": "facebook", **spec})
    assert resp.status_code == 201


async def posts(http, base) -> list[dict]:
    return (await http.get(f"{base}/sandbox/_control/facebook/posts")).json()


def media(base, name="image.jpg", content_type="image/jpeg") -> MediaSource:
    return MediaSource(url=f"{base}/media/{name}", content_type=content_type)


async def draft(adapter, auth, text, *sources, **options) -> PartDraft:
    return PartDraft(text=text, media=[await adapter.upload_media(auth, s) for s in sources], options=options)


async def publish(adapter, auth, part) -> PostRef:
    first = await adapter.publish(auth, await adapter.prepare(auth, part))
    return await settle(first, lambda h: adapter.poll_publish(auth, h))


# --- OAuth ---


async def test_oauth_flow_page_token_no_refresh_and_revoke(http, adapter):
    """GET code exchange → 60-day user token (fb_exchange_token) → the first publishable Page with a
    never-expiring Page token; refresh asks for a new login; revoke deletes the app's permissions."""
    query = parse_qs(
        urlsplit(adapter.authorization_url(redirect_uri=REDIRECT, state="s", code_verifier=None)).query
    )
    assert query["scope"] == [
        "pages_show_list,pages_read_engagement,pages_manage_posts,pages_manage_engagement"
    ]
    user_tokens = await adapter.exchange_code(
        code=code_of(await consent(http, adapter)), redirect_uri=REDIRECT, code_verifier=None
    )
    assert user_tokens.expires_at - time.time() > 59 * 86400 and user_tokens.refresh_token is None
    profile = await adapter.fetch_profile(user_tokens)
    assert profile.display_name == "Fb Owner Page"
    assert profile.tokens.expires_at is None and profile.tokens.access_token != user_tokens.access_token
    assert profile.tokens.extra["user_id"] == profile.extra["user_id"]
    auth = AccountAuth(external_id=profile.external_id, tokens=profile.tokens)
    assert (await publish(adapter, auth, PartDraft(text="live"))).external_id.startswith(
        profile.external_id + "_"
    )
    with pytest.raises(AuthRevoked) as err:
        await adapter.refresh(profile.tokens)
    assert err.value.code == "reauth_required"
    await adapter.revoke(profile.tokens)
    with pytest.raises(AuthRevoked):
        await publish(adapter, auth, PartDraft(text="after revoke"))


async def test_deny_redirects_with_access_denied(http, adapter):
    """Cancelling the dialog redirects with error=access_denied and no code."""
    query = parse_qs(urlsplit((await consent(http, adapter, decision="deny")).headers["location"]).query)
    assert query["error"] == ["access_denied"] and "code" not in query


async def test_code_is_single_use(http, adapter):
    """A used code is refused (100/36009 'This authorization code has been used')."""
    code = code_of(await consent(http, adapter))
    await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)
    with pytest.raises(AuthRevoked) as err:
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)
    assert "100" in err.value.message


async def test_pkce_is_verified_when_used(http, adapter):
    """Facebook Login accepts PKCE; when a challenge was sent a wrong verifier is refused and the right
    one works (Herald's server-side flow does not send one by default)."""
    pkce = FacebookAdapter(http, adapter.endpoints, adapter.client)
    pkce.provider = replace(PROVIDER, pkce="S256")
    code = code_of(await consent(http, pkce, verifier="a" * 64))
    with pytest.raises(AuthRevoked):
        await pkce.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier="b" * 64)
    code = code_of(await consent(http, pkce, verifier="a" * 64))
    assert (await pkce.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier="a" * 64)).access_token


async def test_user_without_publishable_page(http, adapter):
    """No Page, or a Page without CREATE_CONTENT, is AdapterError no_publishable_page."""
    for username in ("no_pages_here", "viewer_only"):
        with pytest.raises(AdapterError) as err:
            await connect(http, adapter, username=username)
        assert err.value.code == "no_publishable_page"


# --- publishing ---


async def test_publish_text_photo_photos_and_first_comment(http, adapter, base):
    """Text goes to /feed, one photo to /photos (post_id), several photos are staged unpublished and
    attached in order to one /feed post; the first comment lands on the new post."""
    auth = await connect(http, adapter)
    text = await publish(adapter, auth, await draft(adapter, auth, "hello page", link="https://example.com"))
    photo = await publish(adapter, auth, await draft(adapter, auth, "one photo", media(base)))
    items = [media(base, "image.png", "image/png"), media(base)]
    album = await publish(adapter, auth, await draft(adapter, auth, "two photos", *items))
    comment = await adapter.comment(auth, album, "first!", tag="c")
    stored = {p["id"]: p for p in await posts(http, base)}
    assert stored[text.external_id]["raw"]["link"] == "https://example.com"
    assert stored[photo.external_id]["media"] == [f"{base}/media/image.jpg"]
    assert stored[album.external_id]["media"] == [m.url for m in items]
    assert stored[comment.external_id]["reply_to"] == album.external_id
    assert photo.url == f"https://www.facebook.com/{photo.external_id}"


async def test_publish_video_is_polled_until_ready(http, adapter, base):
    """/videos answers at once with an id; the post is Pending until video_status is ready."""
    auth = await connect(http, adapter)
    part = await draft(adapter, auth, "a clip", media(base, "video.mp4", "video/mp4"), title="Clip")
    first = await adapter.publish(auth, await adapter.prepare(auth, part))
    assert isinstance(first, Pending)
    ref = await settle(first, lambda h: adapter.poll_publish(auth, h))
    assert ref.external_id == f"{auth.external_id}_{first.handle['video_id']}"
    assert ref.url.startswith("https://www.facebook.com/")
    assert (await posts(http, base))[0]["raw"]["title"] == "Clip"


# --- validation ---


async def test_validation_issues_name_the_field(adapter, base):
    """Over 63,206 characters, a video mixed with a photo, 11 photos, an unknown option, a video title
    on a photo and a thread part are refused before any request, each naming its field."""
    jpg = await adapter.upload_media(None, media(base))
    mp4 = await adapter.upload_media(None, media(base, "video.mp4", "video/mp4"))
    f = "platform_posts[2]"

    def codes(part, parts=1):
        return {(i.field, i.code) for i in adapter.validate(part, field_prefix=f, part_count=parts)}

    assert (f"{f}.caption", "caption_too_long") in codes(PartDraft(text="x" * 63207))
    assert not codes(PartDraft(text="x" * 63206))
    assert (f"{f}.media", "mixed_media") in codes(PartDraft(text="x", media=[jpg, mp4]))
    assert (f"{f}.media", "too_many_media") in codes(PartDraft(text="x", media=[jpg] * 11))
    assert (f"{f}.platform_options.privacy", "unknown_option") in codes(
        PartDraft(text="x", options={"privacy": "SELF"})
    )
    assert (f"{f}.platform_options.title", "invalid_option") in codes(
        PartDraft(text="x", media=[jpg], options={"title": "t"})
    )
    assert (f"{f}.thread_position", "threads_unsupported") in codes(PartDraft(text="x"), parts=2)


# --- failures ---


async def test_server_error_is_transient(http, adapter, base):
    """A 5xx (code 2, is_transient) is a TransientError."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="http_5xx", path_contains="/feed", status=500)
    with pytest.raises(TransientError):
        await publish(adapter, auth, PartDraft(text="x"))


async def test_page_throttling_is_rate_limited_with_retry_after(http, adapter, base):
    """Page BUC throttling (80001) is RateLimited with retry_after from X-Business-Use-Case-Usage."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="rate_limit", account=auth.external_id, retry_after=300)
    with pytest.raises(RateLimited) as err:
        await publish(adapter, auth, PartDraft(text="x"))
    assert err.value.retry_after == 300


async def test_expired_page_token_is_auth_expired_and_needs_login(http, adapter, base):
    """An expired token (190/463) is AuthExpired; with no refresh token the account needs a new login,
    after which publishing works again."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="expire_token", account=auth.external_id)
    with pytest.raises(AuthExpired):
        await publish(adapter, auth, PartDraft(text="x"))
    with pytest.raises(AuthRevoked):
        await adapter.refresh(auth.tokens)
    again = await connect(http, adapter)
    assert (await publish(adapter, again, PartDraft(text="back"))).external_id


async def test_revoked_token_is_auth_revoked(http, adapter, base):
    """A revoked grant (190/458) is AuthRevoked."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="revoke_token", account=auth.external_id)
    with pytest.raises(AuthRevoked):
        await publish(adapter, auth, PartDraft(text="x"))


async def test_rejected_content_is_content_rejected(http, adapter, base):
    """A refused post (code 100) is ContentRejected and nothing is posted."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="reject_content")
    with pytest.raises(ContentRejected):
        await publish(adapter, auth, PartDraft(text="bad"))
    assert await posts(http, base) == []


async def test_bad_media_is_media_rejected(http, adapter, base):
    """A photo URL that is not an image (2069019) and a video that fails processing are MediaRejected."""
    auth = await connect(http, adapter)
    with pytest.raises(MediaRejected):
        await publish(adapter, auth, await draft(adapter, auth, "x", media(base, "video.mp4")))
    with pytest.raises(MediaRejected) as err:
        await publish(adapter, auth, await draft(adapter, auth, "x", media(base, "image.jpg", "video/mp4")))
    assert "format" in err.value.message


async def test_duplicate_status_is_duplicate_content(http, adapter, base):
    """Posting the Page's previous message again is error 506: DuplicateContent."""
    auth = await connect(http, adapter)
    await publish(adapter, auth, PartDraft(text="same words"))
    with pytest.raises(DuplicateContent):
        await publish(adapter, auth, PartDraft(text="same words"))


async def test_dropped_publish_is_outcome_unknown_then_reconciled(http, adapter, base):
    """The answer to /feed is lost: OutcomeUnknown; reconcile finds exactly that post in the Page feed,
    the sandbox holds one copy, and other text is certainly absent."""
    auth = await connect(http, adapter)
    since = time.time()
    part = PartDraft(text="exactly once")
    assert await adapter.reconcile(auth, part, since=since) is None
    await fault(http, base, kind="drop_after_accept", path_contains="/feed")
    with pytest.raises(OutcomeUnknown):
        await publish(adapter, auth, part)
    stored = await posts(http, base)
    assert len(stored) == 1
    assert (await adapter.reconcile(auth, part, since=since)).external_id == stored[0]["id"]
    assert await adapter.reconcile(auth, PartDraft(text="other"), since=since) is None


async def test_dropped_comment_is_reconciled(http, adapter, base):
    """A first comment whose answer was lost is found among the post's comments by the Page."""
    auth = await connect(http, adapter)
    since = time.time()
    post = await publish(adapter, auth, PartDraft(text="parent"))
    await fault(http, base, kind="drop_after_accept", path_contains="/comments")
    with pytest.raises(OutcomeUnknown):
        await adapter.comment(auth, post, "the comment", tag="c")
    found = await adapter.reconcile(
        auth, PartDraft(text="the comment", reply_to=post, is_comment=True), since=since
    )
    assert found.external_id == (await posts(http, base))[-1]["id"]


def backdate(post_id: str, seconds: float) -> None:
    """Moves a sandbox post into the past, as if it had been made `seconds` earlier."""
    with WORLD.lock:
        post = WORLD.state("facebook").table("posts")[post_id]
        post["created_at"] -= seconds
        post["created_time"] = graph_time(post["created_at"])


async def test_reconcile_reads_the_feed_past_newer_posts(http, adapter, base, monkeypatch):
    """An interrupted post pushed pages down the feed by newer ones is still found; "not there" is said
    once the feed was read back past the attempt (not to its end), and a window longer than the page
    budget is Unverifiable."""
    monkeypatch.setattr(facebook, "RECONCILE_PAGE", 2)
    auth = await connect(http, adapter)
    for i in range(5):
        backdate((await publish(adapter, auth, PartDraft(text=f"older {i}"))).external_id, 60)
    since = time.time()
    part = PartDraft(text="the interrupted one")
    await fault(http, base, kind="drop_after_accept", path_contains="/feed")
    with pytest.raises(OutcomeUnknown):
        await publish(adapter, auth, part)
    for i in range(5):  # more than two pages of newer posts
        await publish(adapter, auth, PartDraft(text=f"newer {i}"))
    [interrupted] = [p for p in await posts(http, base) if p["text"] == part.text]
    assert (await adapter.reconcile(auth, part, since=since)).external_id == interrupted["id"]
    assert await adapter.reconcile(auth, PartDraft(text="never posted"), since=since) is None
    assert await adapter.reconcile(auth, PartDraft(text="older 4"), since=since) is None
    # One post a page: the 6 posts since the attempt and one older fit the budget, the 11 posts do not.
    monkeypatch.setattr(facebook, "RECONCILE_PAGE", 1)
    assert await adapter.reconcile(auth, PartDraft(text="never posted"), since=since) is None
    with pytest.raises(Unverifiable, match="Too many recent items"):
        await adapter.reconcile(auth, PartDraft(text="never posted"), since=since - 120)


async def test_comment_reconcile_reads_every_page(http, adapter, base, monkeypatch):
    """Comments are listed oldest first, so the parent's comments are read to their end: an interrupted
    first comment followed by pages of newer ones is found, and more comments than the budget can
    read are Unverifiable."""
    monkeypatch.setattr(facebook, "RECONCILE_PAGE", 2)
    auth = await connect(http, adapter)
    since = time.time()
    post = await publish(adapter, auth, PartDraft(text="parent"))
    await fault(http, base, kind="drop_after_accept", path_contains="/comments")
    with pytest.raises(OutcomeUnknown):
        await adapter.comment(auth, post, "the comment", tag="c")
    for i in range(10):
        await adapter.comment(auth, post, f"newer comment {i}", tag=f"c{i}")
    [interrupted] = [p for p in await posts(http, base) if p["text"] == "the comment"]

    def comment(text: str) -> PartDraft:
        return PartDraft(text=text, reply_to=post, is_comment=True)

    found = await adapter.reconcile(auth, comment("the comment"), since=since)
    assert found.external_id == interrupted["id"]
    assert await adapter.reconcile(auth, comment("never posted"), since=since) is None
    monkeypatch.setattr(facebook, "RECONCILE_PAGE", 1)
    with pytest.raises(Unverifiable):
        await adapter.reconcile(auth, comment("never posted"), since=since)


async def test_sandbox_feed_pages_with_cursors(http, adapter, base):
    """The sandbox feed honours `limit` and `after`, names its cursors, and gives `paging.next` (a full
    URL) only while more posts follow."""
    auth = await connect(http, adapter)
    for i in range(3):
        await publish(adapter, auth, PartDraft(text=f"post {i}"))
    url = f"{base}/sandbox/facebook/v23.0/{auth.external_id}/feed"
    bearer = {"Authorization": f"Bearer {auth.tokens.access_token}"}
    first = (await http.get(url, params={"limit": 2, "fields": "message"}, headers=bearer)).json()
    assert [p["message"] for p in first["data"]] == ["post 2", "post 1"]
    assert set(first["paging"]["cursors"]) == {"before", "after"}
    rest = (await http.get(first["paging"]["next"], headers=bearer)).json()
    assert [p["message"] for p in rest["data"]] == ["post 0"] and "next" not in rest["paging"]
    assert len((await http.get(url, headers=bearer)).json()["data"]) == 3
