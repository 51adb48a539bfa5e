"""Disconnecting a social account: the one implementation every dialect's disconnect route calls."""

from __future__ import annotations

import logging

from fastapi import Request

from adapters.base import ClientCredentials, PlatformAdapter, TokenSet
from adapters.errors import AdapterError
from api.platforms import adapter_for
from store.credentials import client_for_source
from store.models import SocialAccount, utcnow

log = logging.getLogger("herald.accounts")


async def adapter_for_account(request: Request, session, account: SocialAccount) -> PlatformAdapter:
    """The adapter holding the OAuth app (workspace or quickstart) the account's tokens belong to."""
    creds = await client_for_source(session, request.app.state.herald.settings, workspace_id=account.workspace_id,
                                    livemode=account.livemode, platform=account.platform,
                                    source=account.credential_source)
    client = ClientCredentials(creds.client_id, creds.client_secret) if creds else None
    return adapter_for(request, account.platform, account.livemode, client)


async def disconnect_account(request: Request, session, account: SocialAccount) -> None:
    """Revoke at the platform where it can, then forget the tokens.

    The caller emits `account.disconnected` (in its own rendering) and commits.
    """
    if account.status != "disconnected" and account.access_token:
        adapter = await adapter_for_account(request, session, account)
        try:
            await adapter.revoke(TokenSet(access_token=account.access_token, refresh_token=account.refresh_token,
                                          extra=account.platform_data.get("token_extra", {})))
        except AdapterError as exc:  # the platform may already consider it gone; disconnect regardless
            log.info("revoke at %s failed for %s: %s", account.platform, account.id, exc.code)
    account.status = "disconnected"
    account.access_token = account.refresh_token = account.app_password = None
    account.disconnected_at = account.updated_at = utcnow()
    session.add(account)
