"""Generic OAuth 2.0 authorization-code flow, driven by a ProviderEntry.

authlib builds the PKCE challenge, the authorization URI and the token
request body; the request itself goes through the adapter's shared httpx
client. Platforms whose flow departs from the standard (long-lived token
exchanges, Page tokens) override single methods in their own module.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from typing import Any

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from adapters.base import TokenSet
from adapters.errors import AdapterError, AuthRevoked, OutcomeUnknown, RateLimited, TransientError

# OAuth error codes that mean the grant will never work again.
PERMANENT_GRANT_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"}
# Meta's Graph API answers throttling on token endpoints as 400 with these codes.
GRAPH_RATE_LIMIT_CODES = {4, 17, 32, 613}


# Query parameters whose values are credentials (client_secret, access_token, fb_exchange_token, code, sig...).
CREDENTIAL_PARAM = re.compile(r"token|secret|code|password|sig|key|auth|credential", re.IGNORECASE)


def redacted_url(url: httpx.URL) -> httpx.URL:
    """The URL with the values of credential-like query parameters replaced."""
    if not url.query:
        return url
    params = [(k, "REDACTED" if CREDENTIAL_PARAM.search(k) else v) for k, v in url.params.multi_items()]
    return url.copy_with(params=params)


class RedactCredentialsInUrls(logging.Filter):
    """httpx logs every request's full URL at INFO. Some platform contracts put credentials in the query
    string (Graph's token exchanges take client_secret and the token to exchange), so those values are
    redacted before any handler sees the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(redacted_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(RedactCredentialsInUrls())


def code_challenge(verifier: str, method: str) -> str:
    return create_s256_code_challenge(verifier) if method == "S256" else verifier


class OAuth2Mixin:
    """Implements the OAuth half of PlatformAdapter from `self.provider` and `self.endpoints`."""

    def authorization_url(self, *, redirect_uri: str, state: str, code_verifier: str | None) -> str:
        entry = self.provider
        params: dict[str, str] = {
            "response_type": "code",
            entry.client_id_param: self.client.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
        if entry.scopes:
            params["scope"] = entry.scope_separator.join(entry.scopes)
        if entry.pkce and code_verifier:
            params["code_challenge"] = code_challenge(code_verifier, entry.pkce)
            params["code_challenge_method"] = entry.pkce
        params.update(entry.authorize_params)
        return add_params_to_uri(self.endpoints.authorize_url, list(params.items()))

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet:
        body = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if self.provider.pkce and code_verifier:
            body["code_verifier"] = code_verifier
        data = await self.token_request(self.endpoints.token_url, body)
        return self.token_set(data)

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise AuthRevoked("No refresh token: the user must reconnect", code="reauth_required")
        data = await self.token_request(
            self.endpoints.refresh_url,
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
        )
        fresh = self.token_set(data)
        # Platforms that do not rotate omit the refresh token: keep the one we have.
        if not fresh.refresh_token:
            fresh.refresh_token = tokens.refresh_token
            fresh.refresh_expires_at = tokens.refresh_expires_at
        fresh.extra = {**tokens.extra, **fresh.extra}
        return fresh

    async def revoke(self, tokens: TokenSet) -> None:
        if not self.endpoints.revoke_url:
            return
        await self.token_request(
            self.endpoints.revoke_url,
            {"token": tokens.refresh_token or tokens.access_token},
            expect_json=False,
        )

    # --- mechanics ---

    async def token_request(
        self, url: str | None, body: dict[str, str], *, expect_json: bool = True
    ) -> dict[str, Any]:
        entry = self.provider
        headers = {"Accept": "application/json"}
        body = dict(body)
        if entry.token_auth_method == "client_secret_basic":
            raw = f"{self.client.client_id}:{self.client.client_secret or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        else:
            body[entry.client_id_param] = self.client.client_id
            if entry.token_auth_method == "client_secret_post" and self.client.client_secret:
                body["client_secret"] = self.client.client_secret
        try:
            if entry.token_http_method == "GET" or entry.token_body == "query":
                resp = await self.http.request(entry.token_http_method, url, params=body, headers=headers)
            elif entry.token_body == "json":
                resp = await self.http.post(url, json=body, headers=headers)
            else:
                resp = await self.http.post(url, data=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise OutcomeUnknown(f"token endpoint timed out: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise TransientError(f"token endpoint unreachable: {type(exc).__name__}") from None
        return self.parse_token_response(resp, expect_json=expect_json)

    def parse_token_response(self, resp: httpx.Response, *, expect_json: bool = True) -> dict[str, Any]:
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            data = {}
        if resp.status_code == 429:
            raise RateLimited("token endpoint rate limited", retry_after=_retry_after(resp), status=429)
        if resp.status_code >= 500:
            raise TransientError(f"token endpoint answered {resp.status_code}", status=resp.status_code)
        if resp.status_code >= 400 or (isinstance(data, dict) and data.get("error") and not data.get("access_token")):
            err = data.get("error") if isinstance(data, dict) else None
            if isinstance(err, dict):  # Graph and TikTok nest the error object
                if err.get("code") in GRAPH_RATE_LIMIT_CODES:
                    raise RateLimited("token endpoint rate limited", status=resp.status_code)
                err = err.get("code") or err.get("type")
            err = str(err or f"http_{resp.status_code}")
            desc = data.get("error_description") if isinstance(data, dict) else None
            message = f"token endpoint refused: {err}" + (f" ({desc})" if desc else "")
            if err in PERMANENT_GRANT_ERRORS or resp.status_code in (400, 401):
                raise AuthRevoked(message, code="reauth_required", status=resp.status_code)
            raise AdapterError(message, code="oauth_error", status=resp.status_code)
        if expect_json and not isinstance(data, dict):
            raise TransientError("token endpoint returned no JSON object")
        return data if isinstance(data, dict) else {}

    def token_set(self, data: dict[str, Any]) -> TokenSet:
        if "access_token" not in data:
            raise AdapterError("token response has no access_token", code="oauth_error")
        now = time.time()
        expires_in = data.get("expires_in")
        refresh_in = data.get("refresh_expires_in") or data.get("refresh_token_expires_in")
        known = {"access_token", "refresh_token", "expires_in", "refresh_expires_in",
                 "refresh_token_expires_in", "scope", "token_type"}
        return TokenSet(
            access_token=str(data["access_token"]),
            refresh_token=data.get("refresh_token"),
            expires_at=now + float(expires_in) if expires_in else None,
            refresh_expires_at=now + float(refresh_in) if refresh_in else None,
            scope=data.get("scope") if isinstance(data.get("scope"), str) else None,
            extra={k: v for k, v in data.items() if k not in known},
        )


def _retry_after(resp: httpx.Response) -> float | None:
    """Retry-After in seconds, else X's `x-rate-limit-reset` (epoch seconds)."""
    try:
        if (value := resp.headers.get("retry-after")) is not None:
            return float(value)
        if (reset := resp.headers.get("x-rate-limit-reset")) is not None:
            return max(0.0, float(reset) - time.time())
    except ValueError:
        return None
    return None
