"""The Bluesky adapter against Bluesky's own PDS (`@atproto/pds`), not Herald's sandbox.

The peer runs on 127.0.0.1 with a local PLC directory and no AppView, so every
check reads the repository itself (`com.atproto.repo.*`), the way the adapter
does when a PDS has no AppView.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Response

from adapters.base import AccountAuth, MediaSource, PartDraft, PostRef, Prepared, TokenSet
from adapters.bluesky import POST_COLLECTION, PROVIDER, BlueskyAdapter, record_key
from adapters.catalogue import resolve_endpoints
from adapters.errors import AuthRevoked, Unverifiable
from tests.peers.conftest import PdsAccount
from tests.support.media import png
from tests.support.servers import serve

IMAGE = png(width=3, height=2)


@pytest.fixture(scope="module")
def media_base() -> Iterator[str]:
    """Where the adapter fetches media from, as Herald's media URLs would serve it."""
    app = FastAPI()

    @app.get("/media/image.png")
    def image() -> Response:
        return Response(IMAGE, media_type="image/png")

    with serve(app) as base:
        yield base


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def adapter(http: httpx.AsyncClient, bluesky_account: PdsAccount) -> BlueskyAdapter:
    endpoints = resolve_endpoints(PROVIDER, sandbox_base=None, overrides={"api_base": bluesky_account.pds})
    return BlueskyAdapter(http=http, endpoints=endpoints)


@pytest.fixture
async def auth(adapter: BlueskyAdapter, bluesky_account: PdsAccount) -> AccountAuth:
    tokens = await adapter.login(bluesky_account.handle, bluesky_account.app_password)
    return AccountAuth(external_id=tokens.extra["did"], tokens=tokens, username=tokens.extra["handle"])


def new_tag() -> str:
    return f"res_{uuid.uuid4().hex}:0"


async def publish(adapter: BlueskyAdapter, auth: AccountAuth, draft: PartDraft) -> PostRef:
    ref = await adapter.publish(auth, Prepared(draft=draft))
    assert isinstance(ref, PostRef)
    return ref


