"""Instagram adapter against the Instagram sandbox, over real HTTP."""

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
from adapters import graph, instagram
from adapters.instagram import PROVIDER, InstagramAdapter
from adapters.sandbox import graph as sandbox_graph
from adapters.sandbox.core import WORLD
from tests.support.drive import settle
from tests.support.sandbox import sandbox_server

REDIRECT = "https://herald.test/oauth/callback"


@pytest.fixture(scope="module")
def base():
    with sandbox_server(["instagram"]) as url:
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
    return InstagramAdapter(http, endpoints, ClientCredentials("ig-app", "ig-secret"))


async def consent(http, adapter, decision="approve", username="ig_creator") -> httpx.Response:
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st-1", code_verifier="v" * 50)
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
    location = resp.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-1"]
    return query["code"][0] + ("#_" if location.endswith("#_") else "")


async def connect(http, adapter) -> AccountAuth:
    tokens = await adapter.exchange_code(
        code=code_of(await consent(http, adapter)), redirect_uri=REDIRECT, code_verifier=None
    )
    profile = await adapter.fetch_profile(tokens)
    return AccountAuth(external_id=profile.external_id, tokens=tokens, username=profile.username)


async def fault(http, base, **spec):
    resp = await http.post(f"{base}/sandbox/_control/faults", json={"platform": "instagram", **spec})
    assert resp.status_code == 201


async def posts(http, base) -> list[dict]:
    return (await http.get(f"{base}/sandbox/_control/instagram/posts")).json()


def media(base, name="image.jpg", content_type="image/jpeg") -> MediaSource:
    return MediaSource(url=f"{base}/media/{name}", content_type=content_type)


async def draft(adapter, auth, text, *sources) -> PartDraft:
    return PartDraft(text=text, media=[await adapter.upload_media(auth, s) for s in sources])


async def prepare(adapter, auth, part) -> Prepared:
    return await settle(await adapter.prepare(auth, part), lambda h: adapter.poll_prepared(auth, h))


async def publish(adapter, auth, part) -> PostRef:
    return await adapter.publish(auth, await prepare(adapter, auth, part))


# --- OAuth ---


