"""YouTube adapter against the sandbox YouTube, over real HTTP."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters import youtube
from adapters.base import AccountAuth, ClientCredentials, MediaSource, PartDraft, PostRef, Prepared
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
from adapters.youtube import CHUNK_UNIT, PROVIDER, YouTubeAdapter, raise_for, seconds_until_pacific_midnight
from tests.support.drive import settle
from tests.support.sandbox import sandbox_server

REDIRECT = "https://herald.example/oauth/callback/youtube"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with sandbox_server(["youtube"]) as url:
        yield url


@pytest.fixture
async def http(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(f"{base}/sandbox/_control/reset")
        yield client


@pytest.fixture
def adapter(base: str, http: httpx.AsyncClient) -> YouTubeAdapter:
    endpoints = resolve_endpoints(PROVIDER, sandbox_base=base + "/sandbox")
    return YouTubeAdapter(http, endpoints, ClientCredentials("yt-client", "yt-secret"))


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


async def connect(adapter: YouTubeAdapter, http: httpx.AsyncClient, username: str = "creator") -> AccountAuth:
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st", code_verifier=verifier)
    query = await consent(http, url, username=username)
    tokens = await adapter.exchange_code(code=query["code"][0], redirect_uri=REDIRECT, code_verifier=verifier)
    profile = await adapter.fetch_profile(tokens)
    return AccountAuth(external_id=profile.external_id, tokens=tokens, username=profile.username)


async def fault(http: httpx.AsyncClient, base: str, **spec) -> None:
    resp = await http.post(f"{base}/sandbox/_control/faults", json={"platform": "youtube", **spec})
    assert resp.status_code == 201, resp.text


async def posts(http: httpx.AsyncClient, base: str) -> list[dict]:
    return (await http.get(f"{base}/sandbox/_control/youtube/posts")).json()


async def video_draft(
    adapter: YouTubeAdapter,
    auth: AccountAuth,
    base: str,
    *,
    title: str = "Launch day",
    size: int = 64 * 1024,
    name: str = "video.mp4",
    **options,
) -> PartDraft:
    ref = await adapter.upload_media(
        auth, MediaSource(url=f"{base}/media/{name}?size={size}", content_type="video/mp4")
    )
    return PartDraft(text="What we shipped today", media=[ref], options={"title": title, **options})


async def publish(adapter: YouTubeAdapter, auth: AccountAuth, draft: PartDraft) -> PostRef:
    return await settle(
        await adapter.publish(auth, Prepared(draft=draft)), lambda h: adapter.poll_publish(auth, h)
    )


async def test_oauth_flow_offline_access_pkce_refresh_without_rotation_and_revoke(adapter, http):
    """Google's flow end to end: offline access with PKCE gives a refresh token; refreshing
    never rotates it (the same refresh token keeps working); revoking ends the whole grant."""
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="s1", code_verifier=verifier)
    q = parse_qs(urlsplit(url).query)
    assert q["access_type"] == ["offline"] and q["prompt"] == ["consent"]
    assert q["include_granted_scopes"] == ["true"] and q["code_challenge_method"] == ["S256"]
    assert "https://www.googleapis.com/auth/youtube.upload" in q["scope"][0].split(" ")
    back = await consent(http, url)
    assert back["state"] == ["s1"]
    tokens = await adapter.exchange_code(code=back["code"][0], redirect_uri=REDIRECT, code_verifier=verifier)
    assert tokens.refresh_token and tokens.expires_at
    profile = await adapter.fetch_profile(tokens)
    assert profile.external_id.startswith("UC") and profile.display_name == "Creator"

    first = await adapter.refresh(tokens)
    second = await adapter.refresh(tokens)  # the original refresh token still works: no rotation
    assert first.refresh_token == second.refresh_token == tokens.refresh_token
    assert first.access_token != tokens.access_token
    assert (await adapter.fetch_profile(second)).external_id == profile.external_id

    await adapter.revoke(second)
    with pytest.raises(AuthExpired):  # Google answers 401 authError for any dead access token
        await adapter.fetch_profile(second)
    with pytest.raises(AuthRevoked):  # ...and the refresh says invalid_grant: reconnect
        await adapter.refresh(second)
    await adapter.revoke(second)  # revoking twice is not an error


async def test_deny_redirects_with_access_denied(adapter, http):
    """Cancelling the consent screen sends the user back with error=access_denied and the state."""
    url = adapter.authorization_url(
        redirect_uri=REDIRECT, state="s2", code_verifier=secrets.token_urlsafe(48)
    )
    back = await consent(http, url, decision="deny")
    assert back["error"] == ["access_denied"] and back["state"] == ["s2"] and "code" not in back


async def test_pkce_mismatch_and_code_reuse_are_refused(adapter, http):
    """A wrong code_verifier is refused, and a code works once only."""
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="s", code_verifier=verifier)
    code = (await consent(http, url))["code"][0]
    with pytest.raises(AuthRevoked, match="invalid_grant"):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier="x" * 50)

    url = adapter.authorization_url(redirect_uri=REDIRECT, state="s", code_verifier=verifier)
    code = (await consent(http, url))["code"][0]
    assert (
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    ).access_token
    with pytest.raises(AuthRevoked, match="invalid_grant"):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)


async def test_online_access_gets_no_refresh_token(adapter, http):
    """Without access_type=offline Google issues no refresh token: the catalogue's param matters."""
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="s", code_verifier=verifier)
    url = url.replace("access_type=offline", "access_type=online")
    code = (await consent(http, url))["code"][0]
    tokens = await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert tokens.access_token and tokens.refresh_token is None


