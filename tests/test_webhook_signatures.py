"""Webhook signatures: PagerDuty's several ``v1=`` values, GitHub's ``sha256=``, incident.io's Standard
Webhooks with its five-minute tolerance. Expected values are computed here independently."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pytest

from incidentfox.handlers.webhooks.signatures import (
    github_signed,
    pagerduty_signed,
    standard_webhook_sign,
    standard_webhook_signed,
)

BODY = b'{"event":{"id":"01DEN4HPBQAWI6NXHM1N6XWJ4Z","event_type":"incident.triggered"}}'


def _hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_accepts_any_one_of_several_signatures() -> None:
    right = "v1=" + _hex("current-secret", BODY)
    old = "v1=" + _hex("rotated-out", BODY)
    assert pagerduty_signed(BODY, right, "current-secret")
    assert pagerduty_signed(BODY, f"{old},{right}", "current-secret")
    assert pagerduty_signed(BODY, f"{old}, {right}", "current-secret")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=" + "0" * 64,
        "v1=" + _hex("another-secret", BODY),
        _hex("current-secret", BODY),
        "v2=" + _hex("current-secret", BODY),
        ",".join(["v1=00"] * 17) + ",v1=" + _hex("current-secret", BODY),
    ],
)
def test_pagerduty_refuses_forged_missing_or_malformed_signatures(header: str | None) -> None:
    assert not pagerduty_signed(BODY, header, "current-secret")


def test_pagerduty_signature_covers_the_raw_body_and_needs_a_secret() -> None:
    header = "v1=" + _hex("current-secret", BODY)
    assert not pagerduty_signed(BODY + b" ", header, "current-secret")
    assert not pagerduty_signed(BODY, header, "")


def test_github_signature() -> None:
    header = "sha256=" + _hex("gh-secret", BODY)
    assert github_signed(BODY, header, "gh-secret")
    assert not github_signed(BODY, header, "other")
    assert not github_signed(BODY.replace(b"triggered", b"resolved"), header, "gh-secret")
    assert not github_signed(BODY, "sha1=" + hashlib.sha1(BODY).hexdigest(), "gh-secret")
    assert not github_signed(BODY, None, "gh-secret")


def _standard(secret_bytes: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_bytes, signed, hashlib.sha256).digest()).decode()


def test_standard_webhooks_signature_with_several_values_and_a_tolerance() -> None:
    key = secrets.token_bytes(24)
    secret = "whsec_" + base64.b64encode(key).decode()
    now = int(time.time())
    good = _standard(key, "msg_1", now, BODY)
    assert standard_webhook_sign(secret, "msg_1", now, BODY) == good
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": good}
    assert standard_webhook_signed(BODY, headers, secret)
    other = _standard(secrets.token_bytes(24), "msg_1", now, BODY)
    assert standard_webhook_signed(BODY, {**headers, "webhook-signature": f"{other} {good}"}, secret)
    assert not standard_webhook_signed(BODY, {**headers, "webhook-signature": other}, secret)
    assert not standard_webhook_signed(BODY, {**headers, "webhook-id": "msg_2"}, secret)
    stale = now - 6 * 60
    stale_headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stale),
        "webhook-signature": _standard(key, "msg_1", stale, BODY),
    }
    assert not standard_webhook_signed(BODY, stale_headers, secret)
    assert not standard_webhook_signed(BODY, {**headers, "webhook-signature": "v1,%%%"}, secret)
    assert not standard_webhook_signed(BODY, {**headers, "webhook-timestamp": "soon"}, secret)
    assert not standard_webhook_signed(BODY, {"webhook-id": "msg_1"}, secret)
    assert not standard_webhook_signed(BODY, headers, "")


def test_a_signature_header_with_bytes_that_are_not_utf8_is_refused_not_a_crash() -> None:
    """aiohttp keeps such bytes as lone surrogates (found by the webhook fuzzer: it was a 500)."""
    assert not pagerduty_signed(BODY, "v1=\udcff", "current-secret")
    assert not github_signed(BODY, "sha256=\udcff", "gh-secret")