async def test_oauth_flow_long_lived_token_profile_and_refresh(http, adapter):
    """Consent → code (with Instagram's `#_` suffix, stripped) → 1-h token exchanged for a 60-day token;
    the profile is the professional account (`user_id`); refresh extends a live token; there is no revoke."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st-1", code_verifier="v" * 50)
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == [
        "instagram_business_basic,instagram_business_content_publish,instagram_business_manage_comments"
    ]
    assert "code_challenge" not in query  # Instagram documents no PKCE
    resp = await consent(http, adapter)
    assert resp.headers["location"].endswith("#_")
    tokens = await adapter.exchange_code(code=code_of(resp), redirect_uri=REDIRECT, code_verifier=None)
    assert tokens.refresh_token is None
    assert tokens.expires_at - time.time() > 59 * 86400
    profile = await adapter.fetch_profile(tokens)
    assert profile.username == "ig_creator"
    assert profile.external_id == tokens.extra["user_id"]
    fresh = await adapter.refresh(tokens)
    assert fresh.access_token != tokens.access_token and fresh.extra["user_id"] == tokens.extra["user_id"]
    assert (await adapter.fetch_profile(fresh)).external_id == profile.external_id
    await adapter.revoke(fresh)  # no revoke endpoint: a no-op, not an error


async def test_deny_redirects_with_access_denied(http, adapter):
    """Cancelling the consent screen sends the user back with error=access_denied and no code."""
    resp = await consent(http, adapter, decision="deny")
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["error"] == ["access_denied"] and "code" not in query


async def test_code_is_single_use(http, adapter):
    """A code exchanged once is refused the second time, as a grant the user must redo."""
    code = code_of(await consent(http, adapter))
    await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)
    with pytest.raises(AuthRevoked):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)


async def test_wrong_client_secret_is_refused(http, adapter, base):
    """The token endpoint checks the app secret fixed by the first exchange; a wrong one ends the connect."""
    code = code_of(await consent(http, adapter))
    await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)
    other = InstagramAdapter(http, adapter.endpoints, ClientCredentials("ig-app", "wrong"))
    with pytest.raises(AuthRevoked):
        await other.exchange_code(
            code=code_of(await consent(http, other)), redirect_uri=REDIRECT, code_verifier=None
        )


# --- publishing ---


async def test_publish_image_with_first_comment(http, adapter, base):
    """An image goes container → FINISHED → media_publish; the post has a permalink, and the first
    comment lands on the new media."""
    auth = await connect(http, adapter)
    part = await draft(adapter, auth, "Hello #herald", media(base))
    pending = await adapter.prepare(auth, part)
    assert isinstance(pending, Pending) and pending.check_after <= 1
    ref = await adapter.publish(auth, await settle(pending, lambda h: adapter.poll_prepared(auth, h)))
    assert ref.url.startswith("https://www.instagram.com/p/")
    comment = await adapter.comment(auth, ref, "First!", tag="t1")
    stored = await posts(http, base)
    assert [(p["id"], p["text"], p["reply_to"]) for p in stored] == [
        (ref.external_id, "Hello #herald", None),
        (comment.external_id, "First!", ref.external_id),
    ]
    assert stored[0]["media"] == [f"{base}/media/image.jpg"]


async def test_publish_reel_and_carousel(http, adapter, base):
    """One video becomes a Reel; three items become a carousel whose children keep their order."""
    auth = await connect(http, adapter)
    reel = await publish(
        adapter, auth, await draft(adapter, auth, "reel", media(base, "video.mp4", "video/mp4"))
    )
    assert "/reel/" in reel.url
    items = [media(base), media(base, "video.mp4", "video/mp4"), media(base, "image.jpg?size=4096")]
    album = await publish(adapter, auth, await draft(adapter, auth, "album", *items))
    stored = {p["id"]: p for p in await posts(http, base)}
    assert stored[album.external_id]["media"] == [m.url for m in items]
    assert stored[reel.external_id]["raw"]["creation_id"]


async def test_publish_before_container_finished_is_transient(http, adapter, base):
    """Publishing a container still IN_PROGRESS is error 9007/2207027: retry later, nothing posted."""
    auth = await connect(http, adapter)
    pending = await adapter.prepare(
        auth, await draft(adapter, auth, "soon", media(base, "video.mp4", "video/mp4"))
    )
    with pytest.raises(TransientError) as err:
        await adapter.publish(auth, Prepared(draft=PartDraft(text="soon"), handle=pending.handle))
    assert err.value.code == "not_ready"
    assert await posts(http, base) == []


# --- validation ---


async def test_validation_issues_name_the_field(adapter, base):
    """Caption over 2,200 characters, text without media, PNG, 11 items, unknown option and a Reel
    option on an image are refused before any request, each naming its field."""
    jpg = await adapter.upload_media(None, media(base))
    png = await adapter.upload_media(None, media(base, "image.png", "image/png"))
    f = "platform_posts[0]"

    def codes(part):
        return {(i.field, i.code) for i in adapter.validate(part, field_prefix=f)}

    assert (f"{f}.caption", "caption_too_long") in codes(PartDraft(text="é" * 2201, media=[jpg]))
    assert not codes(PartDraft(text="é" * 2200, media=[jpg]))
    assert (f"{f}.media", "media_required") in codes(PartDraft(text="text only"))
    assert (f"{f}.media[0]", "unsupported_media_type") in codes(PartDraft(text="x", media=[png]))
    assert (f"{f}.media", "too_many_media") in codes(PartDraft(text="x", media=[jpg] * 11))
    assert (f"{f}.platform_options.poll", "unknown_option") in codes(
        PartDraft(text="x", media=[jpg], options={"poll": 1})
    )
    assert (f"{f}.platform_options.share_to_feed", "invalid_option") in codes(
        PartDraft(text="x", media=[jpg], options={"share_to_feed": True})
    )
    assert (f"{f}.caption", "too_many_hashtags") in codes(
        PartDraft(text=" ".join(f"#t{i}" for i in range(31)), media=[jpg])
    )


# --- failures ---


async def test_server_error_is_transient(http, adapter, base):
    """A 5xx from Graph (code 2, is_transient) is a TransientError."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="http_5xx", path_contains="/media", status=503)
    with pytest.raises(TransientError):
        await adapter.prepare(auth, await draft(adapter, auth, "x", media(base)))


