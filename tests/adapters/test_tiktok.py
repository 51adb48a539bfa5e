"""TikTok adapter against the sandbox TikTok, over real HTTP."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters.base import AccountAuth, ClientCredentials, MediaRef, MediaSource, PartDraft, PostRef, Prepared
from adapters.catalogue import resolve_endpoints
from adapters.errors import (
    AdapterError,
    AuthExpired,
    AuthRevoked,
    ContentRejected,
    MediaRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    Unverifiable,
)
from adapters.tiktok import PROVIDER, TikTokAdapter, classify
from tests.support.drive import settle
from tests.support.sandbox import sandbox_server

REDIRECT = "https://herald.example/oauth/callback/tiktok"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with sandbox_server(["tiktok"]) as url:
        yield url


@pytest.fixture
async def http(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(f"{base}/sandbox/_control/reset")
        yield client


@pytest.fixture
def adapter(base: str, http: httpx.AsyncClient) -> TikTokAdapter:
    endpoints = resolve_endpoints(PROVIDER, sandbox_base=base + "/sandbox")
    adapter = TikTokAdapter(http, endpoints, ClientCredentials("tt-client-key", "tt-secret"))
    adapter.status_check_after = 0.2
    return adapter


async def consent(
    http: httpx.AsyncClient, url: str, *, decision: str = "approve", username: str = "creator"
) -> dict[str, list[str]]:
    """Open the consent screen, submit it, and return the redirect's query parameters."""
    page = await http.get(url)
    assert page.status_code == 200, page.text
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    fields = {
        html.unescape(k): html.unescape(v)
        for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
    }
    resp = await http.post(action, data={**fields, "sandbox_username": username, "decision": decision})
    assert resp.status_code == 303
    return parse_qs(urlsplit(resp.headers["location"]).query)


async def connect(adapter: TikTokAdapter, http: httpx.AsyncClient, username: str = "creator") -> AccountAuth:
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st", code_verifier=None)
    query = await consent(http, url, username=username)
    tokens = await adapter.exchange_code(code=query["code"][0], redirect_uri=REDIRECT, code_verifier=None)
    profile = await adapter.fetch_profile(tokens)
    return AccountAuth(external_id=profile.external_id, tokens=tokens, username=profile.username)


async def fault(http: httpx.AsyncClient, base: str, **spec) -> None:
    resp = await http.post(f"{base}/sandbox/_control/faults", json={"platform": "tiktok", **spec})
    assert resp.status_code == 201, resp.text


async def posts(http: httpx.AsyncClient, base: str) -> list[dict]:
    return (await http.get(f"{base}/sandbox/_control/tiktok/posts")).json()


async def verify_prefix(http: httpx.AsyncClient, base: str) -> None:
    resp = await http.post(
        f"{base}/sandbox/tiktok/_sandbox/verified_url_prefixes", json={"prefix": f"{base}/media/"}
    )
    assert resp.status_code == 201


async def video_draft(
    adapter: TikTokAdapter,
    auth: AccountAuth,
    base: str,
    *,
    size: int = 64 * 1024,
    name: str = "video.mp4",
    content_type: str = "video/mp4",
    **options,
) -> PartDraft:
    ref = await adapter.upload_media(
        auth, MediaSource(url=f"{base}/media/{name}?size={size}", content_type=content_type)
    )
    return PartDraft(
        text="Behind the scenes #dev", media=[ref], options={"privacy_level": "PUBLIC_TO_EVERYONE", **options}
    )


async def publish(adapter: TikTokAdapter, auth: AccountAuth, draft: PartDraft) -> PostRef:
    prepared = await adapter.prepare(auth, draft)
    return await settle(await adapter.publish(auth, prepared), lambda h: adapter.poll_publish(auth, h))


