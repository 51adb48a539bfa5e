"""Fetching a post's `media_urls` into the media library, once.

A URL is fetched, checked like an upload (sniffed type, size cap) and stored
as an uploaded media row; platforms then pull Herald's presigned copy. With a
`cache_key` (the post result id) the row's id is derived from key and URL, so a
retried publish finds the row instead of fetching again, and two concurrent
fetches settle on one row through the primary key.

Live mode fetches only from public addresses: every hop (redirects included)
is resolved, checked with `store.net.resolve_public`, and connected to by the
checked address, so DNS cannot be switched to an internal one in between.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.media import MEDIA_TYPES, MediaProblem, Spooled, ingest_media_id, new_storage_key, normalise_type, spool
from store.media_storage import MediaStorage, StorageError, storage_for
from store.models import Media, utcnow
from store.net import BlockedAddress, UnresolvableHost, resolve_public
from store.settings import Settings

log = logging.getLogger("herald.media")

MAX_REDIRECTS = 5
FETCH_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class IngestError(Exception):
    """A media URL that could not be taken into the library. `retryable`: a later attempt may succeed."""

    def __init__(self, message: str, code: str = "media_rejected", *, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


class MediaIngest:
    def __init__(self, db: Database, settings: Settings, storage: MediaStorage | None = None):
        self.db = db
        self.settings = settings
        self.storage = storage or storage_for(settings)

    async def ingest_url(self, url: str, workspace_id: str, livemode: bool, *,
                         cache_key: str | None = None) -> Media:
        """The media row holding `url`'s bytes: fetched now, or found from an earlier call with the same key."""
        media_id = ingest_media_id(cache_key, url) if cache_key else None
        if media_id is not None:
            async with self.db.session() as s:
                existing = await s.get(Media, media_id)
            if existing is not None:
                return existing
        spooled = await self._fetch(url, livemode)
        media = Media(workspace_id=workspace_id, livemode=livemode, filename=_filename(url, spooled),
                      content_type=spooled.content_type, size_bytes=spooled.size, content_hash=spooled.sha256,
                      status="uploaded", source_url=url[:2048], uploaded_at=utcnow())
        if media_id is not None:
            media.id = media_id
        media.storage_key = new_storage_key(media)
        try:
            await self.storage.commit(spooled.path, media.storage_key, content_type=media.content_type,
                                      sha256=spooled.sha256, size=spooled.size)
        except StorageError as exc:
            raise IngestError(f"media storage failed: {exc}", "storage_unavailable", retryable=True) from None
        finally:
            spooled.path.unlink(missing_ok=True)
        try:
            async with self.db.session() as s:
                s.add(media)
                await s.commit()
            return media
        except IntegrityError:
            # A concurrent attempt stored the same URL first: keep its row, drop these bytes.
            await self._discard(media.storage_key)
            async with self.db.session() as s:
                winner = await s.get(Media, media.id)
            if winner is None:
                raise
            return winner
        except BaseException:
            await self._discard(media.storage_key)
            raise

    async def _discard(self, key: str) -> None:
        try:
            await self.storage.delete(key)
        except StorageError as exc:
            log.warning("could not remove stored bytes %s: %s", key, exc)

    async def _fetch(self, url: str, livemode: bool) -> Spooled:
        current = url
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http:
            for _ in range(MAX_REDIRECTS + 1):
                request = await self._request(http, current, livemode)
                try:
                    resp = await http.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise IngestError(f"could not fetch media URL: {type(exc).__name__}", "media_fetch_failed",
                                      retryable=True) from None
                try:
                    if resp.is_redirect and "location" in resp.headers:
                        current = urljoin(current, resp.headers["location"])
                        continue
                    return await self._receive(resp, current)
                finally:
                    await resp.aclose()
        raise IngestError(f"media URL redirected more than {MAX_REDIRECTS} times", "media_fetch_failed")

    async def _request(self, http: httpx.AsyncClient, url: str, livemode: bool) -> httpx.Request:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IngestError("media URLs must be absolute http(s) URLs", "invalid_media_url")
        if not livemode:
            return http.build_request("GET", url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = (await resolve_public(parts.hostname, port))[0]
        except BlockedAddress:
            raise IngestError("media URL points at a private or loopback address", "media_url_blocked") from None
        except UnresolvableHost:
            raise IngestError(f"media URL host {parts.hostname} does not resolve", "media_fetch_failed") from None
        # Connect to the checked address; Host and TLS SNI (and so certificate checks) keep the name.
        pinned = httpx.URL(url).copy_with(host=address)
        return http.build_request("GET", pinned, headers={"Host": parts.netloc.rpartition("@")[2]},
                                  extensions={"sni_hostname": parts.hostname})

    async def _receive(self, resp: httpx.Response, url: str) -> Spooled:
        status = resp.status_code
        if status >= 500 or status in (408, 429):
            raise IngestError(f"media URL answered {status}", "media_fetch_failed", retryable=True)
        if status != 200:
            raise IngestError(f"media URL answered {status}", "media_fetch_failed")
        limit = self.settings.media_max_bytes
        length = resp.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise IngestError(f"media at URL is larger than {limit} bytes", "media_too_large")
        try:
            return await spool(resp.aiter_bytes(), self.storage.ensure_spool_dir(), limit=limit,
                               declared=_declared_type(resp, url))
        except MediaProblem as problem:
            code = "media_too_large" if problem.status == 413 else problem.code
            raise IngestError(f"media URL: {problem.message}", code) from None
        except httpx.HTTPError as exc:
            raise IngestError(f"media download broke off: {type(exc).__name__}", "media_fetch_failed",
                              retryable=True) from None


def _declared_type(resp: httpx.Response, url: str) -> str | None:
    """What the server or the URL claims, when it names a media type; generic types claim nothing."""
    header = normalise_type(resp.headers.get("content-type", ""))
    if header in MEDIA_TYPES:
        return header
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    guessed = normalise_type(guessed) if guessed else None
    return guessed if guessed in MEDIA_TYPES else None


def _filename(url: str, spooled: Spooled) -> str:
    name = unquote(PurePosixPath(urlsplit(url).path).name).strip()
    return (name or f"media.{spooled.content_type.rsplit('/', 1)[1]}")[:255]
