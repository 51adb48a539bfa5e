"""What Instagram, Threads and Facebook Pages share: Meta's Graph API conventions.

All three answer errors with the same envelope
`{"error": {"message", "type", "code", "error_subcode", "is_transient", "error_user_msg", ...}}`,
report rate-limit usage in `X-Business-Use-Case-Usage` / `X-App-Usage`, take
parameters as form fields, and exchange a short-lived user token for a
long-lived one instead of issuing refresh tokens. This module holds that once:
the request helper with its error classification, the long-lived token
exchange, polling delays, and the JSON form of drafts carried in Pending handles.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any, ClassVar

import httpx

from adapters.base import AccountAuth, MediaRef, PartDraft, Pending, PostRef, Prepared, TokenSet
from adapters.catalogue import Endpoints
from adapters.errors import (
    AdapterError,
    AuthExpired,
    AuthRevoked,
    ContentRejected,
    DuplicateContent,
    MediaRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    Unverifiable,
)
from adapters.listing import Page, find_since
from adapters.oauth import OAuth2Mixin

# Application, user, Page and Instagram (BUC) throttling.
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001, 80002, 80004, 80006}
PUBLISHING_CAP_SUBCODES = {2207042}
TRANSIENT_CODES = {1, 2, -1, -2}
# Media download timeouts and server-side media errors that a new attempt may get past.
TRANSIENT_SUBCODES = {2207001, 2207003, 2207032, 2207053, 1363047, 1609010}
# The container (Instagram) or post (Threads) is not resolvable yet: publish again shortly.
NOT_READY_SUBCODES = {2207027, 4279009}
MEDIA_CODES = {36000, 36001, 36003, 324}
MEDIA_SUBCODES = {2207004, 2207009, 2207026, 2207052, 2207020, 1366046, 2069019, 4279004}
PERMISSION_CODES = {10, 3, *range(200, 300)}
# Being blocked for spam or policy lasts hours, not seconds.
BLOCKED_RETRY_AFTER = 6 * 3600.0
# The publishing cap is a rolling 24-h window: the oldest post may leave it any time.
PUBLISHING_CAP_RETRY_AFTER = 3600.0
# Graph gives no processing estimate: poll soon, then back off.
POLL_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)


def next_delay(handle: dict[str, Any]) -> float:
    polls = int(handle.get("polls", 0))
    handle["polls"] = polls + 1
    return POLL_DELAYS[min(polls, len(POLL_DELAYS) - 1)]


def buc_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from `estimated_time_to_regain_access` (minutes) in the usage headers."""
    minutes: list[float] = []
    for name in ("x-business-use-case-usage", "x-app-usage", "x-page-usage"):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except ValueError:
            continue
        entries: list[Any] = []
        if isinstance(usage, dict) and "call_count" not in usage:
            for value in usage.values():
                entries.extend(value if isinstance(value, list) else [value])
        else:
            entries.append(usage)
        for entry in entries:
            if isinstance(entry, dict) and entry.get("estimated_time_to_regain_access"):
                minutes.append(float(entry["estimated_time_to_regain_access"]))
    return max(minutes) * 60 if minutes else None


def classify(platform: str, resp: httpx.Response) -> AdapterError:
    """Map one failed Graph response onto the typed errors."""
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        if status == 429:
            return RateLimited(
                f"{platform} rate limited", retry_after=buc_retry_after(resp.headers), status=429
            )
        if status >= 500:
            return TransientError(f"{platform} answered {status}", status=status)
        if status in (401, 403):
            return AuthRevoked(f"{platform} refused the credentials ({status})", status=status)
        return ContentRejected(f"{platform} refused the request ({status})", status=status)
    return classify_error(platform, status, err, resp.headers)


