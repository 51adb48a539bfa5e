"""The X adapter against the sandbox X, over real HTTP."""

from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters.base import (
    AccountAuth,
    ClientCredentials,
    MediaRef,
    MediaSource,
    PartDraft,
    Pending,
    PostRef,
    Prepared,
)
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
)
from adapters.twitter import PROVIDER, TwitterAdapter
from tests.support.drive import settle
from tests.support.sandbox import sandbox_server

REDIRECT = "https://herald.example/oauth/callback"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with sandbox_server(["twitter"]) as url:
        yield url


@pytest.fixture
async def http(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        (await client.post(f"{base}/sandbox/_control/reset")).raise_for_status()
        yield client


@pytest.fixture
def adapter(http: httpx.AsyncClient, base: str) -> TwitterAdapter:
    endpoints = resolve_endpoints(PROVIDER, sandbox_base=f"{base}/sandbox")
    return TwitterAdapter(http, endpoints, ClientCredentials("herald-app", "s3cret"))


async def consent(
    http: httpx.AsyncClient, base: str, url: str, decision: str = "approve", username: str = "alice"
) -> dict[str, str]:
    """Open the consent screen, submit it, and return the redirect's query parameters."""
    page = await http.get(url)
    assert page.status_code == 200, page.text
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    hidden = {
        html.unescape(k): html.unescape(v)
        for k, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text)
    }
    resp = await http.post(base + action, data={**hidden, "sandbox_username": username, "decision": decision})
    assert resp.status_code == 303
    location = resp.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def connect(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str, username: str = "alice"
) -> AccountAuth:
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st", code_verifier=verifier)
    params = await consent(http, base, url, username=username)
    tokens = await adapter.exchange_code(code=params["code"], redirect_uri=REDIRECT, code_verifier=verifier)
    profile = await adapter.fetch_profile(tokens)
    return AccountAuth(external_id=profile.external_id, tokens=tokens, username=profile.username)


async def fault(http: httpx.AsyncClient, base: str, kind: str, **spec) -> None:
    resp = await http.post(
        f"{base}/sandbox/_control/faults", json={"platform": "twitter", "kind": kind, **spec}
    )
    resp.raise_for_status()


async def posts(http: httpx.AsyncClient, base: str) -> list[dict]:
    return (await http.get(f"{base}/sandbox/_control/twitter/posts")).json()


async def publish(adapter: TwitterAdapter, auth: AccountAuth, text: str, **kw) -> PostRef:
    return await adapter.publish(auth, Prepared(draft=PartDraft(text=text, **kw)))


def media(base: str, name: str, content_type: str) -> MediaSource:
    return MediaSource(url=f"{base}/media/{name}", content_type=content_type)


# --- OAuth --------------------------------------------------------------------


async def test_oauth_flow_refresh_rotation_and_revoke(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """Authorize with PKCE S256 and the posting scopes, exchange the code over HTTP Basic, read the profile;
    a refresh rotates the refresh token and the old one dies at once; revoke ends the grant."""
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st-1", code_verifier=verifier)
    query = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path == "/sandbox/twitter/i/oauth2/authorize"
    assert query["scope"] == ["tweet.read tweet.write users.read offline.access media.write"]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0] != verifier
    params = await consent(http, base, url)
    assert params["state"] == "st-1"
    tokens = await adapter.exchange_code(code=params["code"], redirect_uri=REDIRECT, code_verifier=verifier)
    assert tokens.refresh_token and tokens.expires_at and 7100 < tokens.expires_at - time.time() <= 7200

    profile = await adapter.fetch_profile(tokens)
    assert profile.username == "alice" and profile.external_id.isdigit() and profile.avatar_url

    fresh = await adapter.refresh(tokens)
    assert fresh.refresh_token != tokens.refresh_token
    assert (await adapter.fetch_profile(fresh)).external_id == profile.external_id
    with pytest.raises(AuthRevoked) as err:
        await adapter.refresh(tokens)  # single-use: the old refresh token is dead
    assert tokens.refresh_token not in str(err.value)

    await adapter.revoke(fresh)
    with pytest.raises(AuthExpired):
        await adapter.fetch_profile(fresh)
    with pytest.raises(AuthRevoked):
        await adapter.refresh(fresh)


