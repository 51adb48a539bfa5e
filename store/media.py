"""The media library's rules: accepted types and how bytes prove them, spooling with a hard cap,
and Herald's own presigned URLs.

A presigned URL is `<public_base_url>/media/<purpose>/<media id>?expires=<unix>&sig=<mac>`, the MAC
(`store.crypto.sign`) covering purpose, media id and expiry. It authorises exactly one action on exactly one
media row until it expires; media ids are random, so a URL for one workspace's media reaches nothing else.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from store import crypto
from store.models import Media
from store.settings import Settings

SIGN_PURPOSE = "media-url"
PURPOSES = ("upload", "download")

# What Herald accepts: the types whose leading bytes identify them.
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "video/quicktime",
               "video/webm", "application/pdf")
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "video/x-m4v": "video/mp4",
            "application/x-pdf": "application/pdf"}
# MP4 and QuickTime are one container format (ISO BMFF): a .mov declared as video/mp4 is the same bytes.
_FAMILY = {"video/quicktime": "video/mp4"}
# ftyp brands of still images (HEIF, AVIF): an ftyp box alone does not make a video.
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
HEAD_BYTES = 64
_HASH = re.compile(r"^[0-9a-f]{64}$")


class MediaProblem(Exception):
    """Bytes or a request the media library refuses: `status` is the HTTP answer it maps to."""

    def __init__(self, code: str, message: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def normalise_type(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def sniff(head: bytes) -> str | None:
    """The media type the leading bytes prove, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:HEAD_BYTES]:
        return "video/webm"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def compatible(declared: str, sniffed: str) -> bool:
    return _FAMILY.get(declared, declared) == _FAMILY.get(sniffed, sniffed)


def normalise_hash(value: str) -> str:
    """`sha256:<hex>` or `<hex>` → lowercase hex; ValueError otherwise."""
    digest = value.strip().lower().removeprefix("sha256:")
    if not _HASH.match(digest):
        raise ValueError("content_hash must be a SHA-256 hex digest, optionally prefixed with sha256:")
    return digest


@dataclass
class Spooled:
    path: Path
    size: int
    sha256: str
    content_type: str  # sniffed


async def spool(chunks: AsyncIterator[bytes], spool_dir: Path, *, limit: int, declared: str | None = None,
                exact_size: int | None = None) -> Spooled:
    """Write a stream to a spool file while checking it: at most `limit` bytes (the stream is abandoned the
    moment it goes over), a sniffable type that matches `declared`, and `exact_size` when given.

    On any failure the spool file is removed and MediaProblem raised."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix="in-", suffix=".part")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    head = b""
    sniffed: str | None = None
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise MediaProblem("too_large", f"The file is larger than {limit} bytes", 413)
                if sniffed is None and len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                    if len(head) >= HEAD_BYTES:
                        sniffed = _checked_type(head, declared)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise MediaProblem("empty_file", "The file is empty")
        sniffed = sniffed or _checked_type(head, declared)
        if exact_size is not None and size != exact_size:
            raise MediaProblem("size_mismatch", f"Received {size} bytes but size_bytes said {exact_size}")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(path=path, size=size, sha256=digest.hexdigest(), content_type=sniffed)


def _checked_type(head: bytes, declared: str | None) -> str:
    sniffed = sniff(head)
    if sniffed is None:
        raise MediaProblem("unsupported_media_type",
                           "The bytes are not a supported image, video or PDF (JPEG, PNG, GIF, WEBP, MP4/MOV, "
                           "WEBM, PDF)")
    if declared is not None and not compatible(declared, sniffed):
        raise MediaProblem("media_type_mismatch", f"The file was declared {declared} but its bytes are {sniffed}")
    return sniffed


# --- presigned URLs ---------------------------------------------------------------


def _signed_value(purpose: str, media_id: str, expires: int) -> str:
    return f"{purpose}:{media_id}:{expires}"


def signed_url(settings: Settings, purpose: str, media_id: str, *,
               expires: int | None = None) -> tuple[str, datetime]:
    """A presigned URL on Herald for `purpose` ("upload" or "download") of one media row, and its expiry."""
    assert purpose in PURPOSES
    expires = expires if expires is not None else int(time.time()) + settings.media_url_ttl_seconds
    sig = crypto.sign(_signed_value(purpose, media_id, expires), SIGN_PURPOSE)
    query = urlencode({"expires": expires, "sig": sig})
    url = f"{settings.public_base_url.rstrip('/')}/media/{purpose}/{media_id}?{query}"
    return url, datetime.fromtimestamp(expires, UTC)


def check_signature(purpose: str, media_id: str, expires: int, sig: str, *, now: float | None = None) -> None:
    """MediaProblem (403) unless the signature is Herald's for this purpose, media id and expiry, and unexpired."""
    if not crypto.verify(_signed_value(purpose, media_id, expires), sig, SIGN_PURPOSE):
        raise MediaProblem("invalid_signature", "This media URL's signature is not valid", 403)
    if expires < (now if now is not None else time.time()):
        raise MediaProblem("url_expired", "This media URL has expired; request a new one", 403)


def download_url(settings: Settings, media: Media) -> str:
    """The presigned download URL of an uploaded media row (what platforms and adapters fetch)."""
    return signed_url(settings, "download", media.id)[0]


def new_storage_key(media: Media) -> str:
    """Every upload gets its own key, so a losing concurrent upload can never overwrite the winner's bytes."""
    return f"{media.workspace_id}/{media.id}/{secrets.token_hex(8)}"


def ingest_media_id(result_id: str, url: str) -> str:
    """The media id a post result's `media_urls` entry is fetched into: derived, so a retry finds the row
    (the primary key makes concurrent fetches settle on one), and keyed, so it is as unguessable as any id."""
    mac = crypto.sign(f"{result_id}\n{url}", "media-ingest")
    return "med_" + hashlib.sha256(mac.encode()).hexdigest()[:24]