async def test_oauth_flow_client_key_rotation_and_revoke(adapter, http):
    """TikTok's flow: client_key and comma-separated scopes, no PKCE for web; the token answer carries
    open_id; each refresh rotates the refresh token and the old one stops working; revoke ends it all."""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="s1", code_verifier=None)
    q = parse_qs(urlsplit(url).query)
    assert q["client_key"] == ["tt-client-key"] and "client_id" not in q and "code_challenge" not in q
    assert q["scope"] == ["user.info.basic,user.info.profile,video.publish,video.upload"]
    back = await consent(http, url)
    tokens = await adapter.exchange_code(code=back["code"][0], redirect_uri=REDIRECT, code_verifier=None)
    assert tokens.extra["open_id"] and tokens.refresh_expires_at and tokens.expires_at
    profile = await adapter.fetch_profile(tokens)
    assert profile.external_id == tokens.extra["open_id"] and profile.username == "creator"

    fresh = await adapter.refresh(tokens)
    assert fresh.refresh_token != tokens.refresh_token
    with pytest.raises(AuthRevoked, match="invalid_grant"):  # the replaced refresh token is dead
        await adapter.refresh(tokens)
    assert (await adapter.fetch_profile(fresh)).external_id == profile.external_id

    await adapter.revoke(fresh)
    with pytest.raises(AuthExpired):  # TikTok says access_token_invalid for any dead token
        await adapter.fetch_profile(fresh)
    with pytest.raises(AuthRevoked):
        await adapter.refresh(fresh)


async def test_deny_and_code_reuse(adapter, http):
    """Cancelling consent redirects with error=access_denied; an authorization code works once only.
    (TikTok web apps use no PKCE, so there is no verifier to mismatch.)"""
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="s2", code_verifier=None)
    back = await consent(http, url, decision="deny")
    assert back["error"] == ["access_denied"] and back["state"] == ["s2"]
    code = (await consent(http, url))["code"][0]
    await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)
    with pytest.raises(AuthRevoked, match="invalid_grant"):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=None)


async def test_publish_video_file_upload(adapter, http, base):
    """A small video is one FILE_UPLOAD chunk; status/fetch reaches PUBLISH_COMPLETE with the post id."""
    auth = await connect(adapter, http)
    ref = await publish(adapter, auth, await video_draft(adapter, auth, base))
    [post] = await posts(http, base)
    assert ref.external_id == post["id"] and ref.data["publish_id"] == post["publish_id"]
    assert ref.url == f"https://www.tiktok.com/@creator/video/{post['id']}"
    assert post["text"] == "Behind the scenes #dev" and post["raw"]["source_info"]["source"] == "FILE_UPLOAD"


async def test_large_video_is_uploaded_in_chunks(adapter, http, base):
    """A 21 MB video follows TikTok's chunk rules: 10 MB chunks, floor(size/chunk) of them, the last
    one taking the remainder; the sandbox refuses any other split."""
    auth = await connect(adapter, http)
    await publish(adapter, auth, await video_draft(adapter, auth, base, size=21 * MB))
    [post] = await posts(http, base)
    info = post["raw"]["source_info"]
    assert (info["video_size"], info["chunk_size"], info["total_chunk_count"]) == (21 * MB, 10 * MB, 2)
    assert post["media"][0]["bytes"] == 21 * MB


async def test_self_only_post_has_no_post_id(adapter, http, base):
    """TikTok gives no post id for SELF_ONLY posts: the result is the publish_id, and says so."""
    auth = await connect(adapter, http)
    ref = await publish(adapter, auth, await video_draft(adapter, auth, base, privacy_level="SELF_ONLY"))
    assert ref.external_id == ref.data["publish_id"] and ref.data["private"] and ref.url is None


async def test_pull_from_url_needs_a_verified_prefix(adapter, http, base):
    """PULL_FROM_URL is refused with url_ownership_unverified until the URL prefix is verified."""
    auth = await connect(adapter, http)
    draft = await video_draft(adapter, auth, base, source="PULL_FROM_URL")
    with pytest.raises(ContentRejected, match="url_ownership_unverified"):
        await publish(adapter, auth, draft)
    await verify_prefix(http, base)
    ref = await publish(adapter, auth, draft)
    [post] = await posts(http, base)
    assert post["id"] == ref.external_id and post["raw"]["source_info"]["source"] == "PULL_FROM_URL"


async def test_photo_post(adapter, http, base):
    """Photos go through content/init, pulled from verified URLs; the caption is the description."""
    auth = await connect(adapter, http)
    await verify_prefix(http, base)
    photos = [
        await adapter.upload_media(
            auth, MediaSource(url=f"{base}/media/image.jpg", content_type="image/jpeg")
        )
        for _ in range(2)
    ]
    draft = PartDraft(
        text="Two shots", media=photos, options={"privacy_level": "PUBLIC_TO_EVERYONE", "title": "Shots"}
    )
    ref = await publish(adapter, auth, draft)
    [post] = await posts(http, base)
    assert post["id"] == ref.external_id and len(post["media"]) == 2
    assert post["raw"]["post_info"]["description"] == "Two shots" and post["raw"]["media_type"] == "PHOTO"


