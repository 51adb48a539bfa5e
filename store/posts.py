"""Posts and their per-account results: rows written from a validated plan, and edits to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Post, PostResult, PublishAttempt, utcnow


def targets_json(targets) -> list[dict[str, Any]]:
    """A plan's targets as plain JSON (they travel through a workflow update for edits)."""
    return [{"account_id": t.account.id, "platform": t.account.platform, "account_name": t.account.account_name,
             "parts": t.parts, "first_comment": t.first_comment, "platform_options": t.platform_options}
            for t in targets]


def _results(post: Post, targets: list[dict[str, Any]]) -> list[PostResult]:
    return [PostResult(post_id=post.id, social_account_id=t["account_id"], platform=t["platform"],
                       account_name=t["account_name"], parts=t["parts"], first_comment=t["first_comment"],
                       platform_options=t["platform_options"]) for t in targets]


def create_post(session: Session, *, workspace_id: str, livemode: bool, status: str, mode: str,
                caption: str | None, title: str | None, scheduled_at: datetime | None,
                targets: list[dict[str, Any]], request: dict[str, Any], idempotency_key: str | None,
                dialect: str = "u", external_user_id: str | None = None,
                metadata: dict | None = None) -> tuple[Post, list[PostResult]]:
    """Synchronous (see `api.post_service.create`); an async session runs it with `run_sync`."""
    post = Post(workspace_id=workspace_id, livemode=livemode, status=status, mode=mode, caption=caption,
                title=title, scheduled_at=scheduled_at, request=request, idempotency_key=idempotency_key,
                dialect=dialect, external_user_id=external_user_id, metadata_=metadata or {})
    results = _results(post, targets)  # the post's id is made with it, not by the database
    session.add(post)
    session.add_all(results)
    session.flush()
    return post, results


async def apply_changes(session: AsyncSession, post: Post, changes: dict[str, Any]) -> None:
    """Apply a validated edit: fields, schedule and (when given) a new set of targets."""
    for name in ("caption", "title"):
        if name in changes:
            setattr(post, name, changes[name])
    if changes.get("scheduled_at"):
        post.scheduled_at = datetime.fromisoformat(changes["scheduled_at"])
    if "request" in changes:
        post.request = changes["request"]
    if "targets" in changes:
        old = (await session.exec(select(PostResult.id).where(PostResult.post_id == post.id))).all()
        if old:
            await session.execute(delete(PublishAttempt).where(PublishAttempt.result_id.in_(old)))
            await session.execute(delete(PostResult).where(PostResult.post_id == post.id))
        session.add_all(_results(post, changes["targets"]))
    post.updated_at = utcnow()
    session.add(post)
    await session.flush()


def results_query(post_ids: list[str]):
    # populate_existing: results a session already holds (say, the ones it created) are read afresh, since
    # the workflow changes them in another process.
    return (select(PostResult).where(PostResult.post_id.in_(post_ids)).order_by(PostResult.created_at, PostResult.id)
            .execution_options(populate_existing=True))


async def results_of(session: AsyncSession, post_ids: list[str]) -> dict[str, list[PostResult]]:
    out: dict[str, list[PostResult]] = {pid: [] for pid in post_ids}
    if not post_ids:
        return out
    rows = (await session.exec(results_query(post_ids))).all()
    for r in rows:
        out[r.post_id].append(r)
    return out


async def delete_post(session: AsyncSession, post: Post) -> None:
    ids = (await session.exec(select(PostResult.id).where(PostResult.post_id == post.id))).all()
    if ids:
        await session.execute(delete(PublishAttempt).where(PublishAttempt.result_id.in_(ids)))
        await session.execute(delete(PostResult).where(PostResult.post_id == post.id))
    await session.delete(post)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def result_json(r: PostResult) -> dict[str, Any]:
    return {"id": r.id, "social_account_id": r.social_account_id, "platform": r.platform,
            "account_name": r.account_name, "status": r.status, "external_id": r.external_id, "url": r.url,
            "error_code": r.error_code, "error_message": r.error_message, "attempts": r.attempts,
            "published_at": _iso(r.published_at)}


def post_json(post: Post, results: list[PostResult]) -> dict[str, Any]:
    return {"id": post.id, "object": "post", "caption": post.caption, "title": post.title, "status": post.status,
            "scheduled_at": _iso(post.scheduled_at), "created_at": _iso(post.created_at),
            "published_at": _iso(post.published_at), "livemode": post.livemode,
            "idempotency_key": post.idempotency_key, "results": [result_json(r) for r in results]}
