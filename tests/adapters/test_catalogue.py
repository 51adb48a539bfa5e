"""The provider catalogue and capability declarations, checked as data for all nine platforms."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from pydantic import TypeAdapter

from adapters.catalogue import URL_FIELDS, ProviderEntry, resolve_endpoints
from adapters.registry import PLATFORMS, adapter_class

# API.md's caption limits: the contract.
CAPTION_LIMITS = {"twitter": 280, "linkedin": 3000, "instagram": 2200, "threads": 500, "tiktok": 2200,
                  "youtube": 5000, "bluesky": 300, "facebook": 63206, "pinterest": 500}
THREADS = {"twitter", "bluesky", "threads"}
FIRST_COMMENT_REQUIRED = {"twitter", "linkedin", "instagram"}
FIRST_COMMENT_REJECTED = {"bluesky", "threads"}

ENTRY_SCHEMA = TypeAdapter(ProviderEntry)


def test_registry_lists_the_nine_platforms():
    assert set(PLATFORMS) == set(CAPTION_LIMITS)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_provider_entry_schema(platform):
    """Every entry validates against the ProviderEntry schema and describes a complete OAuth mechanic."""
    cls = adapter_class(platform)
    entry = cls.provider
    ENTRY_SCHEMA.validate_python(entry.__dict__)
    assert entry.platform == platform == cls.platform
    for name in URL_FIELDS:
        url = getattr(entry, name)
        if url is not None:
            parts = urlsplit(url)
            assert parts.scheme == "https" and parts.netloc, (name, url)
    for name, url in entry.extra_urls.items():
        assert urlsplit(url).scheme == "https", (name, url)
    if entry.auth_kind == "oauth2":
        assert entry.scopes and entry.scope_separator in (" ", ",")
        assert entry.token_auth_method in ("client_secret_basic", "client_secret_post")
        assert entry.pkce in (None, "S256", "plain")
    else:
        assert platform == "bluesky" and entry.authorize_url is None


@pytest.mark.parametrize("platform", PLATFORMS)
def test_sandbox_rewrite_and_operator_overrides(platform):
    """Test mode maps every URL onto /sandbox/<platform> keeping the platform's path; live overrides win."""
    entry = adapter_class(platform).provider
    ep = resolve_endpoints(entry, sandbox_base="http://127.0.0.1:9/sandbox")
    for name in URL_FIELDS:
        url = getattr(ep, name)
        if url is not None:
            real = getattr(entry, name) or entry.token_url
            assert url.startswith(f"http://127.0.0.1:9/sandbox/{platform}/") or \
                url == f"http://127.0.0.1:9/sandbox/{platform}", url
            assert url.endswith(urlsplit(real).path.rstrip("/")) or urlsplit(real).path in url
    live = resolve_endpoints(entry, sandbox_base=None, overrides={"api_base": "https://proxy.example/x"})
    assert live.api_base == "https://proxy.example/x" and not live.sandbox


@pytest.mark.parametrize("platform", PLATFORMS)
def test_capabilities_match_the_contract(platform):
    caps = adapter_class(platform).capabilities
    assert caps.caption_limit == CAPTION_LIMITS[platform]
    assert caps.threads == (platform in THREADS)
    if platform in FIRST_COMMENT_REQUIRED:
        assert caps.first_comment
    if platform in FIRST_COMMENT_REJECTED:
        assert not caps.first_comment
    assert caps.media.max_items >= 1 and (caps.media.image_types or caps.media.video_types)
    described = caps.describe()
    assert described["caption"]["max_length"] == CAPTION_LIMITS[platform]