async def test_account_without_channel(adapter, http):
    """A Google account with no YouTube channel fails the profile step with code no_channel."""
    with pytest.raises(AdapterError) as info:
        await connect(adapter, http, username="no_channel_person")
    assert info.value.code == "no_channel"


async def test_publish_video_in_chunks(adapter, http, base):
    """A video goes up through a resumable session in 256 KiB chunks (308 between them), processes,
    and yields the watch URL; the sandbox holds the video with its title and description."""
    auth = await connect(adapter, http)
    adapter.chunk_size = CHUNK_UNIT
    draft = await video_draft(
        adapter, auth, base, size=600_000, tags=["launch", "dev log"], privacy_status="unlisted"
    )
    ref = await publish(adapter, auth, draft)
    assert ref.url == f"https://www.youtube.com/watch?v={ref.external_id}"
    assert ref.data["privacy_status"] == "unlisted"
    [post] = await posts(http, base)
    assert post["id"] == ref.external_id and post["title"] == "Launch day"
    assert post["text"] == "What we shipped today" and post["media"][0]["bytes"] == 600_000
    assert post["raw"]["snippet"]["tags"] == ["launch", "dev log"]


async def test_first_comment_and_its_reconcile(adapter, http, base):
    """The first comment is a top-level comment thread on the new video; reconcile finds it again."""
    auth = await connect(adapter, http)
    video = await publish(adapter, auth, await video_draft(adapter, auth, base))
    comment = await adapter.comment(auth, video, "Chapters: 0:00 intro", tag="c1")
    assert comment.external_id.startswith("Ug") and comment.data["video_id"] == video.external_id
    stored = [p for p in await posts(http, base) if p.get("kind") == "comment"]
    assert [(p["id"], p["reply_to"]) for p in stored] == [(comment.external_id, video.external_id)]
    draft = PartDraft(text="Chapters: 0:00 intro", reply_to=video, is_comment=True)
    assert (await adapter.reconcile(auth, draft, since=0)).external_id == comment.external_id


async def test_comments_disabled_on_made_for_kids_video(adapter, http, base):
    """YouTube disables comments on made-for-kids videos: commentsDisabled is ContentRejected."""
    auth = await connect(adapter, http)
    video = await publish(adapter, auth, await video_draft(adapter, auth, base, made_for_kids=True))
    with pytest.raises(ContentRejected, match="commentsDisabled"):
        await adapter.comment(auth, video, "hello", tag="c")