def classify_error(platform: str, status: int, err: dict[str, Any], headers: httpx.Headers) -> AdapterError:
    code = _int(err.get("code"))
    sub = _int(err.get("error_subcode"))
    detail = err.get("error_user_msg") or err.get("message") or "error"
    message = f"{platform} error {code}" + (f"/{sub}" if sub else "") + f": {detail}"
    if code == 190:
        if sub == 463:
            return AuthExpired(message, status=status)
        return AuthRevoked(message, status=status)
    if code in (102, 104, 2500):
        return AuthRevoked(message, status=status)
    if code in PERMISSION_CODES:
        return AuthRevoked(message, code="permission_missing", status=status)
    if sub in PUBLISHING_CAP_SUBCODES:
        return RateLimited(
            message, retry_after=PUBLISHING_CAP_RETRY_AFTER, code="publishing_cap", status=status
        )
    if code in RATE_LIMIT_CODES:
        return RateLimited(message, retry_after=buc_retry_after(headers), status=status)
    if code == 368 or sub == 1390008:
        return RateLimited(
            message, retry_after=BLOCKED_RETRY_AFTER, code="temporarily_blocked", status=status
        )
    if code == 506:
        return DuplicateContent(message, status=status)
    if sub in NOT_READY_SUBCODES:
        return TransientError(message, code="not_ready", status=status)
    if sub == 2207020:
        return MediaRejected(message, code="container_expired", status=status)
    if code in MEDIA_CODES or sub in MEDIA_SUBCODES:
        return MediaRejected(message, status=status)
    if err.get("is_transient") or code in TRANSIENT_CODES or sub in TRANSIENT_SUBCODES or status >= 500:
        return TransientError(message, status=status)
    return ContentRejected(message, status=status)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def graph_request(
    http: httpx.AsyncClient,
    platform: str,
    method: str,
    url: str,
    *,
    token: str | None,
    params: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    creates: bool = False,
) -> dict[str, Any]:
    """One Graph call. `creates` marks a call whose lost answer may hide a created object."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        resp = await http.request(method, url, params=params, data=data, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransientError(f"{platform} unreachable: {type(exc).__name__}") from None
    except httpx.TransportError as exc:
        if creates:
            raise OutcomeUnknown(
                f"{platform} connection lost after the request was sent: {type(exc).__name__}"
            ) from None
        raise TransientError(f"{platform} connection failed: {type(exc).__name__}") from None
    if resp.status_code >= 400:
        raise classify(platform, resp)
    try:
        body = resp.json()
    except ValueError:
        raise TransientError(f"{platform} returned a body that is not JSON") from None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        raise classify_error(platform, resp.status_code, body["error"], resp.headers)
    if not isinstance(body, dict):
        raise TransientError(f"{platform} returned an unexpected body")
    return body


def graph_timestamp(value: str | None) -> float | None:
    """Graph timestamps look like 2026-05-01T12:00:00+0000."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def graph_pages(
    api: Callable[..., Awaitable[dict[str, Any]]], token: str, path: str, params: dict[str, Any]
) -> Callable[[str | None], Awaitable[Page]]:
    """A Graph edge read page by page for `find_since`: `after` cursors; no `paging.next` ends it."""

    async def fetch(after: str | None) -> Page:
        body = await api(token, "GET", path, params={**params, "after": after} if after else params)
        items = body.get("data") or []
        paging = body.get("paging") or {}
        if not paging.get("next"):
            return items, None
        cursor = (paging.get("cursors") or {}).get("after")
        # Graph may answer an empty page that still has a next one (privacy filtering): find_since reads on.
        # A next page without a cursor cannot be reached, and must not read as "not there".
        if not cursor:
            raise Unverifiable(f"Graph answered a page of {path} that cannot be read past")
        return items, cursor

    return fetch


async def find_posted(
    api: Callable[..., Awaitable[dict[str, Any]]],
    token: str,
    path: str,
    params: dict[str, Any],
    *,
    match: Callable[[dict[str, Any]], bool],
    key: str,
    since: float,
    newest_first: bool,
    what: str,
) -> dict[str, Any] | None:
    """`find_since` over the Graph edge `path`, whose items carry their creation time in `key`."""
    return await find_since(
        graph_pages(api, token, path, params),
        match=match,
        created=lambda item: graph_timestamp(item.get(key)),
        # Graph timestamps have whole seconds.
        since=int(since) - 1,
        newest_first=newest_first,
        what=what,
    )