async def test_throttling_is_rate_limited_with_retry_after(http, adapter, base):
    """BUC throttling (code 80002) is RateLimited, retry_after from estimated_time_to_regain_access."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="rate_limit", path_contains="/media", retry_after=90)
    with pytest.raises(RateLimited) as err:
        await adapter.prepare(auth, await draft(adapter, auth, "x", media(base)))
    assert err.value.retry_after == 120  # 90 s rounds up to Graph's 2 minutes


async def test_publishing_cap_is_rate_limited(http, adapter, base):
    """With 100 posts in the last 24 h, media_publish answers 9/2207042: RateLimited, publishing_cap."""
    auth = await connect(http, adapter)
    prepared = await prepare(adapter, auth, await draft(adapter, auth, "one too many", media(base)))
    table = WORLD.state("instagram").table("media")
    for i in range(100):
        table[f"seed{i}"] = {"id": f"seed{i}", "owner": auth.external_id, "created_at": time.time()}
    with pytest.raises(RateLimited) as err:
        await adapter.publish(auth, prepared)
    assert err.value.code == "publishing_cap"


async def test_expired_token_is_auth_expired_and_cannot_be_extended(http, adapter, base):
    """An expired token is 190/463 → AuthExpired; Instagram only extends live tokens, so the refresh
    asks for a new login (AuthRevoked reauth_required) and a fresh login publishes again."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="expire_token", account=auth.external_id)
    with pytest.raises(AuthExpired):
        await adapter.prepare(auth, await draft(adapter, auth, "x", media(base)))
    with pytest.raises(AuthRevoked) as err:
        await adapter.refresh(auth.tokens)
    assert err.value.code == "reauth_required"
    again = await connect(http, adapter)
    assert (await publish(adapter, again, await draft(adapter, again, "back", media(base)))).external_id


async def test_revoked_token_is_auth_revoked(http, adapter, base):
    """A revoked grant is 190 (not 463) → AuthRevoked."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="revoke_token", account=auth.external_id)
    with pytest.raises(AuthRevoked):
        await adapter.fetch_profile(auth.tokens)


async def test_rejected_content_is_content_rejected(http, adapter, base):
    """A caption Instagram refuses (code 100) is ContentRejected and nothing is posted."""
    auth = await connect(http, adapter)
    await fault(http, base, kind="reject_content")
    with pytest.raises(ContentRejected):
        await adapter.prepare(auth, await draft(adapter, auth, "bad", media(base)))
    assert await posts(http, base) == []


async def test_bad_media_is_media_rejected(http, adapter, base):
    """A PNG (JPEG only) is refused when the container is created (2207009); bytes that are not a
    video fail processing, the container goes ERROR (2207026): both are MediaRejected."""
    auth = await connect(http, adapter)
    png = MediaSource(url=f"{base}/media/image.png", content_type="image/jpeg")
    with pytest.raises(MediaRejected):
        await adapter.prepare(auth, await draft(adapter, auth, "x", png))
    fake_video = media(base, "image.jpg", "video/mp4")
    with pytest.raises(MediaRejected) as err:
        await prepare(adapter, auth, await draft(adapter, auth, "x", fake_video))
    assert "2207026" in err.value.message
    missing = media(base, "nope.jpg")
    with pytest.raises(MediaRejected):
        await adapter.prepare(auth, await draft(adapter, auth, "x", missing))


async def test_dropped_publish_is_outcome_unknown_then_reconciled(http, adapter, base):
    """The connection drops after media_publish was accepted: OutcomeUnknown; reconcile (by listing
    and by the container, now PUBLISHED) finds exactly that post and the sandbox holds one copy."""
    auth = await connect(http, adapter)
    since = time.time()
    part = await draft(adapter, auth, "exactly once", media(base))
    prepared = await prepare(adapter, auth, part)
    assert await adapter.reconcile_prepared(auth, prepared, since=since) is None  # FINISHED, not published
    await fault(http, base, kind="drop_after_accept", path_contains="/media_publish")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, prepared)
    stored = await posts(http, base)
    assert len(stored) == 1
    found = await adapter.reconcile(auth, part, since=since)
    assert found.external_id == stored[0]["id"]
    via_container = await adapter.reconcile_prepared(auth, prepared, since=since)
    assert via_container.external_id == stored[0]["id"]
    assert await adapter.reconcile(auth, PartDraft(text="other", media=part.media), since=since) is None


async def test_dropped_comment_is_reconciled(http, adapter, base):
    """A first comment whose answer was lost is found among the parent's comments."""
    auth = await connect(http, adapter)
    since = time.time()
    ref = await publish(adapter, auth, await draft(adapter, auth, "parent", media(base)))
    await fault(http, base, kind="drop_after_accept", path_contains="/comments")
    with pytest.raises(OutcomeUnknown):
        await adapter.comment(auth, ref, "the comment", tag="c1")
    found = await adapter.reconcile(
        auth, PartDraft(text="the comment", reply_to=ref, is_comment=True), since=since
    )
    assert found.external_id == (await posts(http, base))[-1]["id"]


