"""Pinterest adapter against the Pinterest sandbox, over real HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from adapters import pinterest
from adapters.base import AccountAuth, ClientCredentials, MediaRef, MediaSource, PartDraft, PostRef, Prepared
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
from adapters.pinterest import PROVIDER, PinterestAdapter
from tests.support.drive import settle
from tests.support.sandbox import sandbox_server

REDIRECT = "https://herald.test/oauth/callback"
CLIENT = ClientCredentials("pin-client", "pin-secret")


@pytest.fixture(scope="module")
def base():
    with sandbox_server(["pinterest"]) as url:
        yield url


@pytest.fixture
async def http(base):
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(f"{base}/sandbox/_control/reset")
        yield client


@pytest.fixture
def adapter(base, http):
    return PinterestAdapter(http, resolve_endpoints(PROVIDER, sandbox_base=base + "/sandbox"), CLIENT)


async def consent(http: httpx.AsyncClient, url: str, decision: str = "approve", username: str = "pat") -> dict:
    """Open the consent screen, submit it, and return the redirect's query parameters."""
    page = await http.get(url)
    assert page.status_code == 200
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    fields = {unescape(k): unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)}
    fields |= {"decision": decision, "sandbox_username": username}
    resp = await http.post(urljoin(url, action), data=fields)
    assert resp.status_code == 303
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["location"]).query).items()}


async def connect(adapter: PinterestAdapter, http: httpx.AsyncClient) -> tuple[AccountAuth, str]:
    """A connected account and the id of a board it owns."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st", code_verifier=None)
    params = await consent(http, url)
    tokens = await adapter.exchange_code(code=params["code"], redirect_uri=REDIRECT, code_verifier=None)
    profile = await adapter.fetch_profile(tokens)
    auth = AccountAuth(external_id=profile.external_id, tokens=tokens, username=profile.username)
    board = await adapter.create_board(auth, "Recipes")
    return auth, board["id"]


async def fault(http: httpx.AsyncClient, base: str, kind: str, **spec) -> None:
    resp = await http.post(f"{base}/sandbox/_control/faults", json={"platform": "pinterest", "kind": kind, **spec})
    assert resp.status_code == 201


async def pins(http: httpx.AsyncClient, base: str) -> list[dict]:
    return (await http.get(f"{base}/sandbox/_control/pinterest/posts")).json()


def image(base: str, name: str = "image.jpg", content_type: str = "image/jpeg") -> MediaRef:
    return MediaRef(platform_media_id=f"{base}/media/{name}", content_type=content_type,
                    data={"url": f"{base}/media/{name}"})


def draft(text: str, media: list[MediaRef], board_id: str, **options) -> PartDraft:
    return PartDraft(text=text, media=media, options={"board_id": board_id, **options})


# --- OAuth ------------------------------------------------------------------


async def test_oauth_flow_with_basic_auth_and_rotating_refresh(adapter, http, base):
    """Scopes are comma-separated, the code exchange uses HTTP Basic, each refresh returns a new
    60-day refresh token and the old one stops working; revoke sends nothing (no endpoint)."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st", code_verifier="v" * 50)
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == ["boards:read,boards:write,pins:read,pins:write,user_accounts:read"]
    assert "code_challenge" not in query
    params = await consent(http, url)
    tokens = await adapter.exchange_code(code=params["code"], redirect_uri=REDIRECT, code_verifier=None)
    assert tokens.access_token.startswith("pina_")
    assert tokens.expires_at > time.time() + 29 * 86400
    assert tokens.refresh_expires_at > time.time() + 59 * 86400
    profile = await adapter.fetch_profile(tokens)
    assert profile.username == "pat" and profile.external_id

    fresh = await adapter.refresh(tokens)
    assert fresh.refresh_token and fresh.refresh_token != tokens.refresh_token
    with pytest.raises(AuthRevoked):
        await adapter.refresh(tokens)
    assert (await adapter.fetch_profile(fresh)).external_id == profile.external_id
    assert await adapter.revoke(fresh) is None
    assert (await adapter.fetch_profile(fresh)).external_id == profile.external_id


