"""LinkedIn adapter against the LinkedIn sandbox, over real HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from adapters.base import AccountAuth, ClientCredentials, MediaRef, MediaSource, PartDraft, PostRef, Prepared
from adapters.catalogue import resolve_endpoints
from adapters.errors import (
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
from adapters import linkedin
from adapters.linkedin import LINKEDIN_VERSION, PROVIDER, LinkedInAdapter, escape_little_text
from tests.support.drive import settle
from tests.support.sandbox import sandbox_server

REDIRECT = "https://herald.test/oauth/callback"
CLIENT = ClientCredentials("li-client", "li-secret")


@pytest.fixture(scope="module")
def base():
    with sandbox_server(["linkedin"]) as url:
        yield url


@pytest.fixture
async def http(base):
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(f"{base}/sandbox/_control/reset")
        yield client


@pytest.fixture
def adapter(base, http):
    return LinkedInAdapter(http, resolve_endpoints(PROVIDER, sandbox_base=base + "/sandbox"), CLIENT)


async def consent(http: httpx.AsyncClient, url: str, decision: str = "approve", username: str = "ada") -> dict:
    """Open the consent screen, submit it, and return the redirect's query parameters."""
    page = await http.get(url)
    assert page.status_code == 200
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    fields = {unescape(k): unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)}
    fields |= {"decision": decision, "sandbox_username": username}
    resp = await http.post(urljoin(url, action), data=fields)
    assert resp.status_code == 303
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["location"]).query).items()}


async def connect(adapter: LinkedInAdapter, http: httpx.AsyncClient, username: str = "ada") -> AccountAuth:
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st", code_verifier=None)
    params = await consent(http, url, username=username)
    tokens = await adapter.exchange_code(code=params["code"], redirect_uri=REDIRECT, code_verifier=None)
    profile = await adapter.fetch_profile(tokens)
    return AccountAuth(external_id=profile.external_id, tokens=tokens, username=profile.username)


async def fault(http: httpx.AsyncClient, base: str, kind: str, **spec) -> None:
    resp = await http.post(f"{base}/sandbox/_control/faults", json={"platform": "linkedin", "kind": kind, **spec})
    assert resp.status_code == 201


async def posts(http: httpx.AsyncClient, base: str, kind: str = "post") -> list[dict]:
    resp = await http.get(f"{base}/sandbox/_control/linkedin/posts")
    return [p for p in resp.json() if p["kind"] == kind]


async def publish(adapter: LinkedInAdapter, auth: AccountAuth, text: str, media=(), **options) -> PostRef:
    return await adapter.publish(auth, Prepared(PartDraft(text=text, media=list(media), options=options)))


async def upload(adapter: LinkedInAdapter, auth: AccountAuth, base: str, name: str, content_type: str,
                 size: int | None = None):
    url = f"{base}/media/{name}" + (f"?size={size}" if size else "")
    first = await adapter.upload_media(auth, MediaSource(url=url, content_type=content_type, alt_text="a cat"))
    return await settle(first, lambda h: adapter.poll_media(auth, h))


# --- OAuth ------------------------------------------------------------------


async def test_oauth_flow_profile_refresh_without_rotation_and_revoke(adapter, http):
    """The full 3-legged flow works without PKCE; a refresh keeps the same refresh token and its
    original expiry (no rotation), the old refresh token keeps working, and revoke kills the grant."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st", code_verifier="v" * 50)
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == ["openid profile email w_member_social"]
    assert "code_challenge" not in query
    params = await consent(http, url)
    assert params["state"] == "st"
    tokens = await adapter.exchange_code(code=params["code"], redirect_uri=REDIRECT, code_verifier=None)
    assert tokens.refresh_token and tokens.expires_at > time.time() + 59 * 86400
    profile = await adapter.fetch_profile(tokens)
    assert profile.display_name == "Ada" and profile.extra["author_urn"] == f"urn:li:person:{profile.external_id}"

    fresh = await adapter.refresh(tokens)
    assert fresh.access_token != tokens.access_token
    assert fresh.refresh_token == tokens.refresh_token
    assert abs(fresh.refresh_expires_at - tokens.refresh_expires_at) < 5
    again = await adapter.refresh(tokens)  # the original refresh token still works
    assert (await adapter.fetch_profile(again)).external_id == profile.external_id

    await adapter.revoke(again)
    with pytest.raises(AuthRevoked):
        await adapter.fetch_profile(again)
    with pytest.raises(AuthRevoked):
        await adapter.refresh(again)


async def test_deny_redirects_with_access_denied(adapter, http):
    """Cancelling the consent screen sends the user back with error=access_denied and the state."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st2", code_verifier=None)
    params = await consent(http, url, decision="deny")
    assert params["error"] == "access_denied" and params["state"] == "st2" and "code" not in params


