"""Caption length the way each platform counts it.

Platforms disagree on what a "character" is; counting the wrong unit either
rejects valid posts or lets the platform reject them later.
"""

from __future__ import annotations

import unicodedata

import regex

_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}]")
# twitter-text counts every URL as a t.co link of 23 characters.
_URL = regex.compile(r"(?i)\bhttps?://[^\s<>\"]+|\bwww\.[^\s<>\"]+")
_X_URL_WEIGHT = 23
# twitter-text v3: these code point ranges weigh 1, everything else 2.
_X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def _is_emoji(cluster: str) -> bool:
    return bool(_EMOJI.search(cluster))


def graphemes(text: str) -> int:
    return len(_GRAPHEME.findall(text))


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def code_points(text: str) -> int:
    return len(text)


def _x_code_point_weight(ch: str) -> int:
    cp = ord(ch)
    return 1 if any(lo <= cp <= hi for lo, hi in _X_LIGHT_RANGES) else 2


def x_weighted(text: str) -> int:
    """X's weighted length: NFC, URLs 23, emoji 2, CJK and other wide scripts 2."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    pos = 0
    for match in _URL.finditer(text):
        total += _x_plain_weight(text[pos : match.start()]) + _X_URL_WEIGHT
        pos = match.end()
    return total + _x_plain_weight(text[pos:])


def _x_plain_weight(text: str) -> int:
    total = 0
    for cluster in _GRAPHEME.findall(text):
        if _is_emoji(cluster):
            total += 2
        else:
            total += sum(_x_code_point_weight(ch) for ch in cluster)
    return total


def threads_length(text: str) -> int:
    """Threads counts characters, except that an emoji counts its UTF-8 bytes."""
    total = 0
    for cluster in _GRAPHEME.findall(text):
        total += utf8_bytes(cluster) if _is_emoji(cluster) else len(cluster)
    return total


COUNTERS = {
    "weighted": x_weighted,
    "graphemes": graphemes,
    "utf16": utf16_units,
    "utf8_bytes": utf8_bytes,
    "emoji_bytes": threads_length,
    "characters": code_points,
}
