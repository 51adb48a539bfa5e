"""The reads dialect M needs, always scoped to the caller's workspace and mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from api.auth import Principal
from api.dialect_m.shapes import HERALD_POST_STATUS, SUPPORTED_PLATFORMS
from api.errors import NotFound, ValidationFailed
from api.ownership import scoped
from api.post_requests import Issues
from store.models import ManagedUser, Post, PostResult, RedirectAllowlistEntry, SocialAccount


async def end_user(session, principal: Principal, external_user_id: str) -> ManagedUser:
    user = (await session.exec(scoped(ManagedUser, principal).where(
        ManagedUser.external_user_id == external_user_id))).first()
    if user is None:
        raise NotFound(f"End user {external_user_id}")
    return user


async def connections(session, principal: Principal, user: ManagedUser,
                      platform: str | None = None) -> list[SocialAccount]:
    """The end user's accounts, most recently connected first."""
    q = scoped(SocialAccount, principal).where(SocialAccount.managed_user_id == user.id)
    if platform is not None:
        q = q.where(SocialAccount.platform == platform)
    return list((await session.exec(q.order_by(SocialAccount.connected_at.desc(), SocialAccount.id))).all())


def _unsupported(platform: str) -> str:
    return f"Unsupported platform {platform[:32]!r}; supported: {', '.join(SUPPORTED_PLATFORMS)}"


def check_platform(platform: str) -> None:
    if platform not in SUPPORTED_PLATFORMS:
        raise ValidationFailed.one("platform", "unsupported_platform", _unsupported(platform))


def check_platforms(platforms: list[str]) -> None:
    """Non-empty, supported, each listed once: a 422 naming every offending `platforms[i]`."""
    issues = Issues()
    if not platforms:
        issues.add("platforms", "required", "List at least one platform")
    for i, platform in enumerate(platforms):
        if platform not in SUPPORTED_PLATFORMS:
            issues.add(f"platforms[{i}]", "unsupported_platform", _unsupported(platform))
        elif platform in platforms[:i]:
            issues.add(f"platforms[{i}]", "duplicate_platform", f"{platform} is listed twice")
    issues.raise_if_any()


async def target_accounts(session, principal: Principal, user: ManagedUser, platforms: list[str]) -> list[str]:
    """One account id per platform: the end user's most recently connected active account there."""
    accounts = await connections(session, principal, user)
    issues = Issues()
    chosen = []
    for i, platform in enumerate(platforms):
        on_platform = [a for a in accounts if a.platform == platform]
        active = next((a for a in on_platform if a.status == "active"), None)
        if active is not None:
            chosen.append(active.id)
        elif any(a.status == "reauth_required" for a in on_platform):
            issues.add(f"platforms[{i}]", "platform_reconnect_required",
                       f"End user {user.external_user_id} must reconnect {platform} before posting there")
        else:
            issues.add(f"platforms[{i}]", "platform_not_connected",
                       f"End user {user.external_user_id} has not connected {platform}")
    issues.raise_if_any()
    return chosen


async def require_allowlisted(session, principal: Principal, uri: str) -> None:
    """Redirect URIs are allowlisted per workspace (both modes), and must match exactly."""
    entry = (await session.exec(select(RedirectAllowlistEntry.id).where(
        RedirectAllowlistEntry.workspace_id == principal.workspace_id,
        RedirectAllowlistEntry.uri == uri))).first()
    if entry is None:
        raise ValidationFailed.one("redirectUri", "redirect_uri_not_allowlisted",
                                   "redirectUri is not on this app's redirect allowlist; add it in the dashboard")


@dataclass
class PostFilters:
    external_user_id: str | None = None
    status: str | None = None  # M's vocabulary
    platform: str | None = None
    created_from: datetime | None = None
    created_to: tuple[datetime, bool] | None = None  # (bound, inclusive)
    limit: int = 100


async def find_posts(session, principal: Principal, f: PostFilters) -> list[Post]:
    """Newest first."""
    q = scoped(Post, principal)
    if f.external_user_id is not None:
        q = q.where(Post.external_user_id == f.external_user_id)
    if f.status is not None:
        q = q.where(Post.status == HERALD_POST_STATUS[f.status])
    if f.platform is not None:
        q = q.where(Post.id.in_(select(PostResult.post_id).where(PostResult.platform == f.platform)))
    if f.created_from is not None:
        q = q.where(Post.created_at >= f.created_from)
    if f.created_to is not None:
        bound, inclusive = f.created_to
        q = q.where(Post.created_at <= bound if inclusive else Post.created_at < bound)
    return list((await session.exec(q.order_by(Post.created_at.desc(), Post.id.desc()).limit(f.limit))).all())
