"""Post requests: the dialect-U shapes, and the validation every dialect goes through.

`plan_post` turns a request into a `PostPlan` (targets with their parts,
first comment and options) or raises a 4xx with every issue it found. No
request reaches a platform when the input is known to be invalid.
"""

from __future__ import annotations

import mimetypes
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, func
from sqlmodel import Session, select

from adapters.base import MediaRef, PartDraft
from adapters.registry import adapter_class
from api.auth import Principal
from api.errors import NotFound, QuotaExceeded, ValidationFailed
from store.models import Media, Post, PostResult, SocialAccount, Workspace
from store.settings import Settings

MAX_TARGETS = 20
# A post's target accounts, in the caller's workspace and mode; built once, not per request.
_ACCOUNTS = select(SocialAccount).where(
    SocialAccount.workspace_id == bindparam("workspace_id"), SocialAccount.livemode == bindparam("livemode"),
    SocialAccount.id.in_(bindparam("ids", expanding=True)))
MAX_MEDIA_URL = 2048


class PlatformPostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(max_length=40)
    caption: str | None = Field(default=None, max_length=100_000)
    media_urls: list[str] = Field(default_factory=list, max_length=35)
    media_ids: list[str] = Field(default_factory=list, max_length=35)
    thread_position: int | None = Field(default=None, ge=0, le=100)
    first_comment: str | None = Field(default=None, max_length=10_000)
    platform_options: dict[str, Any] = Field(default_factory=dict)


class PostFields(BaseModel):
    """Fields a create and an edit share."""

    model_config = ConfigDict(extra="forbid")

    caption: str | None = Field(default=None, max_length=100_000)
    account_ids: list[str] | None = Field(default=None, max_length=100)
    media_urls: list[str] | None = Field(default=None, max_length=35)
    media_ids: list[str] | None = Field(default=None, max_length=35)
    platform_posts: list[PlatformPostIn] | None = Field(default=None, max_length=100)
    scheduled_at: datetime | None = None
    title: str | None = Field(default=None, max_length=300)


class PostCreate(PostFields):
    status: Literal["draft"] | None = Field(default=None, description='"draft" saves without publishing')
    idempotency_key: str | None = Field(default=None, max_length=64)


class PostUpdate(PostFields):
    pass


@dataclass
class TargetPlan:
    account: SocialAccount
    parts: list[dict[str, Any]]
    first_comment: str | None = None
    platform_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PostPlan:
    caption: str | None
    title: str | None
    targets: list[TargetPlan]
    scheduled_at: datetime | None
    request: dict[str, Any]