async def test_bad_media_fails_processing(adapter, http, base):
    """Bytes that are not what TikTok takes (a PNG as a video, a PNG as a photo) end FAILED with
    file_format_check_failed: MediaRejected, and no post exists."""
    auth = await connect(adapter, http)
    draft = await video_draft(adapter, auth, base, name="image.png")
    with pytest.raises(MediaRejected, match="file_format_check_failed"):
        await publish(adapter, auth, draft)
    await verify_prefix(http, base)
    png = MediaRef(f"{base}/media/image.png", "image/jpeg", data={"url": f"{base}/media/image.png"})
    with pytest.raises(MediaRejected, match="file_format_check_failed"):
        await publish(adapter, auth, PartDraft(text="x", media=[png], options={"privacy_level": "SELF_ONLY"}))
    assert await posts(http, base) == []


async def test_privacy_level_must_be_offered_by_the_creator(adapter, http, base):
    """A private account cannot post PUBLIC_TO_EVERYONE: prepare refuses it from creator_info, and
    TikTok itself answers privacy_level_option_mismatch if the check is skipped."""
    auth = await connect(adapter, http, username="private_creator")
    draft = await video_draft(adapter, auth, base)
    with pytest.raises(ContentRejected, match="privacy_level_option_mismatch"):
        await adapter.prepare(auth, draft)
    with pytest.raises(ContentRejected, match="privacy_level_option_mismatch"):
        await adapter.publish(auth, Prepared(draft=draft))
    ok = await video_draft(adapter, auth, base, privacy_level="FOLLOWER_OF_CREATOR")
    assert (await publish(adapter, auth, ok)).external_id


async def test_5xx_is_transient_then_publish_works(adapter, http, base):
    """internal_error (500) on video/init is a TransientError; the retry publishes exactly once."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="http_5xx", status=500, path_contains="/video/init/")
    draft = await video_draft(adapter, auth, base)
    with pytest.raises(TransientError) as info:
        await publish(adapter, auth, draft)
    assert not isinstance(info.value, OutcomeUnknown)
    await publish(adapter, auth, draft)
    assert len(await posts(http, base)) == 1


async def test_rate_limit(adapter, http, base):
    """429 rate_limit_exceeded is RateLimited with TikTok's one-minute window; the real per-token limit
    (6 video/init a minute) answers the same way."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="rate_limit", path_contains="/creator_info/")
    with pytest.raises(RateLimited) as info:
        await adapter.prepare(auth, await video_draft(adapter, auth, base))
    assert info.value.retry_after == 60
    draft = await video_draft(adapter, auth, base, privacy_level="SELF_ONLY")
    for _ in range(6):
        await adapter.publish(auth, Prepared(draft=draft))
    with pytest.raises(RateLimited):
        await adapter.publish(auth, Prepared(draft=draft))


async def test_expired_token_then_refresh_and_retry(adapter, http, base):
    """An expired access token is AuthExpired; after a (rotating) refresh the publish succeeds."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="expire_token")
    draft = await video_draft(adapter, auth, base)
    with pytest.raises(AuthExpired):
        await publish(adapter, auth, draft)
    auth.tokens = await adapter.refresh(auth.tokens)
    assert (await publish(adapter, auth, draft)).external_id


async def test_revoked_grant_is_auth_revoked_at_refresh(adapter, http, base):
    """TikTok says access_token_invalid for a revoked token too (AuthExpired); the refresh then fails
    with invalid_grant: AuthRevoked."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="revoke_token")
    with pytest.raises(AuthExpired):
        await publish(adapter, auth, await video_draft(adapter, auth, base))
    with pytest.raises(AuthRevoked):
        await adapter.refresh(auth.tokens)


