"""The one definition of what a secret looks like: by the name of its key, or by its value.

Used by the config service (which encrypts these values at rest and shows them as ``••••last4``) and by
the redaction layer (which scrubs them from everything a model, Slack or a log sees), so the two can
never disagree about a key such as ``app_key``.

A key is split into words (``DB_PASSWORD`` → db, password; ``apiKey`` → api, key). It names a secret
when its last word is ``key``, ``secret``, ``password``, ``credentials``, … or when any word holds
``token`` — unless the last word says the value is something else about the secret (``token_url``,
``secret_name``, ``api_key_path``) or a count (``max_tokens``, ``tokens_per_minute``).
"""

from __future__ import annotations

import re

_SECRET_LAST_WORDS = frozenset(
    {
        "key",
        "apikey",
        "secret",
        "secrets",
        "secretkey",
        "privatekey",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "credential",
        "credentials",
        "dsn",
        "authorization",
        "cookie",
    }
)
_SECRET_NAMES = frozenset({"auth_header", "kubeconfig_content", "client_key_data", "key_data"})
_NOT_A_SECRET_LAST_WORDS = frozenset(
    {
        "url",
        "urls",
        "endpoint",
        "host",
        "path",
        "file",
        "dir",
        "name",
        "names",
        "id",
        "ids",
        "type",
        "kind",
        "ttl",
        "limit",
        "budget",
        "count",
        "expiry",
        "expires",
        "enabled",
        "header",
        "prefix",
        "version",
        "length",
        "size",
        "used",
    }
)
_WORD_BOUNDARY = re.compile(r"[_\-.\s]+|(?<=[a-z0-9])(?=[A-Z])")

URL_WITH_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s\"']+:)([^@/\s\"']+)@")
"""``scheme://user:password@host``: group 2 is the password, whatever key the string sits under."""


def key_words(key: str) -> list[str]:
    return [word.lower() for word in _WORD_BOUNDARY.split(key) if word]


def is_secret_key(key: str) -> bool:
    """``bot_token``, ``api_key``, ``app_key``, ``webhook_secret``, ``DB_PASSWORD``… are secrets;
    ``max_tokens``, ``token_url`` and ``secret_name`` are not."""
    words = key_words(key)
    if not words:
        return False
    if "_".join(words) in _SECRET_NAMES:
        return True
    last = words[-1]
    if last in _NOT_A_SECRET_LAST_WORDS or "per" in words:
        return False
    if last in _SECRET_LAST_WORDS:
        return True
    if last == "tokens" and len(words) > 1:
        return False
    return any("token" in word for word in words)


def has_url_password(value: str) -> bool:
    """Whether ``value`` holds a connection string with a password (``postgres://app:pw@db``)."""
    return URL_WITH_PASSWORD.search(value) is not None
