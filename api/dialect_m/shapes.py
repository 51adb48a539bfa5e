"""Dialect M's vocabulary: Herald rows rendered as mypostshare JSON, and Herald's field names in M's words.

Pure functions only (no database, no HTTP), so another dialect is a copy of
this module with other words, plus a thin router over the same services.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from adapters.registry import PLATFORMS
from api.errors import ApiError
from store.models import ConnectSession, ManagedUser, Post, PostResult, SocialAccount

SUPPORTED_PLATFORMS: tuple[str, ...] = PLATFORMS

# Herald post status -> M post status. The mapping is one-to-one, so a filter can go back.
POST_STATUS = {"draft": "draft", "scheduled": "scheduled", "publishing": "processing", "published": "published",
               "partial": "partial", "failed": "failed", "cancelled": "cancelled"}
HERALD_POST_STATUS = {m: h for h, m in POST_STATUS.items()}
# Posts that have not reached any platform yet show no delivery results.
UNDELIVERED = {"draft", "scheduled", "cancelled"}
RESULT_STATUS = {"published": "published", "failed": "failed", "cancelled": "failed"}
CONNECTION_STATUS = {"active": "connected", "reauth_required": "failed", "disconnected": "disconnected"}
SESSION_STATUS = {"pending": "pending", "completed": "connected", "failed": "failed", "expired": "expired",
                  "cancelled": "expired"}


def iso(value: datetime | None) -> str | None:
    """RFC 3339 UTC with milliseconds, as JavaScript's `toISOString()` writes it."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_utc(value: datetime) -> datetime:
    """M documents its timestamps as UTC: one without an offset is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_bound(value: str, *, upper: bool) -> tuple[datetime, bool]:
    """A `dateFrom`/`dateTo` filter: a date or a timestamp. Returns (instant, inclusive).

    A bare date as upper bound covers that whole day. Raises ValueError when unreadable.
    """
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        return (day + timedelta(days=1), False) if upper else (day, True)
    return as_utc(datetime.fromisoformat(text)), True


# --- end users and connections ---


def account_type(account: SocialAccount) -> str:
    data = account.platform_data or {}
    if account.platform == "facebook":
        return "page"
    if account.platform == "linkedin" and str(data.get("author_urn", "")).startswith("urn:li:organization:"):
        return "organization"
    if account.platform == "instagram" and str(data.get("account_type", "")).upper() == "BUSINESS":
        return "business"
    return "person"


def connection_json(account: SocialAccount) -> dict[str, Any]:
    return {"id": account.id, "platform": account.platform,
            "status": CONNECTION_STATUS.get(account.status, "failed"),
            "remoteAccountId": account.external_account_id, "remoteUsername": account.account_name,
            "accountType": account_type(account)}


def end_user_json(user: ManagedUser, accounts: list[SocialAccount] | None = None) -> dict[str, Any]:
    """The end user; with its accounts, also the connection summary of `GET /end-users/{id}`."""
    out: dict[str, Any] = {"id": user.id, "externalUserId": user.external_user_id,
                           "displayName": user.display_name, "email": user.email,
                           "metadata": user.metadata_ or {}, "createdAt": iso(user.created_at),
                           "updatedAt": iso(user.updated_at)}
    if accounts is not None:
        statuses = [connection_json(a)["status"] for a in accounts]
        out["connectionSummary"] = {"total": len(statuses), "connected": statuses.count("connected"),
                                    "failed": statuses.count("failed")}
    return out


# --- connect sessions ---


def session_created_json(row: ConnectSession, connect_url: str) -> dict[str, Any]:
    return {"id": row.id, "status": "pending", "platform": row.platform, "connectUrl": connect_url}


def session_json(row: ConnectSession) -> dict[str, Any]:
    status = SESSION_STATUS.get(row.status, "failed")
    if status == "pending" and row.error_code:  # the last attempt failed; the session still takes a retry
        status = "failed"
    return {"id": row.id, "status": status, "platform": row.platform, "externalUserId": row.external_user_id,
            "errorCode": (row.error_code or row.status) if status == "failed" else None,
            "updatedAt": iso(row.updated_at)}


# --- posts ---


def post_summary_json(post: Post) -> dict[str, Any]:
    return {"id": post.id, "mode": post.mode, "status": POST_STATUS.get(post.status, post.status),
            "externalUserId": post.external_user_id}


def post_json(post: Post, results: list[PostResult]) -> dict[str, Any]:
    out = post_summary_json(post)
    if post.mode == "scheduled":
        out["scheduleAt"] = iso(post.scheduled_at)
    out["platformResults"] = [] if post.status in UNDELIVERED else [
        {"platform": r.platform, "status": RESULT_STATUS.get(r.status, "pending"), "externalId": r.external_id}
        for r in results]
    return out


# --- Herald's validation issues in M's field names ---

FIELD_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^account_ids\[(\d+)\]\.account_id$", r"platforms[\1]"),
    (r"^account_ids", "platforms"),
    (r"^scheduled_at$", "scheduleAt"),
    (r"^caption$", "content"),
    (r"^media_urls(\[\d+\])?$", "mediaUrl"),
    (r"\.caption$", ".content"),
    (r"\.platform_options\.title$", ".title"),
    (r"\.(media_urls(\[\d+\])?|media)$", ".mediaUrl"),
)
MESSAGE_RENAMES = {"scheduled_at": "scheduleAt", "platform_options.title": "title", "account_ids": "platforms"}


def m_field(field: str) -> str:
    for pattern, replacement in FIELD_RENAMES:
        field = re.sub(pattern, replacement, field)
    return field


def m_message(message: str) -> str:
    for herald, m in MESSAGE_RENAMES.items():
        message = message.replace(herald, m)
    return message


def in_m_terms(exc: ApiError) -> ApiError:
    """The same error, naming M's fields: `platforms[0]` rather than `account_ids[0]`."""
    exc.issues = [{**issue, "field": m_field(issue["field"]), "message": m_message(issue["message"])}
                  for issue in exc.issues]
    exc.message = m_message(exc.message)
    return exc
