"""Where media bytes live: a local directory, or an S3-compatible bucket.

Bytes arrive in a spool file first (see `store.media.spool`); `commit` moves a
complete, checked spool file under its key, so a failed upload never leaves a
partial object behind. The local backend spools inside its own root, so the
commit is an atomic rename on one filesystem.

The bucket backend signs each server-side call with AWS Signature Version 4
(path-style URLs, so MinIO, Ceph, R2 and AWS all work); no presigned bucket
URL ever leaves Herald: platforms fetch media from Herald's own signed URLs.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import hmac
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit
from xml.etree import ElementTree

import anyio
import httpx

from store.settings import Settings

CHUNK = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class StorageError(Exception):
    """The storage backend failed (unreachable, refused the credentials, full)."""


class MissingObject(StorageError):
    """No object under that key."""


@dataclass
class StoredObject:
    size: int
    chunks: AsyncIterator[bytes]


def check_key(key: str) -> str:
    """Keys are made by Herald from ids; anything else (`..`, absolute paths) is refused outright."""
    if not all(_KEY_SEGMENT.match(part) for part in key.split("/")):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class MediaStorage(abc.ABC):
    #: Where incoming bytes are written before `commit`.
    spool_dir: Path

    def ensure_spool_dir(self) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        return self.spool_dir

    @abc.abstractmethod
    async def commit(self, spooled: Path, key: str, *, content_type: str, sha256: str, size: int) -> None:
        """Store the spool file's bytes under `key`; the spool file is gone afterwards."""

    @abc.abstractmethod
    async def open(self, key: str) -> StoredObject:
        """The object's size and a stream of its bytes; MissingObject when there is none."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""


class LocalStorage(MediaStorage):
    def __init__(self, root: Path):
        self.root = Path(root)
        self.spool_dir = self.root / ".incoming"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def commit(self, spooled: Path, key: str, *, content_type: str, sha256: str, size: int) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(spooled, path)

    async def open(self, key: str) -> StoredObject:
        path = self._path(key)
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError:
            raise MissingObject(key) from None
        size = os.fstat(handle.wrapped.fileno()).st_size

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while block := await handle.read(CHUNK):
                    yield block
            finally:
                await handle.aclose()

        return StoredObject(size=size, chunks=chunks())

    async def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Keys are <workspace>/<media>/<upload>: drop the directories the object leaves empty.
        for parent in (path.parent, path.parent.parent):
            with contextlib.suppress(OSError):
                parent.rmdir()


# --- S3 ---------------------------------------------------------------------------


def _uri_encode(value: str, *, keep_slash: bool = False) -> str:
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def sigv4_headers(method: str, url: str, *, region: str, access_key: str, secret_key: str, payload_hash: str,
                  headers: dict[str, str] | None = None, service: str = "s3",
                  now: datetime | None = None) -> dict[str, str]:
    """The headers that authorise one request under AWS Signature Version 4 (header-based, not presigned).

    `url` must already be percent-encoded the way it goes on the wire; every header passed is signed."""
    parts = urlsplit(url)
    amz_date = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    signed = {k.lower(): " ".join(str(v).split()) for k, v in (headers or {}).items()}
    signed |= {"host": parts.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    names = sorted(signed)
    query = sorted((_uri_encode(k), _uri_encode(v)) for k, v in parse_qsl(parts.query, keep_blank_values=True))
    canonical = "\n".join([
        method.upper(),
        parts.path or "/",
        "&".join(f"{k}={v}" for k, v in query),
        "".join(f"{name}:{signed[name]}\n" for name in names),
        ";".join(names),
        payload_hash,
    ])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {("Host" if name == "host" else name): signed[name] for name in names}
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


def _s3_error(resp: httpx.Response, what: str) -> StorageError:
    code = ""
    if resp.content:
        with contextlib.suppress(ElementTree.ParseError):
            code = ElementTree.fromstring(resp.content).findtext("Code") or ""
    detail = f"{resp.status_code} {code}".strip()
    return (MissingObject if resp.status_code == 404 else StorageError)(f"bucket {what} failed: {detail}")


class S3Storage(MediaStorage):
    def __init__(self, *, endpoint: str, bucket: str, region: str, access_key: str, secret_key: str,
                 spool_dir: Path, http: httpx.AsyncClient | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.region = region
        self.access_key = access_key
        self._secret_key = secret_key
        self.spool_dir = Path(spool_dir)
        self._http = http

    def _url(self, key: str) -> str:
        return f"{self.endpoint}/{_uri_encode(self.bucket)}/{_uri_encode(check_key(key), keep_slash=True)}"

    def _headers(self, method: str, url: str, payload_hash: str, extra: dict[str, str] | None = None):
        return sigv4_headers(method, url, region=self.region, access_key=self.access_key,
                             secret_key=self._secret_key, payload_hash=payload_hash, headers=extra)

    @contextlib.asynccontextmanager
    async def _client(self):
        if self._http is not None:
            yield self._http
            return
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
            yield client

    async def commit(self, spooled: Path, key: str, *, content_type: str, sha256: str, size: int) -> None:
        url = self._url(key)
        headers = self._headers("PUT", url, sha256, {"Content-Type": content_type})
        headers["Content-Length"] = str(size)

        async def body() -> AsyncIterator[bytes]:
            async with await anyio.open_file(spooled, "rb") as f:
                while block := await f.read(CHUNK):
                    yield block

        try:
            async with self._client() as client:
                resp = await client.put(url, content=body(), headers=headers)
        except httpx.HTTPError as exc:
            raise StorageError(f"bucket unreachable: {type(exc).__name__}") from None
        finally:
            spooled.unlink(missing_ok=True)
        if resp.status_code >= 300:
            raise _s3_error(resp, "upload")

    async def open(self, key: str) -> StoredObject:
        url = self._url(key)
        stack = contextlib.AsyncExitStack()
        try:
            client = await stack.enter_async_context(self._client())
            request = client.build_request("GET", url, headers=self._headers("GET", url, EMPTY_SHA256))
            resp = await client.send(request, stream=True)
            stack.push_async_callback(resp.aclose)
            if resp.status_code != 200:
                await resp.aread()
                raise _s3_error(resp, "read")
        except httpx.HTTPError as exc:
            await stack.aclose()
            raise StorageError(f"bucket unreachable: {type(exc).__name__}") from None
        except BaseException:
            await stack.aclose()
            raise

        async def chunks() -> AsyncIterator[bytes]:
            async with stack:
                async for block in resp.aiter_bytes(CHUNK):
                    yield block

        return StoredObject(size=int(resp.headers.get("content-length", "0")), chunks=chunks())

    async def delete(self, key: str) -> None:
        url = self._url(key)
        try:
            async with self._client() as client:
                resp = await client.delete(url, headers=self._headers("DELETE", url, EMPTY_SHA256))
        except httpx.HTTPError as exc:
            raise StorageError(f"bucket unreachable: {type(exc).__name__}") from None
        if resp.status_code >= 300 and resp.status_code != 404:
            raise _s3_error(resp, "delete")


def storage_for(settings: Settings, http: httpx.AsyncClient | None = None) -> MediaStorage:
    """The configured backend. `http` is a shared client to reuse (the API's); without one, each call opens one."""
    if settings.media_storage == "s3":
        secret = settings.media_s3_secret_key.get_secret_value() if settings.media_s3_secret_key else ""
        return S3Storage(endpoint=settings.media_s3_endpoint, bucket=settings.media_s3_bucket,
                         region=settings.media_s3_region, access_key=settings.media_s3_access_key,
                         secret_key=secret, spool_dir=settings.data_dir / "media-spool", http=http)
    return LocalStorage(settings.data_dir / "media")