@pytest.fixture
def quick(monkeypatch):
    """Containers are ready and polled at once, so a test can publish many posts."""
    monkeypatch.setattr(graph, "POLL_DELAYS", (0.0,))
    monkeypatch.setitem(sandbox_graph.PROCESSING_SECONDS, "IMAGE", 0.0)


def backdate(media_id: str, seconds: float) -> None:
    """Moves a sandbox media into the past, as if it had been published `seconds` earlier."""
    with WORLD.lock:
        media = WORLD.state("instagram").table("media")[media_id]
        media["created_at"] -= seconds
        media["timestamp"] = sandbox_graph.graph_time(media["created_at"])


async def test_reconcile_reads_media_past_newer_posts(http, adapter, base, monkeypatch, quick):
    """An interrupted post pushed pages down by newer media is still found (by listing and by its
    container); "not there" is said once the listing was read back past the attempt (not to its end),
    and a window longer than the page budget is Unverifiable."""
    monkeypatch.setattr(instagram, "RECONCILE_PAGE", 2)
    auth = await connect(http, adapter)
    for i in range(5):
        older = await publish(adapter, auth, await draft(adapter, auth, f"older {i}", media(base)))
        backdate(older.external_id, 60)
    since = time.time()
    part = await draft(adapter, auth, "the interrupted one", media(base))
    prepared = await prepare(adapter, auth, part)
    await fault(http, base, kind="drop_after_accept", path_contains="/media_publish")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, prepared)
    for i in range(5):  # more than two pages of newer media
        await publish(adapter, auth, await draft(adapter, auth, f"newer {i}", media(base)))
    [interrupted] = [p for p in await posts(http, base) if p["text"] == part.text]
    assert (await adapter.reconcile(auth, part, since=since)).external_id == interrupted["id"]
    assert (await adapter.reconcile_prepared(auth, prepared, since=since)).external_id == interrupted["id"]
    never = PartDraft(text="never posted", media=part.media)
    assert await adapter.reconcile(auth, never, since=since) is None
    assert await adapter.reconcile(auth, PartDraft(text="older 4", media=part.media), since=since) is None
    # One media a page: the 6 posts since the attempt and one older fit the budget, the 11 posts do not.
    monkeypatch.setattr(instagram, "RECONCILE_PAGE", 1)
    assert await adapter.reconcile(auth, never, since=since) is None
    with pytest.raises(Unverifiable, match="Too many recent items"):
        await adapter.reconcile(auth, never, since=since - 120)


async def test_comment_reconcile_reads_every_page(http, adapter, base, monkeypatch):
    """A first comment followed by pages of newer comments is found; the comments are read to their end
    before "not there", and more than the budget can read is Unverifiable."""
    monkeypatch.setattr(instagram, "RECONCILE_PAGE", 2)
    auth = await connect(http, adapter)
    since = time.time()
    ref = await publish(adapter, auth, await draft(adapter, auth, "parent", media(base)))
    await fault(http, base, kind="drop_after_accept", path_contains="/comments")
    with pytest.raises(OutcomeUnknown):
        await adapter.comment(auth, ref, "the comment", tag="c")
    for i in range(10):
        await adapter.comment(auth, ref, f"newer comment {i}", tag=f"c{i}")
    [interrupted] = [p for p in await posts(http, base) if p["text"] == "the comment"]

    def comment(text: str) -> PartDraft:
        return PartDraft(text=text, reply_to=ref, is_comment=True)

    found = await adapter.reconcile(auth, comment("the comment"), since=since)
    assert found.external_id == interrupted["id"]
    assert await adapter.reconcile(auth, comment("never posted"), since=since) is None
    monkeypatch.setattr(instagram, "RECONCILE_PAGE", 1)
    with pytest.raises(Unverifiable):
        await adapter.reconcile(auth, comment("never posted"), since=since)
