"""Media in posts, end to end: library media pulled by a platform and uploaded by an adapter, and `media_urls`
fetched into the library exactly once however often the publish is retried."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.sandbox.core import WORLD
from tests.media.conftest import create, upload
from tests.support.accounts import connect_oauth, fault, sandbox_posts
from tests.support.media import jpeg, png
from tests.support.posts import wait_status
from tests.support.servers import serve


def counting_server(body: bytes, content_type: str) -> tuple[Starlette, list[str]]:
    """A media host that records every request it answers."""
    hits: list[str] = []

    async def media(request: Request) -> Response:
        hits.append(request.url.path)
        return Response(body, media_type=content_type)

    return Starlette(routes=[Route("/files/{name}", media)]), hits


async def test_uploaded_image_is_pulled_by_instagram_and_uploaded_to_x(mstack):
    """One library JPEG in one post: Instagram's sandbox pulls it from Herald's presigned download URL, and the
    X adapter downloads it and uploads it to X; both publish with the image attached."""
    ig = await connect_oauth(mstack, "instagram", "photog")
    x = await connect_oauth(mstack, "twitter", "photog")
    image = jpeg(4096)
    async with mstack.client(mstack.tenant.test_key) as c:
        media = await create(c, "photo.jpg", "image/jpeg", size_bytes=len(image))
        assert (await upload(c, media, image)).status_code == 200
        r = await c.post("/v1/social-posts", json={"caption": "a photo", "account_ids": [ig, x],
                                                    "media_ids": [media["id"]]})
        assert r.status_code == 200, r.text
        post = await wait_status(c, r.json()["data"]["id"], {"published", "partial", "failed"})
        assert post["status"] == "published", post

    [gram] = await sandbox_posts(mstack, "instagram")
    assert gram["text"] == "a photo" and len(gram["media"]) == 1
    assert gram["media"][0].startswith(f"{mstack.url}/media/download/{media['id']}?")
    [tweet] = await sandbox_posts(mstack, "twitter")
    assert tweet["text"] == "a photo" and len(tweet["media"]) == 1, tweet
    assert WORLD.state("twitter").media[tweet["media"][0]]["size"] == len(image)


async def test_media_url_is_fetched_once_across_retries(mstack):
    """A `media_urls` entry is fetched into the library once: X's 5xx on media upload and on the tweet make
    Temporal retry the activities, and a failed result retried through the API reuses the same media row;
    the origin server sees exactly one request."""
    app, hits = counting_server(png(4, 4), "image/png")
    x = await connect_oauth(mstack, "twitter", "fetcher")
    with serve(app) as origin:
        url = f"{origin}/files/pic.png"
        await fault(mstack, "twitter", "http_5xx", path_contains="/2/media/upload")
        await fault(mstack, "twitter", "http_5xx", path_contains="/2/tweets")
        await fault(mstack, "twitter", "reject_content", path_contains="/2/tweets")
        async with mstack.client(mstack.tenant.test_key) as c:
            r = await c.post("/v1/social-posts", json={"caption": "from a URL", "account_ids": [x],
                                                        "media_urls": [url]})
            assert r.status_code == 200, r.text
            post = await wait_status(c, r.json()["data"]["id"], {"published", "failed"})
            assert post["status"] == "failed", post
            result = post["results"][0]
            assert result["error_code"] == "content_rejected"

            r = await c.post(f"/v1/social-posts/{post['id']}/results/{result['id']}/retry")
            assert r.status_code in (200, 202), r.text
            post = await wait_status(c, post["id"], {"published"})
            assert post["results"][0]["attempts"] >= 2

            library = (await c.get("/v1/media")).json()["data"]
        assert hits == ["/files/pic.png"]
        [media] = library
        assert media["source_url"] == url and media["status"] == "uploaded"
        assert media["content_type"] == "image/png"
    [tweet] = await sandbox_posts(mstack, "twitter")
    assert tweet["text"] == "from a URL"


async def test_media_url_with_wrong_bytes_fails_the_target(mstack):
    """A `media_urls` entry that serves an HTML page fails its target with unsupported_media_type, without
    retrying the fetch, and nothing reaches the platform."""
    app, hits = counting_server(b"<html>not an image</html>" * 4, "text/html")
    x = await connect_oauth(mstack, "twitter", "victim")
    with serve(app) as origin:
        async with mstack.client(mstack.tenant.test_key) as c:
            r = await c.post("/v1/social-posts", json={"caption": "bad media", "account_ids": [x],
                                                        "media_urls": [f"{origin}/files/pic.jpg"]})
            post = await wait_status(c, r.json()["data"]["id"], {"published", "failed"})
    assert post["status"] == "failed"
    assert post["results"][0]["error_code"] == "unsupported_media_type", post
    assert len(hits) == 1
    assert await sandbox_posts(mstack, "twitter") == []
