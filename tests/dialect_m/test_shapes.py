"""Dialect M's vocabulary as pure functions: the mappings no HTTP flow reaches cheaply."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.dialect_m import shapes
from api.errors import ValidationFailed
from store.models import ConnectSession, Post, PostResult, SocialAccount

T = datetime(2026, 3, 21, 6, 58, 48, 753000, tzinfo=UTC)


def session_row(status: str, error_code: str | None = None) -> ConnectSession:
    return ConnectSession(id="cs_1", workspace_id="ws", livemode=False, profile_id="p", platform="linkedin",
                          external_user_id="user_123", status=status, error_code=error_code, updated_at=T,
                          expires_at=T)


@pytest.mark.parametrize(("status", "error_code", "expected"), [
    ("pending", None, ("pending", None)),
    ("pending", "access_denied", ("failed", "access_denied")),
    ("completed", None, ("connected", None)),
    ("cancelled", None, ("expired", None)),
    ("expired", None, ("expired", None)),
    ("failed", "token_exchange_failed", ("failed", "token_exchange_failed")),
])
def test_connect_session_status(status, error_code, expected):
    """Herald's session states in M's four: completed → connected, cancelled → expired, and a pending
    session whose last attempt failed reads failed with that error code."""
    out = shapes.session_json(session_row(status, error_code))
    assert (out["status"], out["errorCode"]) == expected
    assert out["updatedAt"] == "2026-03-21T06:58:48.753Z"


@pytest.mark.parametrize(("platform", "status", "data", "expected"), [
    ("facebook", "active", {}, ("connected", "page")),
    ("linkedin", "active", {"author_urn": "urn:li:person:abc"}, ("connected", "person")),
    ("linkedin", "active", {"author_urn": "urn:li:organization:42"}, ("connected", "organization")),
    ("instagram", "reauth_required", {"account_type": "BUSINESS"}, ("failed", "business")),
    ("twitter", "disconnected", {}, ("disconnected", "person")),
])
def test_connection_status_and_account_type(platform, status, data, expected):
    account = SocialAccount(id="sa_1", workspace_id="ws", livemode=False, profile_id="p", platform=platform,
                            external_account_id="H8a9UFibz4", account_name="ALEX_MORGAN", status=status,
                            platform_data=data)
    out = shapes.connection_json(account)
    assert (out["status"], out["accountType"]) == expected
    assert out["remoteAccountId"] == "H8a9UFibz4" and out["remoteUsername"] == "ALEX_MORGAN"


def test_post_status_and_results():
    """publishing reads processing; a scheduled post shows no results; unknown outcomes read pending."""
    post = Post(id="post_1", workspace_id="ws", livemode=False, status="publishing", mode="immediate",
                external_user_id="user_123")
    results = [PostResult(post_id="post_1", social_account_id="a", platform="linkedin", status="published",
                          external_id="urn:li:share:1"),
               PostResult(post_id="post_1", social_account_id="b", platform="twitter", status="unconfirmed"),
               PostResult(post_id="post_1", social_account_id="c", platform="youtube", status="cancelled")]
    assert shapes.post_json(post, results) == {
        "id": "post_1", "mode": "immediate", "status": "processing", "externalUserId": "user_123",
        "platformResults": [{"platform": "linkedin", "status": "published", "externalId": "urn:li:share:1"},
                            {"platform": "twitter", "status": "pending", "externalId": None},
                            {"platform": "youtube", "status": "failed", "externalId": None}]}
    post.status, post.mode, post.scheduled_at = "scheduled", "scheduled", T
    assert shapes.post_json(post, results)["platformResults"] == []
    assert shapes.post_json(post, results)["scheduleAt"] == "2026-03-21T06:58:48.753Z"
    kept = ("partial", "failed", "published")
    assert [shapes.POST_STATUS[s] for s in kept] == list(kept)


def test_herald_issue_fields_in_m_terms():
    exc = shapes.in_m_terms(ValidationFailed("scheduled_at is in the past", issues=[
        {"field": f, "code": "c", "message": "scheduled_at is in the past"} for f in (
            "scheduled_at", "account_ids[1].account_id", "account_ids[0].caption", "account_ids[2].media",
            "account_ids[0].platform_options.title", "media_urls[0]", "account_ids")]))
    assert [i["field"] for i in exc.issues] == ["scheduleAt", "platforms[1]", "platforms[0].content",
                                                "platforms[2].mediaUrl", "platforms[0].title", "mediaUrl",
                                                "platforms"]
    assert exc.message == "scheduleAt is in the past"


def test_date_bounds():
    """A bare dateTo covers its whole day; timestamps without an offset are UTC."""
    assert shapes.parse_bound("2026-03-21", upper=True) == (datetime(2026, 3, 22, tzinfo=UTC), False)
    assert shapes.parse_bound("2026-03-21", upper=False) == (datetime(2026, 3, 21, tzinfo=UTC), True)
    assert shapes.parse_bound("2026-03-21T08:00:00", upper=True) == (datetime(2026, 3, 21, 8, tzinfo=UTC), True)
    assert shapes.parse_bound("2026-03-21T10:00:00+02:00", upper=False)[0] == T.replace(
        hour=8, minute=0, second=0, microsecond=0)
    with pytest.raises(ValueError):
        shapes.parse_bound("yesterday", upper=False)
    assert shapes.as_utc(datetime(2026, 3, 21)) == datetime(2026, 3, 21, tzinfo=UTC)