async def test_5xx_is_transient_then_publish_works(adapter, http, base):
    """A 503 on opening the upload session is a TransientError; nothing was created, and the retry posts."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="http_5xx", path_contains="/upload/youtube/v3/videos", method="POST")
    draft = await video_draft(adapter, auth, base)
    with pytest.raises(TransientError) as info:
        await adapter.publish(auth, Prepared(draft=draft))
    assert not isinstance(info.value, OutcomeUnknown) and await posts(http, base) == []
    await publish(adapter, auth, draft)
    assert len(await posts(http, base)) == 1


async def test_5xx_on_an_upload_chunk_is_outcome_unknown(adapter, http, base):
    """Once the session exists a failed chunk leaves the outcome open: OutcomeUnknown, not a blind retry."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="http_5xx", path_contains="/upload/youtube/v3/videos", method="PUT")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, Prepared(draft=await video_draft(adapter, auth, base)))


async def test_quota_exceeded_is_rate_limited_until_pacific_midnight(adapter, http, base):
    """403 quotaExceeded becomes RateLimited with retry_after = the time to midnight Pacific."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="rate_limit", path_contains="/upload/youtube/v3/videos")
    with pytest.raises(RateLimited) as info:
        await adapter.publish(auth, Prepared(draft=await video_draft(adapter, auth, base)))
    assert abs(info.value.retry_after - seconds_until_pacific_midnight()) < 60


def test_error_reasons_are_classified():
    """Google reasons, not only statuses, decide the error type."""

    def resp(status: int, reason: str, **headers: str) -> httpx.Response:
        body = {"error": {"code": status, "message": "m", "errors": [{"domain": "d", "reason": reason}]}}
        return httpx.Response(status, json=body, headers=headers)

    cases = [
        (resp(403, "rateLimitExceeded"), RateLimited),
        (resp(429, "rateLimitExceeded", **{"Retry-After": "7"}), RateLimited),
        (resp(400, "uploadLimitExceeded"), RateLimited),
        (resp(401, "authError"), AuthExpired),
        (resp(403, "insufficientPermissions"), AuthRevoked),
        (resp(400, "invalidTitle"), ContentRejected),
        (resp(400, "badContent"), MediaRejected),
        (resp(502, "backendError"), TransientError),
    ]
    for response, expected in cases:
        with pytest.raises(expected):
            raise_for(response, "call")
    with pytest.raises(RateLimited) as info:
        raise_for(resp(429, "rateLimitExceeded", **{"Retry-After": "7"}), "call")
    assert info.value.retry_after == 7
    with pytest.raises(AdapterError) as info:
        raise_for(resp(401, "youtubeSignupRequired"), "call")
    assert info.value.code == "no_channel"


async def test_expired_token_then_refresh_and_retry(adapter, http, base):
    """An expired access token is AuthExpired; after a refresh the same publish succeeds."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="expire_token")
    draft = await video_draft(adapter, auth, base)
    with pytest.raises(AuthExpired):
        await adapter.publish(auth, Prepared(draft=draft))
    auth.tokens = await adapter.refresh(auth.tokens)
    assert (await publish(adapter, auth, draft)).external_id