async def test_code_is_single_use_and_bound_to_redirect_uri(adapter, http):
    """LinkedIn has no PKCE: the code is bound to its redirect_uri instead, and a code works once."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="s", code_verifier=None)
    code = (await consent(http, url))["code"]
    with pytest.raises(AuthRevoked):
        await adapter.exchange_code(code=code, redirect_uri="https://evil.test/cb", code_verifier=None)
    code = (await consent(http, url))["code"]
    await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)
    with pytest.raises(AuthRevoked, match="invalid_grant"):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)


# --- publishing ---------------------------------------------------------------


async def test_text_post_is_escaped_and_shown_verbatim(adapter, http, base):
    """Reserved little-text characters are escaped, so LinkedIn keeps the whole text; the URN
    comes from the x-restli-id header of the empty 201."""
    auth = await connect(adapter, http)
    text = "Launch (beta) #1 @team [docs] <3 a_b*c~d {x}|y \\ end"
    ref = await publish(adapter, auth, text, visibility="CONNECTIONS")
    assert ref.external_id.startswith("urn:li:share:")
    assert ref.url == f"https://www.linkedin.com/feed/update/{ref.external_id}"
    [post] = await posts(http, base)
    assert post["text"] == text and post["id"] == ref.external_id
    assert post["raw"]["commentary"] == escape_little_text(text)
    assert post["raw"]["visibility"] == "CONNECTIONS" and post["raw"]["lifecycleState"] == "PUBLISHED"


async def test_unescaped_text_would_be_truncated(http, base, adapter):
    """The sandbox cuts commentary at an unescaped reserved character, as LinkedIn does: escaping matters."""
    auth = await connect(adapter, http)
    resp = await http.post(
        f"{base}/sandbox/linkedin/rest/posts",
        headers={"Authorization": f"Bearer {auth.tokens.access_token}", "LinkedIn-Version": LINKEDIN_VERSION,
                 "X-Restli-Protocol-Version": "2.0.0"},
        json={"author": f"urn:li:person:{auth.external_id}", "commentary": "before (after)",
              "visibility": "PUBLIC",
              "distribution": {"feedDistribution": "MAIN_FEED"}, "lifecycleState": "PUBLISHED"},
    )
    assert resp.status_code == 201 and resp.content == b""
    assert (await posts(http, base))[0]["text"] == "before "


async def test_single_image_post(adapter, http, base):
    """An image goes initializeUpload -> PUT -> status polled to AVAILABLE, then posts as content.media."""
    auth = await connect(adapter, http)
    image = await upload(adapter, auth, base, "image.png", "image/png")
    assert image.platform_media_id.startswith("urn:li:image:")
    await publish(adapter, auth, "with image", [image])
    [post] = await posts(http, base)
    assert post["media"] == [image.platform_media_id]
    assert post["raw"]["content"] == {"media": {"id": image.platform_media_id, "altText": "a cat"}}


async def test_multi_image_post(adapter, http, base):
    """Two to twenty images become a multiImage post, in order."""
    auth = await connect(adapter, http)
    first = await upload(adapter, auth, base, "image.png", "image/png")
    second = await upload(adapter, auth, base, "image.jpg", "image/jpeg")
    await publish(adapter, auth, "two images", [first, second])
    [post] = await posts(http, base)
    assert post["media"] == [first.platform_media_id, second.platform_media_id]
    assert "multiImage" in post["raw"]["content"]


async def test_multipart_video_post(adapter, http, base):
    """A 5 MB video is PUT in LinkedIn's 4 MiB ranges, finalized with the parts' ETags in order,
    polled to AVAILABLE and posted."""
    auth = await connect(adapter, http)
    video = await upload(adapter, auth, base, "video.mp4", "video/mp4", size=5_000_000)
    assert video.platform_media_id.startswith("urn:li:video:")
    await publish(adapter, auth, "video", [video])
    assert (await posts(http, base))[0]["media"] == [video.platform_media_id]


async def test_first_comment(adapter, http, base):
    """A first comment lands on the post through socialActions, and reconcile can find it."""
    auth = await connect(adapter, http)
    since = time.time()
    parent = await publish(adapter, auth, "post")
    ref = await adapter.comment(auth, parent, "first! (really)", tag="c1")
    [comment] = await posts(http, base, "comment")
    assert comment["reply_to"] == parent.external_id and comment["text"] == "first! (really)"
    assert ref.external_id == comment["id"]
    draft = PartDraft(text="first! (really)", reply_to=parent, is_comment=True)
    assert (await adapter.reconcile(auth, draft, since=since)).external_id == ref.external_id


# --- failures -----------------------------------------------------------------


async def test_server_error_is_transient(adapter, http, base):
    """A 5xx from LinkedIn is a TransientError."""
    auth = await connect(adapter, http)
    await fault(http, base, "http_5xx", path_contains="/rest/posts")
    with pytest.raises(TransientError) as exc:
        await publish(adapter, auth, "hello")
    assert exc.value.status == 503 and not isinstance(exc.value, OutcomeUnknown)
    assert await posts(http, base) == []


async def test_throttle_is_rate_limited_until_midnight_utc(adapter, http, base):
    """A 429 (LinkedIn sends no Retry-After) is RateLimited with retry_after = time to the daily reset."""
    auth = await connect(adapter, http)
    await fault(http, base, "rate_limit", path_contains="/rest/posts")
    with pytest.raises(RateLimited) as exc:
        await publish(adapter, auth, "hello")
    assert 0 < exc.value.retry_after <= 86400


async def test_expired_token_then_refresh_and_retry(adapter, http, base):
    """EXPIRED_ACCESS_TOKEN is AuthExpired; after a refresh the same publish succeeds."""
    auth = await connect(adapter, http)
    await fault(http, base, "expire_token")
    with pytest.raises(AuthExpired):
        await publish(adapter, auth, "hello")
    auth.tokens = await adapter.refresh(auth.tokens)
    await publish(adapter, auth, "hello")
    assert len(await posts(http, base)) == 1


async def test_revoked_token_is_auth_revoked(adapter, http, base):
    """REVOKED_ACCESS_TOKEN (65601) is AuthRevoked, and the refresh token is dead too."""
    auth = await connect(adapter, http)
    await fault(http, base, "revoke_token")
    with pytest.raises(AuthRevoked, match="REVOKED_ACCESS_TOKEN"):
        await publish(adapter, auth, "hello")
    with pytest.raises(AuthRevoked):
        await adapter.refresh(auth.tokens)


async def test_rejected_content(adapter, http, base):
    """A policy refusal (422) is ContentRejected."""
    auth = await connect(adapter, http)
    await fault(http, base, "reject_content")
    with pytest.raises(ContentRejected) as exc:
        await publish(adapter, auth, "hello")
    assert not isinstance(exc.value, DuplicateContent)


async def test_bad_image_is_media_rejected(adapter, http, base):
    """Video bytes uploaded as an image end PROCESSING_FAILED, which is MediaRejected."""
    auth = await connect(adapter, http)
    with pytest.raises(MediaRejected):
        await upload(adapter, auth, base, "video.mp4", "image/png")


async def test_duplicate_post(adapter, http, base):
    """Posting the same commentary twice is 422 DUPLICATE_POST, which is DuplicateContent."""
    auth = await connect(adapter, http)
    await publish(adapter, auth, "same words")
    with pytest.raises(DuplicateContent, match="duplicate"):
        await publish(adapter, auth, "same words")


async def test_dropped_answer_is_outcome_unknown_and_reconcile_finds_it(adapter, http, base):
    """A connection cut after LinkedIn accepted the post is OutcomeUnknown; reconcile then finds
    exactly that post and the sandbox holds one copy."""
    auth = await connect(adapter, http)
    since = time.time()
    draft = PartDraft(text="Big news (really) #launch")
    assert await adapter.reconcile(auth, draft, since=since) is None
    await fault(http, base, "drop_after_accept", path_contains="/rest/posts")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, Prepared(draft))
    found = await adapter.reconcile(auth, draft, since=since)
    [post] = await posts(http, base)
    assert found is not None and found.external_id == post["id"]
    assert await adapter.reconcile(auth, PartDraft(text="other text"), since=since) is None
    assert await adapter.reconcile(auth, draft, since=time.time() + 5) is None


async def test_reconcile_reads_past_newer_posts(adapter, http, base, monkeypatch):
    """An interrupted post pushed pages down by newer ones is still found; "not there" is only said once the
    listing was read back past the attempt, and a listing longer than the page budget is Unverifiable."""
    monkeypatch.setattr(linkedin, "RECONCILE_PAGE", 3)
    auth = await connect(adapter, http)
    await publish(adapter, auth, "older than the attempt")
    since = time.time() + 2  # the listing allows one second for LinkedIn's truncated timestamps
    await asyncio.sleep(2.1)
    draft = PartDraft(text="the interrupted one")
    first = await publish(adapter, auth, draft.text)
    for i in range(12):  # pages of newer posts, and more posts than ten one-post pages hold
        await publish(adapter, auth, f"newer {i}")
    found = await adapter.reconcile(auth, draft, since=since)
    assert found is not None and found.external_id == first.external_id
    assert await adapter.reconcile(auth, PartDraft(text="never posted"), since=since) is None
    assert await adapter.reconcile(auth, PartDraft(text="older than the attempt"), since=since) is None
    monkeypatch.setattr(linkedin, "RECONCILE_PAGE", 1)
    with pytest.raises(Unverifiable, match="Too many recent items"):
        await adapter.reconcile(auth, PartDraft(text="never posted"), since=since - 60)


async def test_comment_reconcile_reads_every_page(adapter, http, base, monkeypatch):
    monkeypatch.setattr(linkedin, "RECONCILE_PAGE", 2)
    auth = await connect(adapter, http)
    since = time.time()
    parent = await publish(adapter, auth, "post")
    refs = [await adapter.comment(auth, parent, f"comment {i}", tag=f"c{i}") for i in range(5)]
    draft = PartDraft(text="comment 4", reply_to=parent, is_comment=True)
    assert (await adapter.reconcile(auth, draft, since=since)).external_id == refs[4].external_id
    assert await adapter.reconcile(auth, PartDraft(text="comment 9", reply_to=parent, is_comment=True),
                                   since=since) is None


async def test_version_headers_are_required(adapter, http, base):
    """/rest calls without LinkedIn-Version answer 400 VERSION_MISSING; a sunset version answers 426."""
    auth = await connect(adapter, http)
    url = f"{base}/sandbox/linkedin/rest/posts?q=author&author=urn:li:person:{auth.external_id}"
    bearer = {"Authorization": f"Bearer {auth.tokens.access_token}", "X-Restli-Protocol-Version": "2.0.0"}
    resp = await http.get(url, headers=bearer)
    assert resp.status_code == 400 and resp.json()["code"] == "VERSION_MISSING"
    resp = await http.get(url, headers=bearer | {"LinkedIn-Version": "202404"})
    assert resp.status_code == 426
    assert resp.json() == {"status": 426, "code": "NONEXISTENT_VERSION",
                           "message": "Requested version 20240401 is not active"}


# --- validation ---------------------------------------------------------------


def _fields(adapter: LinkedInAdapter, draft: PartDraft) -> dict[str, str]:
    return {i.field: i.code for i in adapter.validate(draft, field_prefix="platform_posts[0]")}


def test_validation_names_the_field(adapter):
    """Too long captions (in characters), too many or wrong media, and bad options are issues
    on the named field, before any request."""
    ok = PartDraft(text="x" * 3000)
    assert _fields(adapter, ok) == {}
    assert _fields(adapter, PartDraft(text="é" * 3001)) == {"platform_posts[0].caption": "caption_too_long"}
    images = [MediaRef(f"urn:li:image:{i}", "image/png") for i in range(21)]
    assert _fields(adapter, PartDraft(text="x", media=images))["platform_posts[0].media"] == "too_many_media"
    bad = [MediaRef("x", "application/pdf")]
    assert _fields(adapter, PartDraft(text="x", media=bad)) == {
        "platform_posts[0].media[0]": "unsupported_media_type"}
    mixed = [MediaRef("a", "image/png"), MediaRef("b", "video/mp4")]
    assert _fields(adapter, PartDraft(text="x", media=mixed)) == {"platform_posts[0].media": "mixed_media"}
    assert _fields(adapter, PartDraft(text="x", options={"board_id": "1"})) == {
        "platform_posts[0].platform_options.board_id": "unknown_option"}
    assert _fields(adapter, PartDraft(text="x", options={"visibility": "FRIENDS"})) == {
        "platform_posts[0].platform_options.visibility": "invalid_option"}

