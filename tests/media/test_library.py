"""The media library over real HTTP: presigned upload and download, the checks on the bytes, and isolation."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

from store.media import signed_url
from tests.media.conftest import create, media_stack, stored_files, upload
from tests.support.accounts import connect_bluesky, connect_oauth
from tests.support.media import jpeg, mp4, png


async def test_upload_through_presigned_url_then_download(mstack):
    """Create → PUT to the presigned URL without an API key → uploaded with size and hash → the presigned
    download URL returns the same bytes; a second upload is a conflict."""
    data = png(8, 8)
    digest = hashlib.sha256(data).hexdigest()
    async with mstack.client(mstack.tenant.test_key) as c, mstack.client() as anonymous:
        media = await create(c, "pic.png", "image/png", size_bytes=len(data), content_hash=f"sha256:{digest}")
        assert media["status"] == "pending" and media["id"] == media["media_id"] and media["livemode"] is False
        assert media["upload_url"].startswith(f"{mstack.url}/media/upload/{media['id']}?expires=")
        assert media["download_url"] is None and media["expires_at"]

        r = await upload(anonymous, media, data)
        assert r.status_code == 200, r.text
        done = r.json()["data"]
        assert done["status"] == "uploaded" and done["size_bytes"] == len(data) and done["content_hash"] == digest
        assert done["uploaded_at"] and done["upload_url"] is None

        got = (await c.get(f"/v1/media/{media['id']}")).json()["data"]
        assert got["status"] == "uploaded" and got["content_type"] == "image/png"
        down = await anonymous.get(got["download_url"])
        assert down.status_code == 200 and down.content == data
        assert down.headers["content-type"] == "image/png" and down.headers["x-content-type-options"] == "nosniff"
        head = await anonymous.head(got["download_url"])
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))

        again = await upload(anonymous, media, data)
        assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"

        listed = (await c.get("/v1/media", params={"status": "uploaded"})).json()
        assert [m["id"] for m in listed["data"]] == [media["id"]] and listed["meta"]["has_more"] is False
    assert [p.name for p in stored_files(mstack)] and not any(".incoming" in str(p) for p in stored_files(mstack))


async def test_too_large_upload_is_cut_off_and_leaves_nothing(database, temporal_env, tmp_path):
    """A streamed body over the cap (the instance limit, or the declared size_bytes) is refused with 413 in the
    envelope, and no spool or partial file is left; the media stays pending and can still be uploaded."""
    async with media_stack(database, temporal_env, tmp_path / "data", media_max_bytes=200_000) as stack:
        sent = []

        async def body(total: int):
            head = png()
            yield head
            sent.append(len(head))
            for _ in range(total // 16384):
                sent.append(16384)
                yield b"\x00" * 16384

        async with stack.client(stack.tenant.test_key) as c:
            media = await create(c, "big.png", "image/png")
            r = await c.put(media["upload_url"], content=body(400_000))  # chunked: no Content-Length
            assert r.status_code == 413, r.text
            assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE" and r.json()["error"]["issues"]
            assert stored_files(stack) == []

            declared = await create(c, "small.png", "image/png", size_bytes=1000)
            r = await c.put(declared["upload_url"], content=body(50_000))
            assert r.status_code == 413, r.text
            r = await c.put(declared["upload_url"], content=b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000)
            assert r.status_code == 413, r.text  # refused from Content-Length before reading
            assert stored_files(stack) == []

            r = await c.post("/v1/media", json={"filename": "x.mp4", "content_type": "video/mp4",
                                                "size_bytes": 200_001})
            assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == "size_bytes"

            assert (await c.get(f"/v1/media/{media['id']}")).json()["data"]["status"] == "pending"
            ok = await c.put(media["upload_url"], content=png())
            assert ok.status_code == 200, ok.text


async def test_bytes_must_match_declared_type_size_and_hash(mstack):
    """PNG bytes declared as video/mp4, a hash mismatch, a short body and unknown bytes are each a 422 that names
    the problem; nothing is stored, and the media can still take the right bytes."""
    data = png()
    async with mstack.client(mstack.tenant.test_key) as c:
        video = await create(c, "clip.mp4", "video/mp4")
        r = await upload(c, video, data)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["issues"][0]["code"] == "media_type_mismatch"

        hashed = await create(c, "pic.png", "image/png", content_hash="0" * 64)
        r = await upload(c, hashed, data)
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["code"] == "content_hash_mismatch"

        sized = await create(c, "pic.png", "image/png", size_bytes=len(data) + 10)
        r = await upload(c, sized, data)
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["code"] == "size_mismatch"

        text = await create(c, "notes.pdf", "application/pdf")
        r = await upload(c, text, b"hello, this is plain text and not a PDF at all" * 3)
        assert r.status_code == 422 and r.json()["error"]["issues"][0]["code"] == "unsupported_media_type"
        assert stored_files(mstack) == []

        assert (await upload(c, video, mp4(4096))).status_code == 200
        assert (await c.get(f"/v1/media/{hashed['id']}")).json()["data"]["status"] == "pending"

        for bad, field in (({"content_type": "text/html"}, "content_type"),
                           ({"content_type": "image/png", "content_hash": "md5:abc"}, "content_hash"),
                           ({"content_type": "image/png", "size_bytes": 0}, "size_bytes")):
            r = await c.post("/v1/media", json={"filename": "f", **bad})
            assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == field, r.text


async def test_expired_and_forged_urls_are_refused(mstack):
    """An expired URL, a tampered signature, a signature moved to another media id, and an upload URL used to
    download (or the reverse) are all 403 in the envelope."""
    settings = mstack.settings
    async with mstack.client(mstack.tenant.test_key) as c, mstack.client() as anon:
        media = await create(c, "pic.jpg", "image/jpeg")
        other = await create(c, "other.jpg", "image/jpeg")
        expired, _ = signed_url(settings, "upload", media["id"], expires=int(time.time()) - 5)
        r = await anon.put(expired, content=jpeg())
        assert r.status_code == 403 and r.json()["error"]["issues"][0]["code"] == "url_expired"

        forged = media["upload_url"][:-3] + ("AAA" if not media["upload_url"].endswith("AAA") else "BBB")
        r = await anon.put(forged, content=jpeg())
        assert r.status_code == 403 and r.json()["error"]["issues"][0]["code"] == "invalid_signature"

        moved = media["upload_url"].replace(media["id"], other["id"])
        assert (await anon.put(moved, content=jpeg())).status_code == 403
        longer = media["upload_url"].replace("expires=", "expires=9")
        assert (await anon.put(longer, content=jpeg())).status_code == 403

        assert (await anon.put(media["upload_url"], content=jpeg())).status_code == 200
        download = (await c.get(f"/v1/media/{media['id']}")).json()["data"]["download_url"]
        assert (await anon.put(download.replace("/download/", "/upload/"), content=jpeg())).status_code == 403
        assert (await anon.get(media["upload_url"].replace("/upload/", "/download/"))).status_code == 403
        expired, _ = signed_url(settings, "download", media["id"], expires=int(time.time()) - 5)
        assert (await anon.get(expired)).status_code == 403
        assert (await anon.get(download)).status_code == 200


async def test_another_workspace_cannot_reach_media(mstack):
    """Workspace B's key does not see A's media (404), and A's download signature does not open B's media."""
    other = await mstack.new_tenant("Other")
    async with mstack.client(mstack.tenant.test_key) as a, mstack.client(other.test_key) as b, \
            mstack.client() as anon:
        mine = await create(a, "a.png", "image/png")
        theirs = await create(b, "b.png", "image/png")
        assert (await upload(anon, mine, png())).status_code == 200
        assert (await upload(anon, theirs, png(3, 3))).status_code == 200

        for method in ("GET", "DELETE"):
            assert (await b.request(method, f"/v1/media/{mine['id']}")).status_code == 404
        assert [m["id"] for m in (await b.get("/v1/media")).json()["data"]] == [theirs["id"]]

        download = (await a.get(f"/v1/media/{mine['id']}")).json()["data"]["download_url"]
        query = parse_qs(urlsplit(download).query)
        crossed = f"{mstack.url}/media/download/{theirs['id']}?expires={query['expires'][0]}&sig={query['sig'][0]}"
        r = await anon.get(crossed)
        assert r.status_code == 403 and png(3, 3) not in r.content
        assert (await anon.get(download)).content == png()

        live = await create(b, "live.png", "image/png")
        async with mstack.client(other.live_key) as b_live:
            assert (await b_live.get(f"/v1/media/{live['id']}")).status_code == 404


async def test_delete_removes_bytes_and_blocks_use(mstack):
    """DELETE marks the media deleted and removes the bytes; its download URL is 404 and a post using it is a
    422 naming the media."""
    async with mstack.client(mstack.tenant.test_key) as c:
        bsky = await connect_bluesky(c)
        media = await create(c, "pic.png", "image/png")
        assert (await upload(c, media, png())).status_code == 200
        download = (await c.get(f"/v1/media/{media['id']}")).json()["data"]["download_url"]
        assert stored_files(mstack)

        r = await c.delete(f"/v1/media/{media['id']}")
        assert r.status_code == 200 and r.json()["data"]["status"] == "deleted"
        assert r.json()["data"]["download_url"] is None
        assert stored_files(mstack) == []
        assert (await c.get(download)).status_code == 404
        assert (await c.delete(f"/v1/media/{media['id']}")).status_code == 200
        assert (await upload(c, media, png())).status_code == 404

        r = await c.post("/v1/social-posts/validate", json={"platform_posts": [
            {"account_id": bsky, "caption": "gone", "media_ids": [media["id"]]}]})
        assert r.status_code == 422
        assert r.json()["error"]["issues"][0] == {
            "field": "platform_posts[0].media_ids[0]", "code": "media_deleted",
            "message": f"Media {media['id']} was deleted"}


async def test_media_size_is_checked_against_the_platform(mstack):
    """An uploaded image over Bluesky's 2 MB image limit is a 422 at platform_posts[0].media_ids[0] before any
    platform call; the same image within X's 5 MiB limit validates."""
    big = jpeg(2_100_000)
    async with mstack.client(mstack.tenant.test_key) as c:
        bsky = await connect_bluesky(c)
        media = await create(c, "big.jpg", "image/jpeg", size_bytes=len(big))
        assert (await upload(c, media, big)).status_code == 200
        r = await c.post("/v1/social-posts/validate", json={"platform_posts": [
            {"account_id": bsky, "caption": "too big", "media_ids": [media["id"]]}]})
        assert r.status_code == 422, r.text
        issue = r.json()["error"]["issues"][0]
        assert issue["field"] == "platform_posts[0].media_ids[0]" and issue["code"] == "media_too_large"
        assert media["id"] in issue["message"] and "2000000" in issue["message"]
        x = await connect_oauth(mstack, "twitter", "alice")
        r = await c.post("/v1/social-posts/validate", json={"platform_posts": [
            {"account_id": x, "caption": "fits", "media_ids": [media["id"]]}]})
        assert r.status_code == 200, r.text