async def test_revoked_grant_is_auth_revoked_at_refresh(adapter, http, base):
    """Google cannot tell a revoked access token from an expired one (401 authError): the refresh
    then fails with invalid_grant, which is AuthRevoked."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="revoke_token")
    with pytest.raises(AuthExpired):
        await adapter.publish(auth, Prepared(draft=await video_draft(adapter, auth, base)))
    with pytest.raises(AuthRevoked):
        await adapter.refresh(auth.tokens)


async def test_rejected_metadata_is_content_rejected(adapter, http, base):
    """YouTube refusing the video metadata (invalidVideoMetadata) is ContentRejected and posts nothing."""
    auth = await connect(adapter, http)
    await fault(http, base, kind="reject_content")
    with pytest.raises(ContentRejected, match="invalidVideoMetadata"):
        await adapter.publish(auth, Prepared(draft=await video_draft(adapter, auth, base)))
    assert await posts(http, base) == []


async def test_bytes_that_are_not_a_video_fail_processing(adapter, http, base):
    """A file labelled video/mp4 that is really a PNG uploads, then fails processing: MediaRejected."""
    auth = await connect(adapter, http)
    ref = await adapter.upload_media(
        auth, MediaSource(url=f"{base}/media/image.png", content_type="video/mp4")
    )
    draft = PartDraft(text="", media=[ref], options={"title": "Not a video"})
    with pytest.raises(MediaRejected, match="invalidFile"):
        await publish(adapter, auth, draft)


async def test_same_video_twice_is_rejected_as_duplicate(adapter, http, base):
    """Uploading identical bytes again is rejected by YouTube as a duplicate: DuplicateContent."""
    auth = await connect(adapter, http)
    await publish(adapter, auth, await video_draft(adapter, auth, base, title="First"))
    with pytest.raises(DuplicateContent):
        await publish(adapter, auth, await video_draft(adapter, auth, base, title="Second"))


async def test_dropped_answer_then_reconcile_finds_exactly_that_video(adapter, http, base):
    """The last chunk is accepted but the answer is lost: OutcomeUnknown. Reconcile then finds that video
    by its title, nothing is re-posted, and the sandbox holds exactly one copy."""
    auth = await connect(adapter, http)
    other = await publish(adapter, auth, await video_draft(adapter, auth, base, title="Older", size=70_000))
    since = (await posts(http, base))[0]["created_at"] + 0.001
    await fault(http, base, kind="drop_after_accept", path_contains="/upload/youtube/v3/videos", method="PUT")
    draft = await video_draft(adapter, auth, base, title="Lost answer")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, Prepared(draft=draft))
    found = await adapter.reconcile(auth, draft, since=since)
    stored = [p for p in await posts(http, base) if p["title"] == "Lost answer"]
    assert len(stored) == 1 and found.external_id == stored[0]["id"] != other.external_id
    missing = PartDraft(text="", media=draft.media, options={"title": "Never sent"})
    assert await adapter.reconcile(auth, missing, since=since) is None


async def upload(adapter: YouTubeAdapter, auth: AccountAuth, base: str, title: str, size: int) -> PartDraft:
    """Upload a video without waiting for processing (search lists it at once); `size` keeps the bytes
    distinct, since YouTube rejects an identical re-upload."""
    draft = await video_draft(adapter, auth, base, title=title, size=size)
    await adapter.publish(auth, Prepared(draft=draft))
    return draft


def titled(draft: PartDraft, title: str) -> PartDraft:
    return PartDraft(text=draft.text, media=draft.media, options={"title": title})


async def test_reconcile_reads_past_newer_uploads(adapter, http, base, monkeypatch):
    """An interrupted upload pushed pages down by newer ones is still found; "not there" is only said once
    the search was read back past the attempt, and more recent uploads than the page budget reads is
    Unverifiable."""
    monkeypatch.setattr(youtube, "RECONCILE_PAGE", 2)
    monkeypatch.setattr(youtube, "_CLOCK_SKEW", 1.0)  # publishedAt's whole seconds, without a 30 s wait
    auth = await connect(adapter, http)
    await upload(adapter, auth, base, "Older than the attempt", 70_000)
    since = time.time() + 1
    await asyncio.sleep(2.1)
    draft = await upload(adapter, auth, base, "Lost answer", 70_001)
    for i in range(3):  # more than a page of newer uploads: the attempt is on the second page
        await upload(adapter, auth, base, f"Newer {i}", 70_002 + i)
    [attempt] = [p for p in await posts(http, base) if p["title"] == "Lost answer"]
    assert (await adapter.reconcile(auth, draft, since=since)).external_id == attempt["id"]
    assert await adapter.reconcile(auth, titled(draft, "Never sent"), since=since) is None
    assert await adapter.reconcile(auth, titled(draft, "Older than the attempt"), since=since) is None
    monkeypatch.setattr(youtube, "RECONCILE_PAGE", 1)  # five uploads in the window, three pages read
    with pytest.raises(Unverifiable, match="Too many recent items"):
        await adapter.reconcile(auth, titled(draft, "Never sent"), since=since - 60)


async def test_search_pages_as_youtube_documents(adapter, http, base):
    """The sandbox's search.list answers five results by default, and a nextPageToken only while more
    remain."""
    auth = await connect(adapter, http)
    for i in range(7):
        await upload(adapter, auth, base, f"Video {i}", 70_000 + i)
    url = f"{adapter.endpoints.api_base}/search"
    params = {"part": "snippet", "forMine": "true", "type": "video", "order": "date"}
    bearer = {"Authorization": f"Bearer {auth.tokens.access_token}"}
    first = (await http.get(url, params=params, headers=bearer)).json()
    token = first["nextPageToken"]
    rest = (await http.get(url, params={**params, "pageToken": token}, headers=bearer)).json()
    titles = [item["snippet"]["title"] for item in first["items"] + rest["items"]]
    assert len(first["items"]) == 5 and "nextPageToken" not in rest
    assert titles == [f"Video {i}" for i in reversed(range(7))]
    resp = await http.get(url, params={**params, "maxResults": "51"}, headers=bearer)
    assert resp.status_code == 400


async def test_comment_reconcile_reads_every_page(adapter, http, base, monkeypatch):
    """The first comment is found however many comments came after it; a comment never made is None once
    every page was read, and more comments than the page budget reads is Unverifiable."""
    monkeypatch.setattr(youtube, "COMMENT_PAGE", 2)
    auth = await connect(adapter, http)
    video = await publish(adapter, auth, await video_draft(adapter, auth, base))
    since = time.time()
    first = await adapter.comment(auth, video, "Chapters: 0:00 intro", tag="c0")
    for i in range(10):  # five pages of later comments, and more than ten one-comment pages hold
        await adapter.comment(auth, video, f"Later comment {i}", tag=f"c{i + 1}")
    draft = PartDraft(text="Chapters: 0:00 intro", reply_to=video, is_comment=True)
    assert (await adapter.reconcile(auth, draft, since=since)).external_id == first.external_id
    never = PartDraft(text="Never said", reply_to=video, is_comment=True)
    assert await adapter.reconcile(auth, never, since=since) is None
    monkeypatch.setattr(youtube, "COMMENT_PAGE", 1)
    with pytest.raises(Unverifiable, match="Too many recent items"):
        await adapter.reconcile(auth, never, since=since)


def test_validation_names_the_field(adapter):
    """Validation counts the description in UTF-8 bytes, requires a title, and names each bad field."""
    from adapters.base import MediaRef

    video = MediaRef("u", "video/mp4")
    ok = PartDraft(text="é" * 2500, media=[video], options={"title": "t"})  # 5000 bytes: fits
    assert adapter.validate(ok, field_prefix="p") == []

    def codes(draft: PartDraft) -> set[tuple[str, str]]:
        return {(i.field, i.code) for i in adapter.validate(draft, field_prefix="p")}

    assert ("p.caption", "caption_too_long") in codes(
        PartDraft(text="é" * 2501, media=[video], options={"title": "t"})
    )
    assert ("p.platform_options.title", "option_required") in codes(PartDraft(text="x", media=[video]))
    assert ("p.platform_options.title", "invalid_option") in codes(
        PartDraft(text="x", media=[video], options={"title": "a <b>"})
    )
    assert ("p.platform_options.title", "invalid_option") in codes(
        PartDraft(text="x", media=[video], options={"title": "t" * 101})
    )
    assert ("p.platform_options.colour", "unknown_option") in codes(
        PartDraft(text="x", media=[video], options={"title": "t", "colour": "red"})
    )
    assert ("p.media", "too_many_media") in codes(
        PartDraft(text="x", media=[video, video], options={"title": "t"})
    )
    assert ("p.media[0]", "unsupported_media_type") in codes(
        PartDraft(text="x", media=[MediaRef("u", "image/png")], options={"title": "t"})
    )
    assert ("p.media", "media_required") in codes(PartDraft(text="x", options={"title": "t"}))
    assert ("p.platform_options.tags", "invalid_option") in codes(
        PartDraft(text="x", media=[video], options={"title": "t", "tags": ["a" * 300, "b" * 300]})
    )
