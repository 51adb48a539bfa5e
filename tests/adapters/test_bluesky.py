"""The Bluesky adapter against the sandbox PDS, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.base import AccountAuth, MediaRef, MediaSource, PartDraft, PostRef, Prepared
from adapters.bluesky import PROVIDER, BlueskyAdapter, record_key
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
from tests.support.sandbox import sandbox_server

APP_PASSWORD = "abcd-efgh-ijkl-mnop"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with sandbox_server(["bluesky"]) as url:
        yield url


@pytest.fixture
async def http(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        (await client.post(f"{base}/sandbox/_control/reset")).raise_for_status()
        yield client


@pytest.fixture
def adapter(http: httpx.AsyncClient, base: str) -> BlueskyAdapter:
    return BlueskyAdapter(http, resolve_endpoints(PROVIDER, sandbox_base=f"{base}/sandbox"))


async def connect(adapter: BlueskyAdapter, handle: str = "alice.test") -> AccountAuth:
    tokens = await adapter.login(handle, APP_PASSWORD)
    return AccountAuth(external_id=tokens.extra["did"], tokens=tokens, username=tokens.extra["handle"])


async def fault(http: httpx.AsyncClient, base: str, kind: str, **spec) -> None:
    resp = await http.post(
        f"{base}/sandbox/_control/faults", json={"platform": "bluesky", "kind": kind, **spec}
    )
    resp.raise_for_status()


async def posts(http: httpx.AsyncClient, base: str) -> list[dict]:
    return (await http.get(f"{base}/sandbox/_control/bluesky/posts")).json()


async def publish(adapter: BlueskyAdapter, auth: AccountAuth, text: str, tag: str, **kw) -> PostRef:
    return await adapter.publish(auth, Prepared(draft=PartDraft(text=text, tag=tag, **kw)))


def media(base: str, name: str, content_type: str, **kw) -> MediaSource:
    return MediaSource(url=f"{base}/media/{name}", content_type=content_type, **kw)


# --- session ------------------------------------------------------------------


async def test_login_profile_refresh_rotation_and_logout(adapter: BlueskyAdapter) -> None:
    """createSession yields did/handle/PDS and JWT expiry; getProfile names the account; refreshSession
    rotates the pair while the old refresh JWT survives its grace period; deleteSession kills it."""
    tokens = await adapter.login("alice.test", APP_PASSWORD)
    assert tokens.extra["did"].startswith("did:plc:") and tokens.extra["handle"] == "alice.test"
    assert tokens.extra["pds"] == adapter.endpoints.api_base
    assert tokens.expires_at and 7000 < tokens.expires_at - time.time() <= 7200
    assert tokens.refresh_expires_at and tokens.refresh_expires_at - time.time() > 89 * 86400

    profile = await adapter.fetch_profile(tokens)
    assert (profile.external_id, profile.username) == (tokens.extra["did"], "alice.test")
    assert profile.display_name and profile.avatar_url

    fresh = await adapter.refresh(tokens)
    assert fresh.refresh_token != tokens.refresh_token and fresh.access_token != tokens.access_token
    assert fresh.extra["did"] == tokens.extra["did"]
    assert (await adapter.fetch_profile(fresh)).external_id == tokens.extra["did"]
    # Bluesky keeps a rotated refresh JWT usable for two hours (concurrent refreshes do not log out).
    assert (await adapter.refresh(tokens)).access_token

    await adapter.revoke(fresh)
    with pytest.raises(AuthRevoked) as err:
        await adapter.refresh(fresh)
    assert err.value.code == "reauth_required"
    assert fresh.refresh_token not in str(err.value)
    await adapter.revoke(fresh)  # revoking a dead session is a no-op


async def test_login_refuses_wrong_or_malformed_password(adapter: BlueskyAdapter) -> None:
    """The first login fixes an account's app password; a different one, or a password that is not
    shaped like an app password, is refused as invalid credentials (401 AuthenticationRequired)."""
    await adapter.login("bob.test", APP_PASSWORD)
    for handle, password in (("bob.test", "zzzz-zzzz-zzzz-zzzz"), ("carol.test", "hunter2")):
        with pytest.raises(AuthRevoked) as err:
            await adapter.login(handle, password)
        assert err.value.code == "invalid_credentials" and err.value.status == 401


async def test_login_honours_control_users(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """Users created through the control API log in with exactly the password given there."""
    resp = await http.post(
        f"{base}/sandbox/_control/bluesky/users",
        json={"username": "dana.test", "password": "wxyz-1234-wxyz-1234"},
    )
    assert resp.status_code == 201
    with pytest.raises(AuthRevoked):
        await adapter.login("dana.test", APP_PASSWORD)
    assert (await adapter.login("@dana.test", "wxyz-1234-wxyz-1234")).extra["handle"] == "dana.test"


async def test_oauth_methods_are_unsupported(adapter: BlueskyAdapter) -> None:
    """Hosted connect collects an app password: the OAuth entry points refuse with code `unsupported`."""
    with pytest.raises(AdapterError) as err:
        adapter.authorization_url(redirect_uri="https://x/cb", state="s", code_verifier=None)
    assert err.value.code == "unsupported"
    with pytest.raises(AdapterError) as err:
        await adapter.exchange_code(code="c", redirect_uri="https://x/cb", code_verifier=None)
    assert err.value.code == "unsupported"


async def test_create_session_is_rate_limited_per_account(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """createSession allows 30 logins per 5 minutes per account, with RateLimit-* headers; the 31st is a
    429 RateLimitExceeded that the adapter turns into RateLimited with seconds until the reset."""
    url = f"{base}/sandbox/bluesky/xrpc/com.atproto.server.createSession"
    resp = await http.post(url, json={"identifier": "erin.test", "password": APP_PASSWORD})
    assert resp.headers["RateLimit-Limit"] == "30" and resp.headers["RateLimit-Policy"] == "30;w=300"
    for _ in range(29):
        await http.post(url, json={"identifier": "erin.test", "password": APP_PASSWORD})
    with pytest.raises(RateLimited) as err:
        await adapter.login("erin.test", APP_PASSWORD)
    assert err.value.retry_after is not None and 250 < err.value.retry_after <= 300


# --- publishing ---------------------------------------------------------------


async def test_publish_text_with_facets_in_byte_offsets(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """Links, #tags and resolvable @mentions become facets whose UTF-8 byte ranges cover exactly the
    matched text (after multi-byte emoji); an unresolvable mention stays plain text."""
    await http.post(f"{base}/sandbox/_control/bluesky/users", json={"username": "bob.test"})
    auth = await connect(adapter)
    text = "🎉 Ünïcode launch https://example.com/a?b=1. #herald hi @bob.test and @ghost.test"
    ref = await publish(adapter, auth, text, "res_1:0", options={"langs": ["en"]})
    assert ref.external_id.startswith(f"at://{auth.external_id}/app.bsky.feed.post/")
    assert ref.data["rkey"] == record_key("res_1:0") and ref.data["cid"]
    assert ref.data["root"] == {"uri": ref.data["uri"], "cid": ref.data["cid"]}
    assert ref.url and ref.url.endswith(f"/profile/alice.test/post/{ref.data['rkey']}")
    assert (await http.get(ref.url)).status_code == 200

    [post] = await posts(http, base)
    record = post["raw"]["record"]
    assert record["langs"] == ["en"] and record["text"] == text
    raw = text.encode()
    spans = {
        f["features"][0]["$type"].split("#")[1]: raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode()
        for f in record["facets"]
    }
    assert spans == {"link": "https://example.com/a?b=1", "tag": "#herald", "mention": "@bob.test"}
    features = {f["features"][0]["$type"].split("#")[1]: f["features"][0] for f in record["facets"]}
    assert features["tag"]["tag"] == "herald" and features["mention"]["did"].startswith("did:plc:")


async def test_publish_images_with_alt_and_aspect_ratio(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """uploadBlob returns blobs the post embeds as app.bsky.embed.images with alt text and aspectRatio."""
    auth = await connect(adapter)
    png = await adapter.upload_media(auth, media(base, "image.png", "image/png", alt_text="red square"))
    jpg = await adapter.upload_media(auth, media(base, "image.jpg", "image/jpeg"))
    assert isinstance(png, MediaRef) and png.content_type == "image/png"
    assert png.data["aspect_ratio"] == {"width": 2, "height": 2}
    await publish(adapter, auth, "two pictures", "res_2:0", media=[png, jpg])
    [post] = await posts(http, base)
    embed = post["raw"]["record"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images" and len(embed["images"]) == 2
    assert embed["images"][0]["alt"] == "red square" and embed["images"][1]["alt"] == ""
    assert post["media"] == [png.platform_media_id, jpg.platform_media_id]


async def test_publish_video(adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str) -> None:
    """A video goes up with uploadBlob and is embedded as app.bsky.embed.video (the simple method)."""
    auth = await connect(adapter)
    video = await adapter.upload_media(auth, media(base, "video.mp4", "video/mp4", alt_text="clip"))
    await publish(adapter, auth, "", "res_3:0", media=[video])
    [post] = await posts(http, base)
    embed = post["raw"]["record"]["embed"]
    assert embed == {"$type": "app.bsky.embed.video", "video": video.data["blob"], "alt": "clip"}


async def test_thread_reply_chain_keeps_root(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """Each part replies to the previous one, with root copied from the parent: a chain, in order."""
    auth = await connect(adapter)
    first = await publish(adapter, auth, "1/3", "res_4:1")
    second = await publish(adapter, auth, "2/3", "res_4:2", reply_to=first)
    third = await publish(adapter, auth, "3/3", "res_4:3", reply_to=second)
    assert third.data["root"] == second.data["root"] == {"uri": first.data["uri"], "cid": first.data["cid"]}
    stored = await posts(http, base)
    assert [p["text"] for p in stored] == ["1/3", "2/3", "3/3"]
    replies = [p["raw"]["record"].get("reply") for p in stored]
    assert replies[0] is None
    assert replies[1] == {
        "root": first.data["root"],
        "parent": {"uri": first.data["uri"], "cid": first.data["cid"]},
    }
    assert replies[2] == {
        "root": first.data["root"],
        "parent": {"uri": second.data["uri"], "cid": second.data["cid"]},
    }


async def test_same_tag_never_creates_a_second_post(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """The record key comes from the tag: the PDS refuses a second create on that key with a bare 500
    (as the reference PDS does), and the adapter answers with the post that already exists."""
    auth = await connect(adapter)
    first = await publish(adapter, auth, "only once", "res_5:0")
    resp = await http.post(
        f"{base}/sandbox/bluesky/xrpc/com.atproto.repo.createRecord",
        headers={"Authorization": f"Bearer {auth.tokens.access_token}"},
        json={
            "repo": auth.external_id,
            "collection": "app.bsky.feed.post",
            "rkey": first.data["rkey"],
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "again",
                "createdAt": "2026-01-01T00:00:00.000Z",
            },
        },
    )
    assert resp.status_code == 500
    assert resp.json() == {"error": "InternalServerError", "message": "Internal Server Error"}
    again = await publish(adapter, auth, "only once", "res_5:0")
    assert again.external_id == first.external_id and again.data["cid"] == first.data["cid"]
    assert len(await posts(http, base)) == 1


async def test_reconcile_by_record_key(adapter: BlueskyAdapter) -> None:
    """reconcile finds the record at the tag's key, answers None when there is none, and cannot tell
    without a tag."""
    auth = await connect(adapter)
    ref = await publish(adapter, auth, "hello", "res_6:0")
    found = await adapter.reconcile(auth, PartDraft(text="hello", tag="res_6:0"), since=time.time() - 60)
    assert found is not None and found.external_id == ref.external_id and found.data["cid"] == ref.data["cid"]
    assert await adapter.reconcile(auth, PartDraft(text="hello", tag="res_6:1"), since=0) is None
    with pytest.raises(Unverifiable):
        await adapter.reconcile(auth, PartDraft(text="hello"), since=0)


# --- failures -----------------------------------------------------------------


async def test_server_error_is_transient(adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str) -> None:
    """A 502 UpstreamFailure on createRecord is a TransientError, and nothing was posted."""
    auth = await connect(adapter)
    await fault(http, base, "http_5xx", status=502, path_contains="createRecord")
    with pytest.raises(TransientError) as err:
        await publish(adapter, auth, "hi", "res_7:0")
    assert type(err.value) is TransientError and "UpstreamFailure" in err.value.message
    assert await posts(http, base) == []


async def test_rate_limit_carries_retry_after(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """A 429 RateLimitExceeded becomes RateLimited with retry_after from the RateLimit-Reset epoch."""
    auth = await connect(adapter)
    await fault(http, base, "rate_limit", retry_after=42, path_contains="createRecord")
    with pytest.raises(RateLimited) as err:
        await publish(adapter, auth, "hi", "res_8:0")
    assert err.value.retry_after is not None and 39 <= err.value.retry_after <= 42


async def test_expired_token_then_refresh_and_retry(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """400 ExpiredToken is AuthExpired; after refreshSession the same publish succeeds."""
    auth = await connect(adapter)
    await fault(http, base, "expire_token", account=auth.external_id)
    with pytest.raises(AuthExpired):
        await publish(adapter, auth, "hi", "res_9:0")
    auth.tokens = await adapter.refresh(auth.tokens)
    assert (await publish(adapter, auth, "hi", "res_9:0")).data["cid"]


async def test_revoked_session_needs_a_new_login(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """A revoked session is AuthRevoked on publish and on refresh (the refresh JWT is dead too)."""
    auth = await connect(adapter)
    await fault(http, base, "revoke_token", account=auth.external_id)
    with pytest.raises(AuthRevoked):
        await publish(adapter, auth, "hi", "res_10:0")
    with pytest.raises(AuthRevoked):
        await adapter.refresh(auth.tokens)


async def test_rejected_content(adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str) -> None:
    """A record the PDS refuses (400 InvalidRequest) is ContentRejected, whether injected or because the
    text breaks the lexicon's 300 grapheme limit."""
    auth = await connect(adapter)
    await fault(http, base, "reject_content")
    with pytest.raises(ContentRejected):
        await publish(adapter, auth, "hi", "res_11:0")
    with pytest.raises(ContentRejected) as err:
        await publish(adapter, auth, "x" * 301, "res_11:1")
    assert "300 graphemes" in err.value.message
    assert await posts(http, base) == []