def draft_to_json(draft: PartDraft) -> dict[str, Any]:
    return asdict(draft)


def draft_from_json(data: dict[str, Any]) -> PartDraft:
    data = dict(data)
    data["media"] = [MediaRef(**m) for m in data.get("media") or []]
    data["reply_to"] = PostRef(**data["reply_to"]) if data.get("reply_to") else None
    return PartDraft(**data)


class GraphTokenMixin(OAuth2Mixin):
    """Token calls answered by a Graph host (long-lived exchanges, refresh_access_token)."""

    async def token_get(self, url: str | None, params: dict[str, str]) -> dict[str, Any]:
        """A GET token call: any refusal of the token means the user must log in again."""
        try:
            return await graph_request(self.http, self.platform, "GET", url, token=None, params=params)
        except (AuthExpired, AuthRevoked, ContentRejected) as exc:
            raise AuthRevoked(
                f"token refused, the user must reconnect ({exc.message})",
                code="reauth_required",
                status=exc.status,
            ) from None

    def token_set(self, data: dict[str, Any]) -> TokenSet:
        tokens = super().token_set(data)
        permissions = tokens.extra.pop("permissions", None)
        if isinstance(permissions, str) and not tokens.scope:
            tokens.scope = permissions
        if "user_id" in tokens.extra:
            tokens.extra["user_id"] = str(tokens.extra["user_id"])
        return tokens


