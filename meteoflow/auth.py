"""Shared secrets checks: a key presented by a client, compared in constant time.

Used by the forecasting API (its optional API key) and the web app (its optional write token)."""

from __future__ import annotations

import hashlib
import hmac


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class SecretKey:
    """A configured key; `matches` compares a presented one in constant time. Digests are compared,
    so they have equal lengths: not even the key's length shows in the comparison's time."""

    def __init__(self, key: str):
        if not key:
            raise ValueError("an empty key cannot be checked")
        self._digest = _digest(key.encode())

    def matches(self, presented: bytes | str | None) -> bool:
        if presented is None:
            return False
        raw = presented.encode() if isinstance(presented, str) else presented
        return hmac.compare_digest(_digest(raw), self._digest)

    def __repr__(self) -> str:  # never the key, nor its digest
        return "SecretKey(**********)"


def bearer_token(authorization: bytes | str | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header value, or None (absent, another scheme, empty)."""
    if not authorization:
        return None
    raw = authorization.encode("latin-1") if isinstance(authorization, str) else authorization
    scheme, _, token = raw.strip().partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None