async def test_rejected_content(adapter, http, base):
    """spam_risk_text is ContentRejected and nothing is posted."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="reject_content")
    with pytest.raises(ContentRejected, match="spam_risk_text"):
        await publish(adapter, auth, await video_draft(adapter, auth, base))
    assert await posts(http, base) == []


async def test_dropped_last_chunk_then_reconcile_by_publish_id(adapter, http, base):
    """The last chunk is accepted but its answer is lost: OutcomeUnknown carrying the publish_id.
    Reconcile with it finds exactly that post; without it TikTok cannot tell (Unverifiable)."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="drop_after_accept", path_contains="/video/", method="PUT")
    draft = await video_draft(adapter, auth, base)
    prepared = await adapter.prepare(auth, draft)
    with pytest.raises(OutcomeUnknown) as info:
        await adapter.publish(auth, prepared)
    handle = info.value.handle
    assert handle["privacy_level"] == "PUBLIC_TO_EVERYONE" and handle["publish_id"] in str(info.value)
    pending = await adapter.reconcile(auth, draft, since=0, handle=handle)
    assert pending.data["pending"] and pending.external_id == handle["publish_id"]
    await asyncio.sleep(0.4)
    found = await adapter.reconcile(auth, draft, since=0, handle=handle)
    [post] = await posts(http, base)
    assert found.external_id == post["id"] and post["publish_id"] == handle["publish_id"]
    with pytest.raises(Unverifiable):
        await adapter.reconcile(auth, draft, since=0)


async def test_dropped_photo_init_is_unverifiable(adapter, http, base):
    """A lost content/init answer may still become a post; with no publish_id reconcile is Unverifiable
    (the result becomes unconfirmed) and the sandbox holds one post, never two."""
    auth = await connect(adapter, http)
    await verify_prefix(http, base)
    await fault(http, base, kind="drop_after_accept", path_contains="/content/init/")
    photo = await adapter.upload_media(
        auth, MediaSource(url=f"{base}/media/image.jpg", content_type="image/jpeg")
    )
    draft = PartDraft(text="x", media=[photo], options={"privacy_level": "SELF_ONLY"})
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, Prepared(draft=draft))
    with pytest.raises(Unverifiable):
        await adapter.reconcile(auth, draft, since=0)
    assert len(await posts(http, base)) == 1


def test_error_codes_are_classified():
    """TikTok's error codes and fail reasons map onto the typed errors, daily caps with a long wait."""
    assert isinstance(classify("access_token_invalid", ""), AuthExpired)
    assert isinstance(classify("scope_not_authorized", ""), AuthRevoked)
    assert isinstance(classify("spam_risk_user_banned_from_posting", ""), ContentRejected)
    assert isinstance(classify("duration_check_failed", ""), MediaRejected)
    assert isinstance(classify("video_pull_failed", ""), TransientError)
    capped = classify("spam_risk_too_many_posts", "")
    assert isinstance(capped, RateLimited) and capped.retry_after >= 3600
    assert type(classify("something_new", "", status=418)) is AdapterError


def test_validation_names_the_field(adapter):
    """Captions count UTF-16 units; privacy_level is required; media, options and unsupported
    features are reported with the field named."""
    video = MediaRef("u", "video/mp4")
    photo = MediaRef("u", "image/jpeg")
    level = {"privacy_level": "SELF_ONLY"}
    assert adapter.validate(PartDraft(text="😀" * 1100, media=[video], options=level), field_prefix="p") == []

    def codes(draft: PartDraft, **kw) -> set[tuple[str, str]]:
        return {(i.field, i.code) for i in adapter.validate(draft, field_prefix="p", **kw)}

    assert ("p.caption", "caption_too_long") in codes(
        PartDraft(text="😀" * 1101, media=[video], options=level)
    )
    assert ("p.platform_options.privacy_level", "option_required") in codes(
        PartDraft(text="x", media=[video])
    )
    assert ("p.platform_options.privacy_level", "invalid_option") in codes(
        PartDraft(text="x", media=[video], options={"privacy_level": "EVERYONE"})
    )
    assert ("p.platform_options.mood", "unknown_option") in codes(
        PartDraft(text="x", media=[video], options={**level, "mood": "happy"})
    )
    assert ("p.media", "too_many_media") in codes(PartDraft(text="x", media=[photo] * 36, options=level))
    assert ("p.media[0]", "unsupported_media_type") in codes(
        PartDraft(text="x", media=[MediaRef("u", "image/png")], options=level)
    )
    assert ("p.media", "mixed_media") in codes(PartDraft(text="x", media=[video, photo], options=level))
    assert ("p.media", "media_required") in codes(PartDraft(text="x", options=level))
    assert ("p.thread_position", "threads_unsupported") in codes(
        PartDraft(text="x", media=[video], options=level), part_count=2
    )