async def test_token_endpoint_requires_http_basic(base, http, adapter):
    """Client credentials in the form body are refused: Pinterest wants HTTP Basic."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st", code_verifier=None)
    code = (await consent(http, url))["code"]
    resp = await http.post(f"{base}/sandbox/pinterest/v5/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret})
    assert resp.status_code == 401 and resp.json()["code"] == 2


async def test_deny_and_code_reuse(adapter, http):
    """Cancel redirects with error=access_denied; an authorization code works exactly once."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="s", code_verifier=None)
    assert (await consent(http, url, decision="deny"))["error"] == "access_denied"
    code = (await consent(http, url))["code"]
    await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)
    with pytest.raises(AuthRevoked):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)


async def test_boards_paginate_with_bookmark(adapter, http):
    """Boards list through Pinterest's bookmark cursor."""
    auth, first = await connect(adapter, http)
    for name in ("Travel", "Garden"):
        await adapter.create_board(auth, name)
    page, bookmark = await adapter.list_boards(auth, page_size=2)
    assert [b["name"] for b in page] == ["Recipes", "Travel"] and bookmark
    rest, bookmark = await adapter.list_boards(auth, bookmark=bookmark, page_size=2)
    assert [b["name"] for b in rest] == ["Garden"] and bookmark is None
    assert page[0]["id"] == first


# --- publishing ---------------------------------------------------------------


async def test_image_pin(adapter, http, base):
    """One image is an image_url source Pinterest fetches; options land on the Pin; rate-limit headers are sent."""
    auth, board = await connect(adapter, http)
    media = await adapter.upload_media(auth, MediaSource(url=f"{base}/media/image.jpg", content_type="image/jpeg",
                                                         alt_text="soup"))
    ref = await adapter.publish(auth, Prepared(draft("Tomato soup", [media], board, title="Soup",
                                                     link="https://example.com/soup")))
    assert ref.url == f"https://www.pinterest.com/pin/{ref.external_id}/"
    [pin] = await pins(http, base)
    assert pin["id"] == ref.external_id and pin["text"] == "Tomato soup"
    assert pin["raw"]["media_source"] == {"source_type": "image_url", "url": f"{base}/media/image.jpg"}
    assert pin["raw"]["title"] == "Soup" and pin["raw"]["alt_text"] == "soup"
    resp = await http.get(f"{base}/sandbox/pinterest/v5/boards",
                          headers={"Authorization": f"Bearer {auth.tokens.access_token}"})
    assert int(resp.headers["x-ratelimit-limit"]) >= int(resp.headers["x-ratelimit-remaining"]) >= 0


async def test_carousel_pin(adapter, http, base):
    """Two to five images become a multiple_image_urls carousel, in order."""
    auth, board = await connect(adapter, http)
    media = [image(base, "image.jpg"), image(base, "image.png", "image/png")]
    await adapter.publish(auth, Prepared(draft("two", media, board)))
    [pin] = await pins(http, base)
    assert pin["raw"]["media_source"]["source_type"] == "multiple_image_urls"
    assert pin["media"] == [m.platform_media_id for m in media]


async def test_video_pin(adapter, http, base):
    """A video is registered, uploaded to the presigned POST with every field, polled to
    succeeded, and pinned with video_id and a key-frame cover."""
    auth, board = await connect(adapter, http)
    first = await adapter.upload_media(auth, MediaSource(url=f"{base}/media/video.mp4", content_type="video/mp4"))
    video = await settle(first, lambda h: adapter.poll_media(auth, h))
    await adapter.publish(auth, Prepared(draft("clip", [video], board)))
    [pin] = await pins(http, base)
    assert pin["raw"]["media_source"] == {"source_type": "video_id", "media_id": video.platform_media_id,
                                          "cover_image_key_frame_time": 0}


