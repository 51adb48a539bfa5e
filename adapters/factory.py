"""Build a platform adapter for one mode: live talks to the platform, test mode to the sandbox."""

from __future__ import annotations

import httpx

from adapters.base import ClientCredentials, PlatformAdapter
from adapters.catalogue import resolve_endpoints
from adapters.registry import adapter_class


def make_adapter(
    platform: str,
    http: httpx.AsyncClient,
    *,
    livemode: bool,
    sandbox_url: str,
    overrides: dict[str, dict[str, str]] | None = None,
    client: ClientCredentials | None = None,
) -> PlatformAdapter:
    cls = adapter_class(platform)
    # Operator overrides point live traffic elsewhere (a proxy, a self-hosted PDS); test mode
    # always stays on the built-in sandbox so a test key can never reach a real platform.
    endpoints = resolve_endpoints(
        cls.provider,
        sandbox_base=None if livemode else sandbox_url,
        overrides=(overrides or {}).get(platform) if livemode else None,
    )
    return cls(http, endpoints, client)