async def xrpc_get(http: httpx.AsyncClient, account: PdsAccount, nsid: str, **params: str) -> dict:
    resp = await http.get(f"{account.pds}/xrpc/{nsid}", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def get_post(http: httpx.AsyncClient, account: PdsAccount, uri: str) -> dict:
    rkey = uri.rsplit("/", 1)[-1]
    return await xrpc_get(
        http, account, "com.atproto.repo.getRecord", repo=account.did, collection=POST_COLLECTION, rkey=rkey
    )


async def all_posts(http: httpx.AsyncClient, account: PdsAccount) -> list[dict]:
    records: list[dict] = []
    cursor: str | None = None
    while True:
        params = {"repo": account.did, "collection": POST_COLLECTION, "limit": "100"}
        page = await xrpc_get(
            http, account, "com.atproto.repo.listRecords", **params, **({"cursor": cursor} if cursor else {})
        )
        records += page["records"]
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            return records


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- connect --------------------------------------------------------------------


async def test_connect_with_app_password(adapter: BlueskyAdapter, bluesky_account: PdsAccount) -> None:
    """createSession with the app password yields the account's did, handle and its PDS (from the
    session's DID document); fetch_profile works on a PDS without an AppView."""
    tokens = await adapter.login(bluesky_account.handle, bluesky_account.app_password)
    assert tokens.extra["did"] == bluesky_account.did
    assert tokens.extra["handle"] == bluesky_account.handle
    # The DID document names the PDS by its public URL (http://localhost:<port>).
    assert tokens.extra["pds"].rsplit(":", 1)[-1] == bluesky_account.pds.rsplit(":", 1)[-1]
    assert tokens.refresh_token and tokens.expires_at and tokens.refresh_expires_at
    # An app-password session is scoped as one, not as the main password.
    assert jwt_claims(tokens.access_token)["scope"] == "com.atproto.appPass"

    profile = await adapter.fetch_profile(tokens)
    assert profile.external_id == bluesky_account.did
    assert profile.username == bluesky_account.handle


async def test_wrong_app_password_is_a_typed_error(
    adapter: BlueskyAdapter, bluesky_account: PdsAccount
) -> None:
    """The PDS's 401 AuthenticationRequired for a wrong password becomes AuthRevoked(invalid_credentials)."""
    with pytest.raises(AuthRevoked) as err:
        await adapter.login(bluesky_account.handle, "aaaa-bbbb-cccc-dddd")
    assert err.value.code == "invalid_credentials"
    assert "aaaa-bbbb" not in str(err.value)


# --- publish --------------------------------------------------------------------


async def test_publish_text(
    adapter: BlueskyAdapter, auth: AccountAuth, http: httpx.AsyncClient, bluesky_account: PdsAccount
) -> None:
    """A text post lands under the record key derived from its tag, with the PDS's uri and cid, and its
    link and hashtag facets pass the PDS's lexicon validation."""
    tag = new_tag()
    text = "Héllo from Herald https://example.com/x #herald"
    ref = await publish(adapter, auth, PartDraft(text=text, tag=tag))

    assert ref.external_id == f"at://{bluesky_account.did}/{POST_COLLECTION}/{record_key(tag)}"
    stored = await get_post(http, bluesky_account, ref.external_id)
    assert stored["cid"] == ref.data["cid"]
    assert stored["value"]["text"] == text
    features = [f["features"][0]["$type"] for f in stored["value"]["facets"]]
    assert features == ["app.bsky.richtext.facet#link", "app.bsky.richtext.facet#tag"]


async def test_publish_with_an_image(
    adapter: BlueskyAdapter,
    auth: AccountAuth,
    http: httpx.AsyncClient,
    bluesky_account: PdsAccount,
    media_base: str,
) -> None:
    """uploadBlob accepts the PNG, the post embeds that blob with alt text and aspect ratio, and the
    PDS serves back exactly the bytes Herald fetched."""
    source = MediaSource(
        url=f"{media_base}/media/image.png", content_type="image/png", alt_text="a red square"
    )
    media = await adapter.upload_media(auth, source)
    assert media.content_type == "image/png"

    ref = await publish(adapter, auth, PartDraft(text="with an image", media=[media], tag=new_tag()))
    embed = (await get_post(http, bluesky_account, ref.external_id))["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    (image,) = embed["images"]
    assert image["alt"] == "a red square"
    assert image["aspectRatio"] == {"width": 3, "height": 2}
    assert image["image"]["ref"]["$link"] == media.platform_media_id
    assert image["image"]["mimeType"] == "image/png" and image["image"]["size"] == len(IMAGE)

    blob = await http.get(
        f"{bluesky_account.pds}/xrpc/com.atproto.sync.getBlob",
        params={"did": bluesky_account.did, "cid": media.platform_media_id},
    )
    assert blob.status_code == 200 and blob.content == IMAGE


async def test_thread_of_three_keeps_root_and_parent(
    adapter: BlueskyAdapter, auth: AccountAuth, http: httpx.AsyncClient, bluesky_account: PdsAccount
) -> None:
    """Each reply's `reply.root` is the first post and `reply.parent` the part before it, as stored."""
    first = await publish(adapter, auth, PartDraft(text="1/3", tag=new_tag()))
    second = await publish(adapter, auth, PartDraft(text="2/3", reply_to=first, tag=new_tag()))
    third = await publish(adapter, auth, PartDraft(text="3/3", reply_to=second, tag=new_tag()))

    def strong(ref: PostRef) -> dict:
        return {"uri": ref.external_id, "cid": ref.data["cid"]}

    assert "reply" not in (await get_post(http, bluesky_account, first.external_id))["value"]
    second_reply = (await get_post(http, bluesky_account, second.external_id))["value"]["reply"]
    assert second_reply == {"root": strong(first), "parent": strong(first)}
    third_reply = (await get_post(http, bluesky_account, third.external_id))["value"]["reply"]
    assert third_reply == {"root": strong(first), "parent": strong(second)}


# --- reconcile ------------------------------------------------------------------


async def test_reconcile_finds_the_post_and_a_repeat_creates_nothing(
    adapter: BlueskyAdapter, auth: AccountAuth, http: httpx.AsyncClient, bluesky_account: PdsAccount
) -> None:
    """Before publishing, reconcile says the post is certainly absent; after, it finds that exact post;
    publishing the same tag again answers with the existing post and the repo still holds one record."""
    tag = new_tag()
    draft = PartDraft(text="exactly once", tag=tag)
    assert await adapter.reconcile(auth, draft, since=0) is None

    ref = await publish(adapter, auth, draft)
    found = await adapter.reconcile(auth, draft, since=0)
    assert found is not None
    assert (found.external_id, found.data["cid"]) == (ref.external_id, ref.data["cid"])

    before = await all_posts(http, bluesky_account)
    again = await publish(adapter, auth, PartDraft(text="exactly once", tag=tag))
    after = await all_posts(http, bluesky_account)
    assert (again.external_id, again.data["cid"]) == (ref.external_id, ref.data["cid"])
    assert len(after) == len(before)
    assert [r["uri"] for r in after].count(ref.external_id) == 1


async def test_reconcile_without_a_tag_is_unverifiable(adapter: BlueskyAdapter, auth: AccountAuth) -> None:
    """With no record key to look up, the adapter says it cannot tell rather than guessing."""
    with pytest.raises(Unverifiable):
        await adapter.reconcile(auth, PartDraft(text="untagged"), since=0)


# --- refresh --------------------------------------------------------------------


async def test_refresh_rotates_and_the_old_refresh_jwt_has_a_grace_period(
    adapter: BlueskyAdapter, auth: AccountAuth
) -> None:
    """refreshSession returns a new pair that works (for API calls and for the next refresh). The PDS
    keeps the replaced refresh JWT usable for a 2-hour grace period, and reusing it yields a refresh JWT
    with the same id as the first rotation. Logout (deleteSession) kills only the refresh JWT it is given:
    the access JWT lives on until it expires, and so does a replaced refresh JWT in its grace period."""
    old = auth.tokens
    new = await adapter.refresh(old)
    # Access JWTs carry no id: two issued in the same second can be identical, so compare refresh JWTs.
    assert old.refresh_token and new.refresh_token
    assert jwt_claims(new.refresh_token)["jti"] != jwt_claims(old.refresh_token)["jti"]
    assert new.extra["did"] == old.extra["did"]
    assert (await adapter.fetch_profile(new)).external_id == old.extra["did"]

    replay = await adapter.refresh(
        TokenSet(access_token="", refresh_token=old.refresh_token, extra=old.extra)
    )
    assert replay.refresh_token
    assert jwt_claims(replay.refresh_token)["jti"] == jwt_claims(new.refresh_token)["jti"]

    newest = await adapter.refresh(new)
    await adapter.revoke(newest)
    with pytest.raises(AuthRevoked):
        await adapter.refresh(newest)
    assert (await adapter.fetch_profile(newest)).external_id == old.extra["did"]
    # Only revoking the app password itself ends every session derived from it.
    assert (await adapter.refresh(new)).refresh_token
