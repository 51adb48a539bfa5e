"""Typed adapter errors.

Adapters never retry: they classify each failure into one of these types and
let Temporal decide. `code` is the stable machine value that ends up as a
result's `error_code`; `message` is for humans and must never contain a token.
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base class. `retryable` tells the activity whether Temporal may retry."""

    code = "platform_error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 handle: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.status = status
        # What the platform had already handed back (e.g. TikTok's publish_id), so the next attempt
        # can follow up on it instead of starting again.
        self.handle = handle

    def __str__(self) -> str:  # pragma: no cover - trivial
        return f"{self.code}: {self.message}"


class TransientError(AdapterError):
    """5xx, timeouts before the request was sent, platform hiccups: safe to retry."""

    code = "platform_unavailable"
    retryable = True


class OutcomeUnknown(TransientError):
    """The request may have reached the platform but no answer came back.

    A create that fails this way must be reconciled before it is retried.
    """

    code = "outcome_unknown"


class RateLimited(TransientError):
    """429 or a platform quota. `retry_after` is seconds, when the platform says."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AuthExpired(AdapterError):
    """The access token expired: refresh it and retry once."""

    code = "auth_expired"


class AuthRevoked(AdapterError):
    """The grant is gone for good: the account needs the user to reconnect."""

    code = "auth_revoked"


class ContentRejected(AdapterError):
    """The platform refused the content itself (too long, policy, bad option)."""

    code = "content_rejected"


class MediaRejected(AdapterError):
    """The platform refused the media (type, size, processing failure)."""

    code = "media_rejected"


class DuplicateContent(ContentRejected):
    """The platform says this exact content was already posted."""

    code = "duplicate_content"


class Unverifiable(AdapterError):
    """Reconcile cannot tell whether an earlier attempt landed."""

    code = "unconfirmed"


ERROR_TYPES: dict[str, type[AdapterError]] = {
    cls.__name__: cls
    for cls in (
        AdapterError,
        TransientError,
        OutcomeUnknown,
        RateLimited,
        AuthExpired,
        AuthRevoked,
        ContentRejected,
        MediaRejected,
        DuplicateContent,
        Unverifiable,
    )
}
