"""OAuth mechanics and endpoints as data: one ProviderEntry per platform.

Each platform module declares its entry; `adapters.registry` collects them.
`resolve_endpoints` applies, in order: the entry's real URLs, the test-mode
rewrite onto the built-in sandbox, and the operator's overrides from settings
(so a platform can be pointed at a proxy, a sandbox or a self-hosted server,
such as a Bluesky PDS other than bsky.social).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

AuthKind = Literal["oauth2", "app_password"]
TokenAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
BodyFormat = Literal["form", "json", "query"]

URL_FIELDS = ("authorize_url", "token_url", "refresh_url", "revoke_url", "api_base")


@dataclass(frozen=True)
class ProviderEntry:
    platform: str
    display_name: str
    auth_kind: AuthKind
    api_base: str
    authorize_url: str | None = None
    token_url: str | None = None
    refresh_url: str | None = None  # defaults to token_url
    revoke_url: str | None = None
    # Other hosts the adapter calls (upload hosts, userinfo, long-lived exchange...), by name.
    extra_urls: dict[str, str] = field(default_factory=dict)
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    pkce: Literal["S256", "plain"] | None = None
    token_auth_method: TokenAuthMethod = "client_secret_post"
    token_body: BodyFormat = "form"
    token_http_method: Literal["POST", "GET"] = "POST"
    client_id_param: str = "client_id"  # TikTok calls it client_key
    authorize_params: dict[str, str] = field(default_factory=dict)
    # True when each refresh returns a new refresh token that replaces the old one.
    refresh_rotates: bool = False
    # False where the platform has no refresh token (the access token itself is extended).
    has_refresh_token: bool = True

    def __post_init__(self) -> None:
        if self.auth_kind == "oauth2" and not (self.authorize_url and self.token_url):
            raise ValueError(f"{self.platform}: an oauth2 entry needs authorize_url and token_url")


@dataclass(frozen=True)
class Endpoints:
    """The URLs one adapter instance talks to, after sandbox rewrite and overrides."""

    platform: str
    api_base: str
    authorize_url: str | None
    token_url: str | None
    refresh_url: str | None
    revoke_url: str | None
    extra: dict[str, str]
    sandbox: bool

    def url(self, name: str) -> str:
        return self.extra[name]


def _rebase(url: str | None, base: str) -> str | None:
    """Swap scheme and host for `base`, keeping the platform's own path."""
    if url is None:
        return None
    parts = urlsplit(url)
    rebased = base.rstrip("/") + parts.path
    return rebased + (f"?{parts.query}" if parts.query else "")


def resolve_endpoints(
    entry: ProviderEntry,
    *,
    sandbox_base: str | None,
    overrides: dict[str, str] | None = None,
) -> Endpoints:
    """Endpoints for live use (`sandbox_base=None`) or test mode (`/sandbox/<platform>` on Herald)."""
    urls = {name: getattr(entry, name) for name in URL_FIELDS}
    refresh_is_token = urls["refresh_url"] is None
    extra = dict(entry.extra_urls)
    if sandbox_base is not None:
        base = f"{sandbox_base.rstrip('/')}/{entry.platform}"
        urls = {k: _rebase(v, base) for k, v in urls.items()}
        extra = {k: _rebase(v, base) or v for k, v in extra.items()}
    for key, value in (overrides or {}).items():
        if key in urls:
            urls[key] = value
        else:
            extra[key] = value
    if refresh_is_token and not (overrides or {}).get("refresh_url"):
        # Refreshes follow the token endpoint, wherever an override moved it.
        urls["refresh_url"] = urls["token_url"]
    return Endpoints(platform=entry.platform, extra=extra, sandbox=sandbox_base is not None, **urls)

