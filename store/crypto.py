"""Encryption at rest for platform tokens and client secrets, and hashing of API keys.

Values are sealed with AES-256-GCM (authenticated: a tampered ciphertext fails
to open). The stored form is `v1.<key id>.<base64 nonce+ciphertext>`; the key
id lets old rows open after a key rotation while new rows use the first key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import String, TypeDecorator


class Cipher:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._keys: dict[str, AESGCM] = {}
        self._primary = ""
        self._primary_raw = b""
        for i, encoded in enumerate(keys):
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            if len(raw) != 32:
                raise ValueError("encryption keys must be 32 bytes, base64-encoded")
            kid = hashlib.sha256(raw).hexdigest()[:8]
            self._keys[kid] = AESGCM(raw)
            if i == 0:
                self._primary = kid
                self._primary_raw = raw

    def key_material(self) -> bytes:
        return self._primary_raw

    def seal(self, plaintext: str, context: str = "") -> str:
        nonce = os.urandom(12)
        ct = self._keys[self._primary].encrypt(nonce, plaintext.encode(), context.encode())
        return f"v1.{self._primary}.{base64.urlsafe_b64encode(nonce + ct).decode()}"

    def open(self, sealed: str, context: str = "") -> str:
        version, kid, payload = sealed.split(".", 2)
        if version != "v1" or kid not in self._keys:
            raise ValueError("sealed value uses an unknown key")
        blob = base64.urlsafe_b64decode(payload)
        return self._keys[kid].decrypt(blob[:12], blob[12:], context.encode()).decode()


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


_cipher: Cipher | None = None


def configure(keys: list[str]) -> None:
    global _cipher
    _cipher = Cipher(keys)


def cipher() -> Cipher:
    global _cipher
    if _cipher is None:
        from store.settings import get_settings

        _cipher = Cipher(get_settings().encryption_key_list())
    return _cipher


class EncryptedString(TypeDecorator):
    """A column whose value is sealed on write and opened on read.

    `context` binds a ciphertext to its column, so a value copied into another
    encrypted column does not open.
    """

    impl = String
    cache_ok = True

    def __init__(self, context: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.context = context

    def process_bind_param(self, value, dialect):
        return None if value is None else cipher().seal(value, self.context)

    def process_result_value(self, value, dialect):
        return None if value is None else cipher().open(value, self.context)


def hash_api_key(key: str) -> str:
    """API keys carry 256 bits of randomness, so a plain SHA-256 cannot be brute-forced."""
    return hashlib.sha256(key.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def _signing_key(purpose: str) -> bytes:
    """A key for MACs, derived from the primary encryption key so there is no second secret to manage."""
    return hmac.new(cipher().key_material(), purpose.encode(), hashlib.sha256).digest()


def sign(value: str, purpose: str) -> str:
    mac = hmac.new(_signing_key(purpose), value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def verify(value: str, signature: str, purpose: str) -> bool:
    return hmac.compare_digest(sign(value, purpose), signature)