async def test_bad_media_is_rejected(adapter: BlueskyAdapter, base: str) -> None:
    """A file whose bytes are not what it claims, an image over 2,000,000 bytes, and an unreachable
    media URL are MediaRejected."""
    auth = await connect(adapter)
    with pytest.raises(MediaRejected, match="detected video/mp4"):
        await adapter.upload_media(auth, media(base, "video.mp4", "image/png"))
    with pytest.raises(MediaRejected, match="2000000"):
        await adapter.upload_media(auth, media(base, "image.jpg?size=2000001", "image/jpeg"))
    with pytest.raises(MediaRejected):
        await adapter.upload_media(auth, media(base, "missing.png", "image/png"))


async def test_dropped_answer_is_outcome_unknown_then_reconciled(
    adapter: BlueskyAdapter, http: httpx.AsyncClient, base: str
) -> None:
    """When the connection drops after the PDS stored the post, publish raises OutcomeUnknown;
    reconcile then finds exactly that post, a retry returns it, and the PDS holds one copy."""
    auth = await connect(adapter)
    await fault(http, base, "drop_after_accept")
    draft = PartDraft(text="lost answer", tag="res_12:0")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(auth, Prepared(draft=draft))
    [stored] = await posts(http, base)
    found = await adapter.reconcile(auth, draft, since=time.time() - 60)
    assert found is not None and found.external_id == stored["id"] and found.data["cid"] == stored["cid"]
    assert (await adapter.publish(auth, Prepared(draft=draft))).external_id == stored["id"]
    assert len(await posts(http, base)) == 1


