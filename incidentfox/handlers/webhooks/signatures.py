"""Webhook signature checks: PagerDuty V3, GitHub and incident.io (Standard Webhooks).

Slack's check is slack_sdk's ``SignatureVerifier`` and incident.io's is the ``standardwebhooks``
package. PagerDuty and GitHub publish only the recipe (HMAC-SHA256 over the raw body, hex, in a
header) and neither client library implements the receiving side, so the two comparisons live here,
constant-time. A check needs the raw body exactly as received: never a re-encoded JSON document.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PAGERDUTY_HEADER = "X-PagerDuty-Signature"
GITHUB_HEADER = "X-Hub-Signature-256"
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_SIGNATURES = 16
"""More ``v1=`` values than any sender rotates through; a longer header is refused unread."""


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _raw(header_value: str) -> bytes:
    """A header value as the bytes that arrived: aiohttp keeps bytes that are not UTF-8 as lone
    surrogates, which a plain ``encode()`` refuses."""
    return header_value.encode("utf-8", "surrogateescape")


def pagerduty_signed(body: bytes, header: str | None, secret: str) -> bool:
    """Whether any ``v1=<hex>`` of PagerDuty's comma-separated header matches the body.

    PagerDuty sends one value per secret of the subscription (several while a secret is rotated);
    one match is enough.
    """
    if not header or not secret:
        return False
    values = [part.strip() for part in header.split(",")]
    if len(values) > MAX_SIGNATURES:
        return False
    expected = "v1=" + _hex_hmac(secret, body)
    return any(hmac.compare_digest(_raw(value), expected.encode()) for value in values)


def github_signed(body: bytes, header: str | None, secret: str) -> bool:
    """Whether ``X-Hub-Signature-256: sha256=<hex>`` matches the body."""
    if not header or not secret:
        return False
    expected = "sha256=" + _hex_hmac(secret, body)
    return hmac.compare_digest(_raw(header.strip()), expected.encode())


def standard_webhook_signed(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """Whether a Standard Webhooks delivery (incident.io) is signed by ``secret`` and fresh.

    The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; ``webhook-signature`` holds
    space-separated ``v1,<base64>`` values (any one may match) and the timestamp must be within five
    minutes of now. ``secret`` is the ``whsec_…`` value incident.io shows.
    """
    if not secret or any(not headers.get(name) for name in STANDARD_HEADERS):
        return False
    try:
        Webhook(secret).verify(body, {name: headers[name] for name in STANDARD_HEADERS})
    except (WebhookVerificationError, ValueError, TypeError):
        return False
    return True


def standard_webhook_sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for a delivery (used by the emulators and the local workspace)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
