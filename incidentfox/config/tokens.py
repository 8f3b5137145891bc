"""API token formats and their keyed hashes (design §6).

Org admin: ``{org_id}.{random}``; team: ``{org_id}.{team_id}.{random}``. The random part is 256 bits,
URL-safe (it never contains ``.``). Only ``HMAC-SHA256(token_key, token)`` is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from incidentfox.config.ids import NODE_ID_PATTERN

TokenKind = Literal["org_admin", "team"]
RANDOM_BYTES = 32


@dataclass(frozen=True, slots=True)
class ParsedToken:
    kind: TokenKind
    org_id: str
    team_node_id: str | None


def new_token(org_id: str, team_node_id: str | None = None) -> str:
    random_part = secrets.token_urlsafe(RANDOM_BYTES)
    return f"{org_id}.{team_node_id}.{random_part}" if team_node_id else f"{org_id}.{random_part}"


def new_token_id() -> str:
    return "tok_" + secrets.token_hex(8)


def parse_token(token: str) -> ParsedToken | None:
    """The org and team a token names, or ``None`` for something that is not one of our formats."""
    parts = token.split(".")
    if len(parts) == 2 and NODE_ID_PATTERN.fullmatch(parts[0]) and len(parts[1]) >= 43:
        return ParsedToken("org_admin", parts[0], None)
    if (
        len(parts) == 3
        and NODE_ID_PATTERN.fullmatch(parts[0])
        and NODE_ID_PATTERN.fullmatch(parts[1])
        and len(parts[2]) >= 43
    ):
        return ParsedToken("team", parts[0], parts[1])
    return None


def hash_token(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
