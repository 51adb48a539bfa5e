"""The one explicit registry of platform adapters.

Platform modules are imported on first use so that a process that only needs
one platform does not pay for all nine.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from adapters.base import PlatformAdapter

ADAPTERS: dict[str, str] = {
    "twitter": "adapters.twitter:TwitterAdapter",
    "linkedin": "adapters.linkedin:LinkedInAdapter",
    "bluesky": "adapters.bluesky:BlueskyAdapter",
    "youtube": "adapters.youtube:YouTubeAdapter",
    "tiktok": "adapters.tiktok:TikTokAdapter",
    "instagram": "adapters.instagram:InstagramAdapter",
    "threads": "adapters.threads:ThreadsAdapter",
    "facebook": "adapters.facebook:FacebookAdapter",
    "pinterest": "adapters.pinterest:PinterestAdapter",
}

PLATFORMS: tuple[str, ...] = tuple(ADAPTERS)


@cache
def adapter_class(platform: str) -> type[PlatformAdapter]:
    module, _, name = ADAPTERS[platform].partition(":")
    return getattr(importlib.import_module(module), name)
