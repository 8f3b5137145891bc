"""Short-lived per-session tokens: what a sandbox holds instead of the model API key.

A token names one SRE-agent session and expires; only its keyed hash is kept, so a memory dump of
the process shows no usable token. The real key never leaves the proxy (``model_proxy.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

TOKEN_PREFIX = "ifx-sbx-"


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """Who a valid token speaks for, and until when (``time.monotonic()`` seconds)."""

    session_id: str
    expires_at: float


class SessionTokens:
    """Issue, check and revoke the tokens of running sessions."""

    def __init__(self, *, ttl_s: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._grants: dict[str, SessionGrant] = {}

    def issue(self, session_id: str) -> str:
        """A fresh token for ``session_id``; an earlier token of the same session stops working."""
        self.revoke(session_id)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._grants[self._digest(token)] = SessionGrant(session_id, self._clock() + self.ttl_s)
        return token

    def check(self, token: str | None) -> SessionGrant | None:
        """The grant behind ``token``, or ``None`` when it is unknown, revoked or expired."""
        if not token or not token.startswith(TOKEN_PREFIX):
            return None
        digest = self._digest(token)
        grant = self._grants.get(digest)
        if grant is None:
            return None
        if grant.expires_at <= self._clock():
            del self._grants[digest]
            return None
        return grant

    def revoke(self, session_id: str) -> None:
        for digest, grant in list(self._grants.items()):
            if grant.session_id == session_id:
                del self._grants[digest]

    def _digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()
