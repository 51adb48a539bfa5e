"""Small media samples whose bytes sniff as what they claim, made in code."""

from __future__ import annotations

import struct
import zlib


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def jpeg(size: int = 2048) -> bytes:
    """SOI, a JFIF APP0 segment, filler, EOI: sniffs as image/jpeg."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    body = b"\xff\xd8" + app0
    return body + b"\x00" * max(0, size - len(body) - 2) + b"\xff\xd9"


def mp4(size: int = 64 * 1024) -> bytes:
    """An ftyp box then an mdat box of filler: sniffs as video/mp4."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomavc1"
    mdat_len = max(8, size - len(ftyp))
    return ftyp + struct.pack(">I", mdat_len) + b"mdat" + b"\x00" * (mdat_len - 8)


SAMPLES = {
    "image.png": ("image/png", png),
    "image.jpg": ("image/jpeg", jpeg),
    "video.mp4": ("video/mp4", mp4),
}
