"""Connect activities: exchange the code, read the profile, store the account, finish the session.

Secrets never travel in workflow histories: the authorization code and a
Bluesky app password arrive sealed (encrypted with Herald's key), and the
PKCE verifier is read from the session row, where it is encrypted at rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.base import AccountProfile, ClientCredentials, TokenSet
from adapters.errors import AdapterError, AuthRevoked
from adapters.factory import make_adapter
from store import crypto
from store.accounts import ConnectedIdentity, upsert_account, upsert_managed_user
from store.credentials import resolve_client
from store.db import Database
from store.events import emit
from store.models import ConnectSession, SocialAccount, utcnow
from store.settings import Settings

SEAL_CONTEXT = "connect.callback"


@dataclass
class CallbackInput:
    session_id: str
    sealed_code: str | None = None  # OAuth platforms
    handle: str | None = None  # Bluesky
    sealed_app_password: str | None = None


@dataclass
class ConnectOutcome:
    status: str  # completed | failed
    account_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class SessionStatusInput:
    session_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None


def callback_url(settings: Settings, platform: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/v1/oauth/callback/{platform}"


class ConnectActivities:
    def __init__(self, db: Database, http: httpx.AsyncClient, settings: Settings):
        self.db = db
        self.http = http
        self.settings = settings

    @activity.defn(name="connect.complete")
    async def complete(self, inp: CallbackInput) -> ConnectOutcome:
        """Exchange (or log in), fetch the profile, upsert the account and complete the session, in one go."""
        async with self.db.session() as s:
            session = await s.get(ConnectSession, inp.session_id)
            if session is None or session.status != "pending":
                return ConnectOutcome("failed", error_code="session_closed",
                                      error_message="This connect session is no longer pending")
            creds = await resolve_client(s, self.settings, workspace_id=session.workspace_id,
                                         livemode=session.livemode, platform=session.platform,
                                         allow_quickstart=session.allow_quickstart_creds)
            verifier = session.code_verifier
        adapter = make_adapter(session.platform, self.http, livemode=session.livemode,
                               sandbox_url=self.settings.sandbox_url, overrides=self.settings.provider_overrides,
                               client=ClientCredentials(creds.client_id, creds.client_secret) if creds else None)
        app_password = None
        try:
            if session.platform == "bluesky":
                app_password = crypto.cipher().open(inp.sealed_app_password or "", SEAL_CONTEXT)
                tokens = await adapter.login((inp.handle or "").lstrip("@"), app_password)
            else:
                code = crypto.cipher().open(inp.sealed_code or "", SEAL_CONTEXT)
                tokens = await adapter.exchange_code(code=code, redirect_uri=callback_url(self.settings, session.platform),
                                                     code_verifier=verifier)
            profile = await adapter.fetch_profile(tokens)
        except AuthRevoked as exc:
            return await self._record_failure(inp.session_id, "invalid_credentials" if app_password else "exchange_failed",
                                              _user_message(session.platform, exc))
        except AdapterError as exc:
            if exc.retryable:
                raise ApplicationError(exc.message, type=type(exc).__name__) from None
            return await self._record_failure(inp.session_id, exc.code, _user_message(session.platform, exc))
        return await self._store(inp.session_id, tokens, profile, app_password,
                                 creds.source if creds else "none")

    async def _store(self, session_id: str, tokens: TokenSet, profile: AccountProfile, app_password: str | None,
                     credential_source: str) -> ConnectOutcome:
        tokens = profile.tokens or tokens  # Facebook publishes with the Page's token
        async with self.db.session() as s:
            session = await s.get(ConnectSession, session_id)
            if session.status != "pending":
                return ConnectOutcome("failed", error_code="session_closed",
                                      error_message="This connect session is no longer pending")
            user = await upsert_managed_user(s, workspace_id=session.workspace_id, livemode=session.livemode,
                                             external_user_id=session.external_user_id,
                                             email=session.external_user_email)
            account, created = await upsert_account(s, ConnectedIdentity(
                platform=session.platform, external_account_id=profile.external_id, account_name=profile.username,
                display_name=profile.display_name, avatar_url=profile.avatar_url, access_token=tokens.access_token,
                refresh_token=tokens.refresh_token, token_expires_at=tokens.expires_at,
                refresh_expires_at=tokens.refresh_expires_at, scopes=tokens.scope,
                platform_data={"token_extra": tokens.extra, **profile.extra}, app_password=app_password),
                workspace_id=session.workspace_id, livemode=session.livemode, profile_id=session.profile_id,
                connection_type="managed", credential_source=credential_source, managed_user_id=user.id)
            now = utcnow()
            session.status = "completed"
            session.completed_at = session.updated_at = now
            session.completed_social_account_id = account.id
            session.last_error = session.error_code = None
            s.add(session)
            await emit(s, session.workspace_id, session.livemode, "account.connected",
                       account_event(account, session.external_user_id, reconnected=not created))
            await emit(s, session.workspace_id, session.livemode, "connect_session.completed",
                       {"id": session.id, "status": "completed", "platform": session.platform,
                        "external_user_id": session.external_user_id, "completed_social_account_id": account.id,
                        "managed_account_id": account.id})
            await s.commit()
            return ConnectOutcome("completed", account_id=account.id)

    async def _record_failure(self, session_id: str, code: str, message: str) -> ConnectOutcome:
        """A failed attempt leaves the session pending, with last_error, so the user can try again."""
        async with self.db.session() as s:
            session = await s.get(ConnectSession, session_id)
            session.last_error, session.error_code = message, code
            session.updated_at = utcnow()
            s.add(session)
            await s.commit()
        return ConnectOutcome("failed", error_code=code, error_message=message)

    @activity.defn(name="connect.set_status")
    async def set_status(self, inp: SessionStatusInput) -> bool:
        """Expire or cancel a pending session; False if it was no longer pending."""
        async with self.db.session() as s:
            session = await s.get(ConnectSession, inp.session_id)
            if session is None or session.status != "pending":
                return False
            session.status = inp.status
            session.updated_at = utcnow()
            if inp.error_code:
                session.error_code, session.last_error = inp.error_code, inp.error_message
            s.add(session)
            if inp.status == "expired":
                await emit(s, session.workspace_id, session.livemode, "connect_session.expired",
                           {"id": session.id, "status": "expired", "platform": session.platform,
                            "external_user_id": session.external_user_id, "last_error": session.last_error})
            await s.commit()
            return True

    @activity.defn(name="connect.record_error")
    async def record_error(self, inp: SessionStatusInput) -> None:
        """The platform sent the user back with an error (a denied consent)."""
        await self._record_failure(inp.session_id, inp.error_code or "authorization_failed",
                                   inp.error_message or "Authorization failed")


def account_event(account: SocialAccount, external_user_id: str | None, *, reconnected: bool = False) -> dict:
    return {"id": account.id, "platform": account.platform, "account_name": account.account_name,
            "profile_id": account.profile_id, "external_user_id": external_user_id, "status": account.status,
            "connection_type": account.connection_type, "reconnected": reconnected}


def _user_message(platform: str, exc: AdapterError) -> str:
    if platform == "bluesky" and isinstance(exc, AuthRevoked):
        return "Bluesky did not accept that handle and app password. Check them and try again."
    if exc.code == "no_publishable_page":
        return "No Facebook Page you manage can be published to. Check your Page roles and try again."
    if exc.code == "no_channel":
        return "This Google account has no YouTube channel. Create one, then try again."
    return f"The platform refused the connection ({exc.code}). Please try again."