class Issues:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field_: str, code: str, message: str) -> None:
        self.items.append({"field": field_, "code": code, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            raise ValidationFailed(first["message"], issues=self.items)


def _media_type(url: str) -> str | None:
    return mimetypes.guess_type(url.split("?", 1)[0])[0]


def _check_urls(urls: list[str], prefix: str, issues: Issues) -> None:
    for i, url in enumerate(urls):
        if not url.startswith(("http://", "https://")) or len(url) > MAX_MEDIA_URL or any(c.isspace() for c in url):
            issues.add(f"{prefix}media_urls[{i}]", "invalid_url", "Media URLs must be absolute http(s) URLs")


def check_schedule(scheduled_at: datetime | None, settings: Settings, issues: Issues, now: datetime) -> None:
    if scheduled_at is None:
        return
    if scheduled_at.tzinfo is None:
        issues.add("scheduled_at", "timezone_required", "scheduled_at must be RFC 3339 with a timezone, e.g. ...Z")
        return
    lead = settings.schedule_lead_seconds
    if scheduled_at <= now:
        issues.add("scheduled_at", "in_past", "scheduled_at is in the past")
    elif scheduled_at < now + timedelta(seconds=lead):
        issues.add("scheduled_at", "too_soon", f"scheduled_at must be at least {lead} seconds in the future")


def _entries(body: PostFields, issues: Issues) -> list[tuple[str, PlatformPostIn]]:
    """Both shapes as one list of (field prefix, entry)."""
    if body.platform_posts is not None and body.account_ids is not None:
        issues.add("platform_posts", "mixed_shapes",
                   "Pass either caption + account_ids or platform_posts, not both")
        return []
    if body.platform_posts is None and body.account_ids is None:
        issues.add("account_ids", "required", "Pass account_ids (with caption) or platform_posts")
        return []
    if body.account_ids is not None:
        if not body.account_ids:
            issues.add("account_ids", "required", "account_ids cannot be empty")
        if len(body.account_ids) > MAX_TARGETS:
            issues.add("account_ids", "too_many_targets", f"At most {MAX_TARGETS} accounts per post")
        seen: set[str] = set()
        for i, account_id in enumerate(body.account_ids):
            if account_id in seen:
                issues.add(f"account_ids[{i}]", "duplicate_account", f"{account_id} is listed twice")
            seen.add(account_id)
        _check_urls(body.media_urls or [], "", issues)
        return [(f"account_ids[{i}]", PlatformPostIn(account_id=a, caption=body.caption,
                                                      media_urls=body.media_urls or [],
                                                      media_ids=body.media_ids or []))
                for i, a in enumerate(body.account_ids) if a not in body.account_ids[:i]]
    posts = body.platform_posts or []
    if not posts:
        issues.add("platform_posts", "required", "platform_posts cannot be empty")
    if len(posts) > MAX_TARGETS:
        issues.add("platform_posts", "too_many_targets", f"At most {MAX_TARGETS} platform posts per request")
    out = []
    for i, entry in enumerate(posts):
        _check_urls(entry.media_urls, f"platform_posts[{i}].", issues)
        if entry.caption is None and body.caption is not None:
            entry = entry.model_copy(update={"caption": body.caption})
        out.append((f"platform_posts[{i}]", entry))
    return out


def plan_post(session: Session, principal: Principal, settings: Settings, body: PostFields, *,
              now: datetime | None = None, draft: bool = False) -> PostPlan:
    """Validate everything knowable before publishing; raise 404/422/403 or return the plan.

    Synchronous, so that creating a post can plan and write in one database unit (`api.post_service.create`);
    callers holding an async session run it with `await session.run_sync(plan_post, ...)`."""
    now = now or datetime.now(UTC)
    issues = Issues()
    entries = _entries(body, issues)
    check_schedule(body.scheduled_at, settings, issues, now)
    issues.raise_if_any()

    ids = {e.account_id for _, e in entries}
    accounts = {a.id: a for a in (session.exec(_ACCOUNTS, params={
        "workspace_id": principal.workspace_id, "livemode": principal.livemode, "ids": list(ids)})).all()}
    missing = [e.account_id for _, e in entries if e.account_id not in accounts]
    if missing:
        raise NotFound(f"Account {missing[0]}")

    media_ids = {m for _, e in entries for m in e.media_ids}
    media = {m.id: m for m in (session.exec(select(Media).where(
        Media.workspace_id == principal.workspace_id, Media.livemode == principal.livemode,
        Media.id.in_(media_ids)))).all()} if media_ids else {}

    groups: dict[str, list[tuple[str, PlatformPostIn]]] = defaultdict(list)
    for prefix, entry in entries:
        groups[entry.account_id].append((prefix, entry))

    targets: list[TargetPlan] = []
    for account_id, group in groups.items():
        account = accounts[account_id]
        cls = adapter_class(account.platform)
        caps = cls.capabilities
        first_prefix = group[0][0]
        if account.status == "disconnected":
            issues.add(f"{first_prefix}.account_id", "account_disconnected",
                       f"Account {account_id} is disconnected; reconnect it first")
        positions = [e.thread_position for _, e in group]
        threaded = any(p for p in positions)
        if len(group) > 1 and not threaded:
            issues.add(f"{group[1][0]}.account_id", "duplicate_account",
                       f"{account_id} appears more than once without thread_position")
            continue
        if threaded:
            if not caps.threads:
                issues.add(f"{first_prefix}.thread_position", "threads_unsupported",
                           f"{cls.provider.display_name} does not support threads")
                continue
            if sorted(p or 0 for p in positions) != list(range(1, len(group) + 1)):
                issues.add(f"{first_prefix}.thread_position", "invalid_thread_positions",
                           f"Thread positions for {account_id} must be 1..{len(group)} with no gaps or repeats")
                continue
            group = sorted(group, key=lambda pe: pe[1].thread_position or 0)
        comments = [(p, e.first_comment) for p, e in group if e.first_comment]
        if comments and not caps.first_comment:
            hint = " Use thread_position instead." if caps.threads else ""
            issues.add(f"{comments[0][0]}.first_comment", "first_comment_unsupported",
                       f"{cls.provider.display_name} does not support first_comment.{hint}")
        if len(comments) > 1:
            issues.add(f"{comments[1][0]}.first_comment", "duplicate_first_comment", "One first_comment per thread")
        options = group[0][1].platform_options
        parts = []
        for prefix, entry in group:
            refs = []
            for i, media_id in enumerate(entry.media_ids):
                m = media.get(media_id)
                if m is None:
                    issues.add(f"{prefix}.media_ids[{i}]", "media_not_found", f"Unknown media {media_id}")
                elif m.status == "deleted":
                    issues.add(f"{prefix}.media_ids[{i}]", "media_deleted", f"Media {media_id} was deleted")
                elif m.status != "uploaded":
                    issues.add(f"{prefix}.media_ids[{i}]", "media_not_uploaded",
                               f"Media {media_id} has not been uploaded yet")
                else:
                    refs.append(MediaRef(platform_media_id=m.id, content_type=m.content_type,
                                         data={"size": m.size_bytes}))
                    video = m.content_type in caps.media.video_types
                    limit = caps.media.max_video_bytes if video else caps.media.max_image_bytes
                    if m.size_bytes is not None and limit is not None and m.size_bytes > limit:
                        issues.add(f"{prefix}.media_ids[{i}]", "media_too_large",
                                   f"Media {media_id} is {m.size_bytes} bytes; {cls.provider.display_name} "
                                   f"accepts at most {limit} bytes per {'video' if video else 'image'}")
            typed = [MediaRef(platform_media_id=u, content_type=t) for u in entry.media_urls if (t := _media_type(u))]
            draft_part = PartDraft(text=entry.caption or "", media=refs + typed,
                                   options=entry.platform_options if prefix == group[0][0] else {},
                                   title=body.title)
            adapter = cls.__new__(cls)  # validation needs no client or endpoints
            for issue in adapter.validate(draft_part, field_prefix=prefix, part_count=len(group)):
                issues.add(issue.field, issue.code, issue.message)
            total_media = len(entry.media_urls) + len(entry.media_ids)
            if total_media > caps.media.max_items and not any(x["code"] == "too_many_media" for x in issues.items):
                issues.add(f"{prefix}.media", "too_many_media", f"At most {caps.media.max_items} media items")
            if not entry.caption and not total_media:
                if not any(x["field"] == f"{prefix}.caption" for x in issues.items):
                    issues.add(f"{prefix}.caption", "caption_required", "A post needs a caption or media")
            parts.append({"caption": entry.caption or "", "media_urls": entry.media_urls,
                          "media_ids": entry.media_ids})
        targets.append(TargetPlan(account=account, parts=parts,
                                  first_comment=comments[0][1] if comments else None, platform_options=options))
    issues.raise_if_any()
    if not draft:
        check_quota(session, principal, [t.account for t in targets], now)
    return PostPlan(caption=body.caption, title=body.title, targets=targets, scheduled_at=body.scheduled_at,
                    request=body.model_dump(mode="json", exclude_none=True))


def check_quota(session: Session, principal: Principal, accounts: list[SocialAccount], now: datetime) -> None:
    ws = session.get(Workspace, principal.workspace_id)
    limit = ws.per_account_monthly_limit if ws else None
    if not limit:
        return
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for account in accounts:
        used = (session.exec(select(func.count()).select_from(PostResult).join(Post).where(
            PostResult.social_account_id == account.id, Post.created_at >= month_start,
            Post.status.not_in(("draft", "cancelled"))))).one()
        if used >= limit:
            raise QuotaExceeded(f"Account {account.id} reached its monthly limit of {limit} posts",
                                issues=[{"field": "account_ids", "code": "quota_exceeded",
                                         "message": f"{account.id}: {used} of {limit} posts this month"}])
