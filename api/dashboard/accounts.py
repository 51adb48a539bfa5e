"""Connected accounts per end user, with their health, and the recent connect sessions."""

from __future__ import annotations

from collections import defaultdict

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import select

from api import pagination
from api.dashboard.auth import OperatorDep
from api.dashboard.pages import load_app, mode_of, new_router, page_of
from api.dashboard.render import link, page
from api.deps import SessionDep
from store.models import ConnectSession, ManagedUser, SocialAccount

UNOWNED_LIMIT = 100
SESSIONS_SHOWN = 25

router = new_router()


@router.get("/apps/{workspace_id}/accounts")
async def accounts(workspace_id: str, request: Request, operator: OperatorDep, session: SessionDep) -> Response:
    ws = await load_app(session, workspace_id)
    mode, livemode = mode_of(request.query_params.get("mode"))
    current = page_of(request, default=20)
    users_query = select(ManagedUser).where(ManagedUser.workspace_id == ws.id, ManagedUser.livemode == livemode)
    found = pagination.envelope(
        list((await session.exec(pagination.apply(users_query, ManagedUser, current))).all()), current, lambda u: u)
    users = found["data"]
    scope = (SocialAccount.workspace_id == ws.id, SocialAccount.livemode == livemode)
    by_user: dict[str, list[SocialAccount]] = defaultdict(list)
    if users:
        for account in (await session.exec(select(SocialAccount).where(
                *scope, SocialAccount.managed_user_id.in_([u.id for u in users]))
                .order_by(SocialAccount.platform, SocialAccount.created_at))).all():
            by_user[account.managed_user_id].append(account)
    # Accounts connected directly without an end user belong to no page of users: show them on the first.
    unowned = [] if current.after else list((await session.exec(select(SocialAccount).where(
        *scope, SocialAccount.managed_user_id.is_(None))
        .order_by(SocialAccount.created_at.desc()).limit(UNOWNED_LIMIT))).all())
    sessions = (await session.exec(select(ConnectSession).where(
        ConnectSession.workspace_id == ws.id, ConnectSession.livemode == livemode)
        .order_by(ConnectSession.created_at.desc()).limit(SESSIONS_SHOWN))).all()
    next_cursor = found["meta"]["next_cursor"]
    return page(request, "accounts.html", operator, ws=ws, mode=mode, tab="accounts", users=users,
                by_user=by_user, unowned=unowned, sessions=sessions,
                next_url=link(f"/dashboard/apps/{ws.id}/accounts", mode=mode, cursor=next_cursor,
                              limit=request.query_params.get("limit"))
                if next_cursor else None)
