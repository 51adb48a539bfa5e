"""Adapters as the API uses them (verifying credentials, revoking, capabilities)."""

from __future__ import annotations

from fastapi import Request

from adapters.base import ClientCredentials, PlatformAdapter
from adapters.factory import make_adapter


def adapter_for(request: Request, platform: str, livemode: bool,
                client: ClientCredentials | None = None) -> PlatformAdapter:
    state = request.app.state.herald
    return make_adapter(platform, state.http, livemode=livemode, sandbox_url=state.settings.sandbox_url,
                        overrides=state.settings.provider_overrides, client=client)
