"""Fetching media URLs into the library: SSRF refusal on resolved addresses in live mode, caching by key,
redirects, and the same byte checks as an upload."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from activities.media import IngestError, MediaIngest
from store.net import BlockedAddress, resolve_public
from tests.media.conftest import stored_files
from tests.support.media import jpeg, png
from tests.support.servers import serve


def origin_app(hits: list[str]) -> Starlette:
    async def picture(request: Request) -> Response:
        hits.append(request.url.path)
        return Response(png(5, 5), media_type="application/octet-stream")

    async def lying(request: Request) -> Response:
        hits.append(request.url.path)
        return Response(jpeg(), media_type="image/png")

    async def hop(request: Request) -> Response:
        hits.append(request.url.path)
        return RedirectResponse("/pic", status_code=302)

    return Starlette(routes=[Route("/pic", picture), Route("/lying", lying), Route("/hop", hop)])


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254",
                                  "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                                  "2002:7f00:1::", "224.0.0.1", "localhost", "[::1]"])
async def test_resolve_public_refuses_internal_addresses(host):
    """Loopback, private, link-local (cloud metadata), CGNAT, unspecified, multicast, and IPv4 wrapped in IPv6
    are refused, as is a name that resolves to loopback."""
    with pytest.raises(BlockedAddress):
        await resolve_public(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"])
async def test_resolve_public_passes_public_addresses(host):
    """Globally routable addresses come back unchanged."""
    assert await resolve_public(host) == [host]


async def test_live_mode_refuses_loopback_and_test_mode_fetches_once_per_key(mstack):
    """Live mode refuses a loopback URL before any request is sent. Test mode fetches it (following a
    redirect), stores an uploaded row, and the same key returns that row without fetching again."""
    hits: list[str] = []
    ingest = MediaIngest(mstack.db, mstack.settings)
    ws = mstack.tenant.workspace_id
    with serve(origin_app(hits)) as origin:
        with pytest.raises(IngestError) as refused:
            await ingest.ingest_url(f"{origin}/pic", ws, True, cache_key="res_live")
        assert refused.value.code == "media_url_blocked" and not refused.value.retryable
        assert hits == []

        first = await ingest.ingest_url(f"{origin}/hop", ws, False, cache_key="res_a")
        assert hits == ["/hop", "/pic"]
        assert first.status == "uploaded" and first.content_type == "image/png"
        assert first.size_bytes == len(png(5, 5))
        assert first.source_url == f"{origin}/hop" and first.livemode is False and first.workspace_id == ws
        again = await ingest.ingest_url(f"{origin}/hop", ws, False, cache_key="res_a")
        assert again.id == first.id and hits == ["/hop", "/pic"]
        other = await ingest.ingest_url(f"{origin}/hop", ws, False, cache_key="res_b")
        assert other.id != first.id and len(hits) == 4

        with pytest.raises(IngestError) as mismatch:
            await ingest.ingest_url(f"{origin}/lying", ws, False, cache_key="res_c")
        assert mismatch.value.code == "media_type_mismatch" and not mismatch.value.retryable
        with pytest.raises(IngestError) as missing:
            await ingest.ingest_url(f"{origin}/nothing-here", ws, False)
        assert missing.value.code == "media_fetch_failed" and not missing.value.retryable
    assert len(stored_files(mstack)) == 2
