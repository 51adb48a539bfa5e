"""Connect sessions: creation (the white-label rule), the signed OAuth state, and the workflow calls.

Both dialects create sessions through `create_session`; the hosted pages
and the OAuth callback use the rest.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from activities.connect import ConnectOutcome
from adapters.registry import adapter_class
from api.auth import Principal
from api.errors import ServiceUnavailable, ValidationFailed
from api.routers.profiles import resolve_profile
from api.state import AppState
from store import crypto
from store.accounts import upsert_managed_user
from store.credentials import resolve_client
from store.models import ConnectSession
from workflows import search_attributes as sa
from workflows.connect import ConnectSessionInput, ConnectSessionWorkflow

STATE_PURPOSE = "oauth-state"


def workflow_id(session_id: str) -> str:
    return f"connect-session/{session_id}"


def hosted_url(state: AppState, session_id: str) -> str:
    return f"{state.settings.public_base_url.rstrip('/')}/connect/{session_id}"


@dataclass
class NewSession:
    platform: str
    external_user_id: str
    external_user_email: str | None = None
    return_url: str | None = None
    profile_id: str | None = None
    allow_quickstart_creds: bool = False
    dialect: str = "u"


async def create_session(state: AppState, session, principal: Principal, req: NewSession) -> ConnectSession:
    """Validate the white-label rule, store the session, and start its workflow."""
    provider = adapter_class(req.platform).provider
    if provider.auth_kind == "oauth2":
        client = await resolve_client(session, state.settings, workspace_id=principal.workspace_id,
                                      livemode=principal.livemode, platform=req.platform,
                                      allow_quickstart=req.allow_quickstart_creds)
        if client is None:
            hint = ("Upload your own OAuth app with POST /v1/platform-credentials, or pass "
                    "allow_quickstart_creds=true to use this instance's shared quickstart app")
            if req.allow_quickstart_creds:
                hint = "This instance has no quickstart app for this platform; upload your own with " \
                       "POST /v1/platform-credentials"
            raise ValidationFailed.one("platform", "credentials_required",
                                       f"No OAuth app is configured for {provider.display_name}. {hint}.")
    profile = await resolve_profile(session, principal, req.profile_id)
    await upsert_managed_user(session, workspace_id=principal.workspace_id, livemode=principal.livemode,
                              external_user_id=req.external_user_id, email=req.external_user_email)
    now = datetime.now(UTC)
    row = ConnectSession(
        workspace_id=principal.workspace_id, livemode=principal.livemode, profile_id=profile.id,
        platform=req.platform, external_user_id=req.external_user_id, external_user_email=req.external_user_email,
        return_url=req.return_url, allow_quickstart_creds=req.allow_quickstart_creds, dialect=req.dialect,
        expires_at=now + timedelta(minutes=state.settings.connect_session_ttl_minutes), created_at=now,
        updated_at=now)
    session.add(row)
    await session.commit()
    if state.temporal is None:
        raise ServiceUnavailable("The workflow engine is not reachable; retry shortly")
    await state.temporal.start_workflow(
        ConnectSessionWorkflow.run, ConnectSessionInput(row.id, row.expires_at), id=workflow_id(row.id),
        task_queue=state.settings.task_queue,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(sa.WORKSPACE, row.workspace_id), SearchAttributePair(sa.LIVEMODE, row.livemode),
            SearchAttributePair(sa.PLATFORMS, [row.platform]), SearchAttributePair(sa.STATUS, "pending")]),
        static_summary=f"Connect {row.platform} for {row.external_user_id}",
    )
    return row


# --- the OAuth state: bound to the session, signed, single-use ---


async def new_state(session, row: ConnectSession) -> tuple[str, str | None]:
    """A fresh state (and PKCE verifier) for one authorization attempt; the previous one stops working."""
    nonce = secrets.token_urlsafe(18)
    value = f"{row.id}.{nonce}"
    verifier = secrets.token_urlsafe(48) if adapter_class(row.platform).provider.pkce else None
    row.state_hash = hashlib.sha256(nonce.encode()).hexdigest()
    row.state_used = False
    row.code_verifier = verifier
    session.add(row)
    await session.commit()
    return f"{value}.{crypto.sign(value, STATE_PURPOSE)}", verifier


class StateError(Exception):
    pass


async def consume_state(session, state_param: str, platform: str) -> ConnectSession:
    """Check the signature, the session, the platform and single use; then spend the state."""
    try:
        session_id, nonce, signature = state_param.split(".")
    except ValueError:
        raise StateError("The sign-in link is malformed.") from None
    if not crypto.verify(f"{session_id}.{nonce}", signature, STATE_PURPOSE):
        raise StateError("The sign-in link was altered or does not belong to this server.")
    row = (await session.exec(select(ConnectSession).where(ConnectSession.id == session_id))).first()
    if row is None or row.platform != platform:
        raise StateError("The sign-in link does not match a connect session for this platform.")
    if row.state_hash != hashlib.sha256(nonce.encode()).hexdigest() or row.state_used:
        raise StateError("This sign-in link was already used or replaced by a newer attempt.")
    row.state_used = True
    session.add(row)
    await session.commit()
    return row


def seal(secret_value: str) -> str:
    from activities.connect import SEAL_CONTEXT

    return crypto.cipher().seal(secret_value, SEAL_CONTEXT)


async def run_update(state: AppState, session_id: str, update, arg) -> ConnectOutcome | str | None:
    """Call the session's workflow; a closed session answers with a clear error."""
    if state.temporal is None:
        raise ServiceUnavailable("The workflow engine is not reachable; retry shortly")
    handle = state.temporal.get_workflow_handle(workflow_id(session_id))
    try:
        return await handle.execute_update(update, arg) if arg is not None else await handle.execute_update(update)
    except WorkflowUpdateFailedError as exc:
        raise SessionClosedError(getattr(exc.cause, "message", None) or "The connect session is closed") from None
    except RPCError:
        raise SessionClosedError("The connect session is closed") from None


class SessionClosedError(Exception):
    pass