async def test_video_that_is_not_a_video_fails_processing(adapter, http, base):
    """Image bytes uploaded as a video end in status failed, which is MediaRejected."""
    auth, _ = await connect(adapter, http)
    first = await adapter.upload_media(auth, MediaSource(url=f"{base}/media/image.png", content_type="video/mp4"))
    with pytest.raises(MediaRejected):
        await settle(first, lambda h: adapter.poll_media(auth, h))


# --- failures -----------------------------------------------------------------


async def test_server_error_is_transient(adapter, http, base):
    """A 5xx is a TransientError and nothing is pinned."""
    auth, board = await connect(adapter, http)
    await fault(http, base, "http_5xx", path_contains="/v5/pins")
    with pytest.raises(TransientError) as exc:
        await adapter.publish(auth, Prepared(draft("x", [image(base)], board)))
    assert exc.value.status == 503 and not isinstance(exc.value, OutcomeUnknown)
    assert await pins(http, base) == []


async def test_rate_limited_with_retry_after(adapter, http, base):
    """A 429 is RateLimited carrying the seconds the platform asked for."""
    auth, board = await connect(adapter, http)
    await fault(http, base, "rate_limit", path_contains="/v5/pins", retry_after=7)
    with pytest.raises(RateLimited) as exc:
        await adapter.publish(auth, Prepared(draft("x", [image(base)], board)))
    assert exc.value.retry_after == 7


async def test_expired_token_then_refresh_and_retry(adapter, http, base):
    """A 401 on an expired token is AuthExpired; after a refresh the same Pin is created."""
    auth, board = await connect(adapter, http)
    await fault(http, base, "expire_token")
    with pytest.raises(AuthExpired):
        await adapter.publish(auth, Prepared(draft("x", [image(base)], board)))
    auth.tokens = await adapter.refresh(auth.tokens)
    await adapter.publish(auth, Prepared(draft("x", [image(base)], board)))
    assert len(await pins(http, base)) == 1


async def test_revoked_grant_ends_in_auth_revoked(adapter, http, base):
    """Pinterest answers a revoked token with the same 401 as an expired one (AuthExpired: refresh);
    the refresh then fails for good with AuthRevoked."""
    auth, board = await connect(adapter, http)
    await fault(http, base, "revoke_token")
    with pytest.raises(AuthExpired):
        await adapter.publish(auth, Prepared(draft("x", [image(base)], board)))
    with pytest.raises(AuthRevoked):
        await adapter.refresh(auth.tokens)


async def test_rejected_content(adapter, http, base):
    """A policy refusal is ContentRejected."""
    auth, board = await connect(adapter, http)
    await fault(http, base, "reject_content")
    with pytest.raises(ContentRejected):
        await adapter.publish(auth, Prepared(draft("x", [image(base)], board)))


async def test_unknown_board_names_the_board(adapter, http, base):
    """A board that does not exist (404) is ContentRejected with a message naming the board."""
    auth, _ = await connect(adapter, http)
    with pytest.raises(ContentRejected, match="board 123456 "):
        await adapter.publish(auth, Prepared(draft("x", [image(base)], "123456")))


async def test_bad_and_unreachable_image_urls(adapter, http, base):
    """A URL that serves no image is MediaRejected; an unreachable URL ("unable to reach the URL")
    is transient, as Pinterest documents."""
    auth, board = await connect(adapter, http)
    with pytest.raises(MediaRejected, match="not a valid image"):
        await adapter.publish(auth, Prepared(draft("x", [image(base, "video.mp4")], board)))
    with pytest.raises(TransientError, match="unable to reach the URL"):
        await adapter.publish(auth, Prepared(draft("x", [image(base, "missing.jpg")], board)))
    assert await pins(http, base) == []


