"""Webhook secrets, payloads, signatures and the address check that keeps deliveries off internal networks.

Signatures (API.md): every delivery carries the Standard Webhooks headers
(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
keyed with the base64-decoded part of `whsec_...`) and `X-Herald-Signature: sha256=<hex HMAC-SHA256 of the
raw body>` keyed with the secret string exactly as shown (UTF-8). While a rotated-out secret is still
honoured, it signs too: a second `v1,` entry and `X-Herald-Signature-Previous`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from store.models import WebhookEvent, WebhookSubscription

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# A rotated-out secret keeps signing this long, so receivers can switch without dropping deliveries.
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
ALL_EVENTS = "*"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_preview(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 4] + "…"


def rotate(sub: WebhookSubscription, now: datetime) -> str:
    """Give `sub` a new secret; the old one keeps signing for the grace period. Returns the new secret."""
    secret = new_secret()
    sub.previous_secret = sub.secret
    sub.previous_secret_expires_at = now + PREVIOUS_SECRET_GRACE
    sub.secret = secret
    sub.secret_preview = secret_preview(secret)
    return secret


def signing_secrets(sub: WebhookSubscription, now: datetime) -> list[str]:
    """The current secret first, then the previous one while its grace period lasts."""
    keys = [sub.secret] if sub.secret else []
    if sub.previous_secret and sub.previous_secret_expires_at and sub.previous_secret_expires_at > now:
        keys.append(sub.previous_secret)
    return keys


def matches(sub: WebhookSubscription, event_type: str) -> bool:
    return ALL_EVENTS in sub.events or event_type in sub.events


def payload(event: WebhookEvent) -> bytes:
    """The body every attempt of one event sends: the same bytes on every retry."""
    body = {"id": event.id, "type": event.type, "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
            "livemode": event.livemode, "data": event.data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def herald_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_headers(keys: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(_standard_signature(k, msg_id, timestamp, body) for k in keys),
        "X-Herald-Signature": herald_signature(keys[0], body),
    }
    if len(keys) > 1:
        headers["X-Herald-Signature-Previous"] = herald_signature(keys[1], body)
    return headers


# --- where a delivery may go -------------------------------------------------------------


class AddressRefused(Exception):
    """The receiver resolves to an address deliveries must not reach."""


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[Any]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64): each must pass the check too."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    found = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None,
             ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None]
    return [a for a in found if a is not None]


def address_allowed(address: str, *, livemode: bool) -> bool:
    """Public unicast only; test mode may also reach loopback, so a tour runs on one machine."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    for candidate in (ip, *_embedded(ip)):
        if not livemode and candidate.is_loopback:
            continue
        if (not candidate.is_global or candidate.is_multicast or candidate.is_reserved or candidate.is_loopback
                or candidate.is_link_local or candidate.is_private or candidate.is_unspecified):
            return False
    return True


def check_resolved(host: str, addresses: list[str], *, livemode: bool) -> list[str]:
    """Every resolved address must be allowed (one bad answer refuses the host); returns them in order."""
    for address in addresses:
        if not address_allowed(address, livemode=livemode):
            raise AddressRefused(f"{host} resolves to {address.split('%', 1)[0]}, a private, loopback, "
                                 "link-local, multicast or reserved address; deliveries may only go to "
                                 "public addresses")
    return list(dict.fromkeys(a.split("%", 1)[0] for a in addresses))