# --- validation ---------------------------------------------------------------


def _issues(adapter: BlueskyAdapter, draft: PartDraft) -> dict[str, str]:
    return {i.field: i.code for i in adapter.validate(draft, field_prefix="platform_posts[0]")}


def _ref(content_type: str) -> MediaRef:
    return MediaRef(platform_media_id="x", content_type=content_type)


def test_validation_names_the_field(adapter: BlueskyAdapter) -> None:
    """Captions count graphemes (300) and bytes (3000); media count, type, options and first comments
    are checked before any request, each issue naming its field."""
    family = "👨‍👩‍👧"  # one grapheme, 18 bytes
    assert _issues(adapter, PartDraft(text=family * 150)) == {}
    assert _issues(adapter, PartDraft(text="a" * 301)) == {"platform_posts[0].caption": "caption_too_long"}
    assert _issues(adapter, PartDraft(text=family * 200)) == {"platform_posts[0].caption": "caption_too_long"}
    assert _issues(adapter, PartDraft(text="hi", media=[_ref("image/png")] * 5)) == {
        "platform_posts[0].media": "too_many_media"
    }
    assert _issues(adapter, PartDraft(text="hi", media=[_ref("image/tiff")])) == {
        "platform_posts[0].media[0]": "unsupported_media_type"
    }
    assert _issues(adapter, PartDraft(text="hi", media=[_ref("image/png"), _ref("video/mp4")])) == {
        "platform_posts[0].media": "mixed_media"
    }
    assert _issues(adapter, PartDraft(text="hi", options={"poll": 1})) == {
        "platform_posts[0].platform_options.poll": "unknown_option"
    }
    assert _issues(adapter, PartDraft(text="hi", options={"langs": ["en", "fr", "de", "es"]})) == {
        "platform_posts[0].platform_options.langs": "invalid_option"
    }
    assert _issues(adapter, PartDraft(text="hi", is_comment=True)) == {
        "platform_posts[0].first_comment": "first_comment_unsupported"
    }