async def test_dropped_answer_is_outcome_unknown_and_reconcile_finds_it(adapter, http, base):
    """A connection cut after the Pin was created is OutcomeUnknown; reconcile finds exactly that
    Pin on the board (matching description, title and link) and the sandbox holds one copy."""
    auth, board = await connect(adapter, http)
    since = time.time()
    part = draft("Pasta night", [image(base)], board, title="Pasta", link="https://example.com/p")
    await adapter.publish(auth, Prepared(draft("Other pin", [image(base)], board)))
    assert await adapter.reconcile(auth, part, since=since) is None
    await fault(http, base, "drop_after_accept", path_contains="/v5/pins")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, Prepared(part))
    found = await adapter.reconcile(auth, part, since=since)
    matching = [p for p in await pins(http, base) if p["text"] == "Pasta night"]
    assert len(matching) == 1 and isinstance(found, PostRef) and found.external_id == matching[0]["id"]
    other_link = draft("Pasta night", [image(base)], board, title="Pasta", link="https://example.com/q")
    assert await adapter.reconcile(auth, other_link, since=since) is None


async def test_reconcile_reads_past_newer_pins(adapter, http, base, monkeypatch):
    """A Pin whose answer was lost and that newer Pins pushed pages down the board is still found; "not
    there" is only said once the board was read back past the attempt, and more recent Pins than the page
    budget reads is Unverifiable."""
    monkeypatch.setattr(pinterest, "PAGE_SIZE", 2)
    auth, board = await connect(adapter, http)
    older = draft("Older than the attempt", [image(base)], board)
    await adapter.publish(auth, Prepared(older))
    since = time.time() + 1  # created_at is whole seconds, and reconcile allows one
    await asyncio.sleep(2.1)
    part = draft("Pasta night", [image(base)], board, title="Pasta")
    first = await adapter.publish(auth, Prepared(part))
    for i in range(10):  # five pages of newer Pins, and more than ten one-Pin pages hold
        await adapter.publish(auth, Prepared(draft(f"Newer {i}", [image(base)], board)))
    found = await adapter.reconcile(auth, part, since=since)
    assert found is not None and found.external_id == first.external_id
    never = draft("Never pinned", [image(base)], board)
    assert await adapter.reconcile(auth, never, since=since) is None
    assert await adapter.reconcile(auth, older, since=since) is None
    monkeypatch.setattr(pinterest, "PAGE_SIZE", 1)
    with pytest.raises(Unverifiable, match="Too many recent items"):
        await adapter.reconcile(auth, never, since=since - 60)


# --- validation ---------------------------------------------------------------


def _issues(adapter: PinterestAdapter, part: PartDraft) -> dict[str, str]:
    return {i.field: i.code for i in adapter.validate(part, field_prefix="platform_posts[0]")}


def test_validation_names_the_field(adapter):
    """Missing board, too long description (500 characters), media missing, too many or wrong,
    and bad or unknown options are issues on the named field, before any request."""
    img = MediaRef("https://x.test/a.jpg", "image/jpeg")
    assert _issues(adapter, draft("x" * 500, [img], "1")) == {}
    assert _issues(adapter, PartDraft(text="x", media=[img])) == {
        "platform_posts[0].platform_options.board_id": "missing_option"}
    assert _issues(adapter, draft("x" * 501, [img], "1")) == {"platform_posts[0].caption": "caption_too_long"}
    assert _issues(adapter, draft("x", [], "1")) == {"platform_posts[0].media": "media_required"}
    assert _issues(adapter, draft("x", [img] * 6, "1")) == {"platform_posts[0].media": "too_many_media"}
    assert _issues(adapter, draft("x", [MediaRef("u", "image/tiff")], "1")) == {
        "platform_posts[0].media[0]": "unsupported_media_type"}
    assert _issues(adapter, draft("x", [img], "1", title="t" * 101)) == {
        "platform_posts[0].platform_options.title": "invalid_option"}
    assert _issues(adapter, draft("x", [img], "my-board")) == {
        "platform_posts[0].platform_options.board_id": "invalid_option"}
    assert _issues(adapter, draft("x", [img], "1", visibility="PUBLIC")) == {
        "platform_posts[0].platform_options.visibility": "unknown_option"}