async def test_oauth_deny_pkce_mismatch_and_code_reuse(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """Denying consent redirects with error=access_denied; a wrong PKCE verifier and a reused code are
    refused by the token endpoint (AuthRevoked); an authorize request without PKCE is refused."""
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorization_url(redirect_uri=REDIRECT, state="st-2", code_verifier=verifier)
    denied = await consent(http, base, url, decision="deny")
    assert denied["error"] == "access_denied" and denied["state"] == "st-2" and "code" not in denied

    code = (await consent(http, base, url))["code"]
    with pytest.raises(AuthRevoked):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=secrets.token_urlsafe(48))
    code = (await consent(http, base, url))["code"]
    await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    with pytest.raises(AuthRevoked):
        await adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)

    no_pkce = adapter.authorization_url(redirect_uri=REDIRECT, state="st-3", code_verifier=None)
    resp = await http.get(no_pkce)
    assert resp.status_code == 303 and "error=invalid_request" in resp.headers["location"]


# --- publishing ---------------------------------------------------------------


async def test_publish_text_with_rate_limit_headers(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """POST /2/tweets answers 201 with data.id and x-rate-limit headers; the post links to its page."""
    auth = await connect(adapter, http, base)
    ref = await publish(adapter, auth, "Hello & welcome https://example.com", reply_to=None)
    assert ref.external_id.isdigit() and ref.url and ref.url.endswith(f"/alice/status/{ref.external_id}")
    assert (await http.get(ref.url)).status_code == 200
    [post] = await posts(http, base)
    assert post["id"] == ref.external_id and post["raw"] == {"text": "Hello & welcome https://example.com"}
    resp = await http.get(
        f"{base}/sandbox/twitter/2/users/me", headers={"Authorization": f"Bearer {auth.tokens.access_token}"}
    )
    assert resp.headers["x-rate-limit-limit"] == "75" and int(resp.headers["x-rate-limit-remaining"]) < 75
    assert int(resp.headers["x-rate-limit-reset"]) > time.time()


async def test_publish_images(adapter: TwitterAdapter, http: httpx.AsyncClient, base: str) -> None:
    """Images go through the simple upload and are ready at once; the post carries their media ids."""
    auth = await connect(adapter, http, base)
    png = await adapter.upload_media(auth, media(base, "image.png", "image/png"))
    jpg = await adapter.upload_media(auth, media(base, "image.jpg", "image/jpeg"))
    assert isinstance(png, MediaRef) and isinstance(jpg, MediaRef)
    await publish(adapter, auth, "two images", media=[png, jpg])
    [post] = await posts(http, base)
    assert post["raw"]["media"] == {"media_ids": [png.platform_media_id, jpg.platform_media_id]}


async def test_publish_video_after_processing(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """A video goes through initialize/append/finalize, is Pending while X processes it, and STATUS
    polling yields the media that the post then carries."""
    auth = await connect(adapter, http, base)
    first = await adapter.upload_media(auth, media(base, "video.mp4", "video/mp4"))
    assert isinstance(first, Pending) and first.check_after >= 1
    video = await settle(first, lambda h: adapter.poll_media(auth, h))
    assert isinstance(video, MediaRef) and video.content_type == "video/mp4"
    await publish(adapter, auth, "", media=[video])
    [post] = await posts(http, base)
    assert post["media"] == [video.platform_media_id]


async def test_thread_and_first_comment(adapter: TwitterAdapter, http: httpx.AsyncClient, base: str) -> None:
    """Thread parts reply to the previous part in order; the first comment is a reply to the post."""
    auth = await connect(adapter, http, base)
    first = await publish(adapter, auth, "1/3")
    second = await publish(adapter, auth, "2/3", reply_to=first)
    third = await publish(adapter, auth, "3/3", reply_to=second)
    note = await adapter.comment(auth, first, "first comment", tag="res_1:comment")
    stored = await posts(http, base)
    assert [(p["text"], p["reply_to"]) for p in stored] == [
        ("1/3", None),
        ("2/3", first.external_id),
        ("3/3", second.external_id),
        ("first comment", first.external_id),
    ]
    assert stored[3]["raw"] == {"text": "first comment", "reply": {"in_reply_to_tweet_id": first.external_id}}
    assert note.external_id == stored[3]["id"] and third.external_id == stored[2]["id"]


async def test_poll_and_reply_settings_options(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """platform_options poll and reply_settings reach the request body as X expects them."""
    auth = await connect(adapter, http, base)
    options = {"poll": {"options": ["Yes", "No"], "duration_minutes": 60}, "reply_settings": "following"}
    await publish(adapter, auth, "Ship it?", options=options)
    [post] = await posts(http, base)
    assert post["raw"] == {"text": "Ship it?", **options}


async def test_unknown_body_keys_are_rejected(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """The sandbox refuses unknown body keys with X's invalid-request problem, as the real API does."""
    auth = await connect(adapter, http, base)
    resp = await http.post(
        f"{base}/sandbox/twitter/2/tweets",
        json={"text": "hi", "colour": "red"},
        headers={"Authorization": f"Bearer {auth.tokens.access_token}"},
    )
    assert resp.status_code == 400
    body = resp.json()
    assert (
        body["type"] == "https://api.x.com/2/problems/invalid-request"
        and "colour" in body["errors"][0]["message"]
    )


async def test_duplicate_text_is_refused(adapter: TwitterAdapter, http: httpx.AsyncClient, base: str) -> None:
    """The same text from the same account is a 403 duplicate: DuplicateContent, and one post only;
    another account may post that text."""
    auth = await connect(adapter, http, base)
    await publish(adapter, auth, "same words")
    with pytest.raises(DuplicateContent) as err:
        await publish(adapter, auth, "same words")
    assert err.value.status == 403
    other = await connect(adapter, http, base, username="bob")
    await publish(adapter, other, "same words")
    assert len(await posts(http, base)) == 2


# --- failures -----------------------------------------------------------------


async def test_server_error_is_transient(adapter: TwitterAdapter, http: httpx.AsyncClient, base: str) -> None:
    """A 503 on POST /2/tweets is a TransientError and nothing is posted."""
    auth = await connect(adapter, http, base)
    await fault(http, base, "http_5xx", path_contains="/2/tweets")
    with pytest.raises(TransientError) as err:
        await publish(adapter, auth, "hi")
    assert type(err.value) is TransientError and err.value.status == 503
    assert await posts(http, base) == []


async def test_rate_limit_carries_retry_after(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """A 429 rate-limit-exceeded becomes RateLimited with retry_after from x-rate-limit-reset."""
    auth = await connect(adapter, http, base)
    await fault(http, base, "rate_limit", retry_after=30, path_contains="/2/tweets")
    with pytest.raises(RateLimited) as err:
        await publish(adapter, auth, "hi")
    assert err.value.retry_after is not None and 27 <= err.value.retry_after <= 30


async def test_expired_token_then_refresh_and_retry(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """An expired access token is AuthExpired; after a refresh the same publish succeeds."""
    auth = await connect(adapter, http, base)
    await fault(http, base, "expire_token", account=auth.external_id)
    with pytest.raises(AuthExpired):
        await publish(adapter, auth, "hi")
    auth.tokens = await adapter.refresh(auth.tokens)
    assert (await publish(adapter, auth, "hi")).external_id


async def test_revoked_grant_ends_in_auth_revoked(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """X answers a revoked token with the same 401 as an expired one (AuthExpired); the refresh that
    follows is refused, which is AuthRevoked: the user must reconnect."""
    auth = await connect(adapter, http, base)
    await fault(http, base, "revoke_token", account=auth.external_id)
    with pytest.raises(AuthExpired):
        await publish(adapter, auth, "hi")
    with pytest.raises(AuthRevoked) as err:
        await adapter.refresh(auth.tokens)
    assert err.value.code == "reauth_required"


async def test_rejected_content(adapter: TwitterAdapter, http: httpx.AsyncClient, base: str) -> None:
    """A 403 'not permitted' and an over-long text (400) are ContentRejected."""
    auth = await connect(adapter, http, base)
    await fault(http, base, "reject_content")
    with pytest.raises(ContentRejected) as err:
        await publish(adapter, auth, "hi")
    assert type(err.value) is ContentRejected and err.value.status == 403
    with pytest.raises(ContentRejected):
        await publish(adapter, auth, "x" * 281)
    assert await posts(http, base) == []


async def test_bad_media_is_rejected(adapter: TwitterAdapter, http: httpx.AsyncClient, base: str) -> None:
    """Video bytes sent as an image are refused by the upload; bytes that do not match the declared
    GIF fail processing; both are MediaRejected."""
    auth = await connect(adapter, http, base)
    with pytest.raises(MediaRejected):
        await adapter.upload_media(auth, media(base, "video.mp4", "image/png"))
    pending = await adapter.upload_media(auth, media(base, "image.png", "image/gif"))
    with pytest.raises(MediaRejected, match="process"):
        await settle(pending, lambda h: adapter.poll_media(auth, h))


async def test_dropped_answer_is_outcome_unknown_then_reconciled(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """When the connection drops after X stored the post, publish raises OutcomeUnknown; reconcile
    then finds exactly that post (text and reply target) and X holds one copy."""
    auth = await connect(adapter, http, base)
    parent = await publish(adapter, auth, "parent")
    since = time.time()
    await fault(http, base, "drop_after_accept")
    draft = PartDraft(text="Caf\u00e9 & friends https://example.com/x", reply_to=parent, tag="res_9:1")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, Prepared(draft=draft))
    stored = await posts(http, base)
    assert len(stored) == 2
    found = await adapter.reconcile(auth, draft, since=since)
    assert found is not None and found.external_id == stored[1]["id"]
    assert len(await posts(http, base)) == 2


async def test_reconcile_absent_or_other_reply_target(
    adapter: TwitterAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """reconcile answers None when no post matches, including the same text replying elsewhere or
    posted before `since`."""
    auth = await connect(adapter, http, base)
    parent = await publish(adapter, auth, "parent")
    await publish(adapter, auth, "reply text", reply_to=parent)
    assert await adapter.reconcile(auth, PartDraft(text="never posted"), since=time.time() - 60) is None
    assert await adapter.reconcile(auth, PartDraft(text="reply text"), since=time.time() - 60) is None
    found = await adapter.reconcile(
        auth, PartDraft(text="reply text", reply_to=parent), since=time.time() - 60
    )
    assert found is not None
    assert await adapter.reconcile(auth, PartDraft(text="parent"), since=time.time() + 3600) is None


# --- validation ---------------------------------------------------------------


def _issues(adapter: TwitterAdapter, draft: PartDraft) -> dict[str, str]:
    return {i.field: i.code for i in adapter.validate(draft, field_prefix="platform_posts[0]")}


def _ref(content_type: str) -> MediaRef:
    return MediaRef(platform_media_id="1", content_type=content_type)


def test_validation_names_the_field(adapter: TwitterAdapter) -> None:
    """Captions are counted in X's weighted units (CJK 2, URL 23); media count, GIF alone, types, the
    poll rules and reply_settings are checked before any request, each issue naming its field."""
    assert _issues(adapter, PartDraft(text="\u6f22" * 140)) == {}
    assert _issues(adapter, PartDraft(text="\u6f22" * 141)) == {
        "platform_posts[0].caption": "caption_too_long"
    }
    assert _issues(adapter, PartDraft(text="a" * 256 + " https://example.com/" + "x" * 300)) == {}
    assert _issues(adapter, PartDraft(text="hi", media=[_ref("image/png")] * 5)) == {
        "platform_posts[0].media": "too_many_media"
    }
    assert _issues(adapter, PartDraft(text="hi", media=[_ref("image/gif"), _ref("image/png")])) == {
        "platform_posts[0].media": "gif_not_alone"
    }
    assert _issues(adapter, PartDraft(text="hi", media=[_ref("image/tiff")])) == {
        "platform_posts[0].media[0]": "unsupported_media_type"
    }
    poll = {"options": ["a", "b"], "duration_minutes": 60}
    assert _issues(adapter, PartDraft(text="hi", media=[_ref("image/png")], options={"poll": poll})) == {
        "platform_posts[0].platform_options.poll": "poll_with_media"
    }
    bad_polls = [
        ({"options": ["only"], "duration_minutes": 60}, "platform_posts[0].platform_options.poll.options"),
        (
            {"options": ["a", "x" * 26], "duration_minutes": 60},
            "platform_posts[0].platform_options.poll.options.1",
        ),
        (
            {"options": ["a", "b"], "duration_minutes": 4},
            "platform_posts[0].platform_options.poll.duration_minutes",
        ),
    ]
    for bad, field in bad_polls:
        assert _issues(adapter, PartDraft(text="hi", options={"poll": bad})) == {field: "invalid_option"}
    assert _issues(adapter, PartDraft(text="hi", options={"reply_settings": "everyone"})) == {
        "platform_posts[0].platform_options.reply_settings": "invalid_option"
    }
    assert _issues(adapter, PartDraft(text="hi", options={"nullcast": True})) == {
        "platform_posts[0].platform_options.nullcast": "unknown_option"
    }


async def test_token_endpoint_faults(adapter: TwitterAdapter, http: httpx.AsyncClient, base: str) -> None:
    """A 503 from the token endpoint is a TransientError and a 429 is RateLimited: neither costs the
    refresh token, which still works afterwards."""
    auth = await connect(adapter, http, base)
    await fault(http, base, "http_5xx", path_contains="/oauth2/token")
    with pytest.raises(TransientError):
        await adapter.refresh(auth.tokens)
    await fault(http, base, "rate_limit", retry_after=12, path_contains="/oauth2/token")
    with pytest.raises(RateLimited) as err:
        await adapter.refresh(auth.tokens)
    assert err.value.retry_after == 12
    assert (await adapter.refresh(auth.tokens)).refresh_token
