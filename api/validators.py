"""Field validators shared by request models."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def http_url(value: str | None) -> str | None:
    """An absolute http(s) URL with a host, or None."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError("must be an absolute http(s) URL")
    return value


def hex_color(value: str | None) -> str | None:
    if value is not None and not HEX_COLOR.match(value):
        raise ValueError("must be a hex colour like #1D4ED8")
    return value