class LongLivedTokenMixin(GraphTokenMixin):
    """Instagram and Threads: code → 1-h token → 60-day token, extended by `refresh_access_token`.

    There is no refresh token; the long-lived access token itself is refreshed
    while it is still valid. An expired or revoked one needs a new login.
    """

    exchange_grant: ClassVar[str]
    refresh_grant: ClassVar[str]

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet:
        short = await super().exchange_code(code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
        data = await self.token_get(
            self.endpoints.url("long_lived_token"),
            {
                "grant_type": self.exchange_grant,
                "client_secret": self.client.client_secret or "",
                "access_token": short.access_token,
            },
        )
        long = self.token_set(data)
        long.extra = {**short.extra, **long.extra}
        return long

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        data = await self.token_get(
            self.endpoints.refresh_url,
            {"grant_type": self.refresh_grant, "access_token": tokens.access_token},
        )
        fresh = self.token_set(data)
        fresh.extra = {**tokens.extra, **fresh.extra}
        return fresh


class ContainerPublishing:
    """Instagram and Threads publish in two steps: stage a container, then publish it.

    `prepare` creates the container (for a carousel, first one child container
    per item) and returns Pending; `poll_prepared` reads the container status
    until FINISHED, creating the carousel parent once every child is FINISHED;
    `publish` calls the `*_publish` edge with `creation_id`.
    """

    platform: ClassVar[str]
    create_edge: ClassVar[str]
    publish_edge: ClassVar[str]
    status_fields: ClassVar[str]
    http: httpx.AsyncClient
    endpoints: Endpoints

    # --- platform specifics ---

    def item_params(self, media: MediaRef, *, carousel: bool) -> dict[str, str]:
        raise NotImplementedError

    def post_params(self, draft: PartDraft) -> dict[str, str]:
        """Caption, options and reply target of the (parent) container."""
        raise NotImplementedError

    def container_state(self, body: dict[str, Any]) -> tuple[str, str | None]:
        """(status, error detail) from a container read with `status_fields`."""
        raise NotImplementedError

    # --- mechanics ---

    async def api(
        self,
        token: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        creates: bool = False,
    ) -> dict[str, Any]:
        return await graph_request(
            self.http,
            self.platform,
            method,
            f"{self.endpoints.api_base}/{path}",
            token=token,
            params=params,
            data=data,
            creates=creates,
        )

    async def _create(self, auth: AccountAuth, data: dict[str, str]) -> str:
        # An orphan container is harmless (it expires unpublished), so a lost answer is only transient.
        body = await self.api(
            auth.tokens.access_token, "POST", f"{auth.external_id}/{self.create_edge}", data=data
        )
        return str(body["id"])

    async def prepare(self, auth: AccountAuth, draft: PartDraft) -> Pending:
        handle: dict[str, Any] = {"draft": draft_to_json(draft)}
        if len(draft.media) > 1:
            handle["children"] = [
                await self._create(auth, self.item_params(m, carousel=True)) for m in draft.media
            ]
        else:
            data = self.post_params(draft)
            if draft.media:
                data.update(self.item_params(draft.media[0], carousel=False))
            handle["container_id"] = await self._create(auth, data)
        return Pending(check_after=next_delay(handle), handle=handle)

    async def poll_prepared(self, auth: AccountAuth, handle: dict[str, Any]) -> Prepared | Pending:
        handle = dict(handle)
        draft = draft_from_json(handle["draft"])
        if "container_id" not in handle:
            for child in handle["children"]:
                if await self._ready(auth, child) is False:
                    return Pending(check_after=next_delay(handle), handle=handle)
            data = {
                **self.post_params(draft),
                "media_type": "CAROUSEL",
                "children": ",".join(handle["children"]),
            }
            handle["container_id"] = await self._create(auth, data)
            handle["polls"] = 0
            return Pending(check_after=next_delay(handle), handle=handle)
        if await self._ready(auth, handle["container_id"]) is False:
            return Pending(check_after=next_delay(handle), handle=handle)
        return Prepared(draft=draft, handle={"container_id": handle["container_id"]})

    async def _ready(self, auth: AccountAuth, container_id: str) -> bool:
        """True when FINISHED, False while IN_PROGRESS; raises for ERROR and EXPIRED."""
        status, detail = await self.container_status(auth, container_id)
        if status == "ERROR":
            raise MediaRejected(f"{self.platform} could not process the media: {detail or 'unknown error'}")
        if status == "EXPIRED":
            raise MediaRejected(
                f"{self.platform} container {container_id} expired before it was published",
                code="container_expired",
            )
        return status in ("FINISHED", "PUBLISHED")

    async def container_status(self, auth: AccountAuth, container_id: str) -> tuple[str, str | None]:
        body = await self.api(
            auth.tokens.access_token, "GET", container_id, params={"fields": self.status_fields}
        )
        return self.container_state(body)

    async def publish(self, auth: AccountAuth, prepared: Prepared) -> PostRef:
        container_id = prepared.handle.get("container_id")
        if not container_id:
            raise AdapterError(
                f"{self.platform} publishes a prepared container: call prepare() first", code="not_prepared"
            )
        body = await self.api(
            auth.tokens.access_token,
            "POST",
            f"{auth.external_id}/{self.publish_edge}",
            data={"creation_id": container_id},
            creates=True,
        )
        media_id = str(body["id"])
        return PostRef(
            external_id=media_id,
            url=await self.permalink(auth, media_id),
            data={"container_id": container_id},
        )

    async def permalink(self, auth: AccountAuth, media_id: str) -> str | None:
        # The post exists whatever happens here: a missing link must not turn success into failure.
        try:
            body = await self.api(auth.tokens.access_token, "GET", media_id, params={"fields": "permalink"})
        except AdapterError:
            return None
        return body.get("permalink")

    async def reconcile_prepared(
        self, auth: AccountAuth, prepared: Prepared, *, since: float
    ) -> PostRef | None:
        """Reconcile with the container in hand: only a PUBLISHED container can have made a post."""
        container_id = prepared.handle.get("container_id")
        if not container_id:
            return await self.reconcile(auth, prepared.draft, since=since)
        status, _ = await self.container_status(auth, container_id)
        if status != "PUBLISHED":
            return None
        found = await self.reconcile(auth, prepared.draft, since=since)
        if found is None:
            raise Unverifiable(
                f"{self.platform} container {container_id} is published but its post was not "
                "found among the account's recent posts"
            )
        found.data.setdefault("container_id", container_id)
        return found

    async def reconcile(self, auth: AccountAuth, draft: PartDraft, *, since: float) -> PostRef | None:
        raise NotImplementedError
