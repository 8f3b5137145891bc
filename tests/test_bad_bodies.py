"""Every route answers a bad body with 400 (401 when unsigned), one log line, no traceback, no write."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from incidentfox.db.models_registry import metadata
from tests.conftest import ADMIN_TOKEN
from tests.slack_world import SIGNING_SECRET, World, world

BAD_JSON: dict[str, bytes] = {
    "array": b"[]",
    "null": b"null",
    "string": b'"x"',
    "number": b"1",
    "deep_nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep_objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "invalid_utf8": b'{"type": "event_callback", "x": "\xff\xfe"}',
    "nan": b'{"type": "url_verification", "challenge": NaN}',
    "infinity": b'{"type": "event_callback", "n": -Infinity}',
    "duplicate_keys": b'{"type": "url_verification", "type": "event_callback"}',
    "lone_surrogate": b'{"type": "url_verification", "challenge": "\\ud800"}',
    "empty": b"",
    "truncated": b'{"type": ',
}

CONFIG_WRITES = [
    ("POST", "/api/v1/orgs"),
    ("POST", "/api/v1/orgs/acme/nodes"),
    ("PATCH", "/api/v1/orgs/acme/nodes/checkout"),
    ("PUT", "/api/v1/orgs/acme/nodes/checkout/config"),
    ("PATCH", "/api/v1/orgs/acme/nodes/checkout/config"),
    ("POST", "/api/v1/orgs/acme/nodes/checkout/tokens"),
    ("POST", "/api/v1/orgs/acme/tokens"),
]


@pytest.fixture
async def fox(tmp_path: Path) -> AsyncIterator[World]:
    async with world(tmp_path) as the_world:
        yield the_world


async def row_counts(fox: World) -> dict[str, int]:
    assert fox.fox.runtime is not None
    async with fox.fox.runtime.sessions() as session:
        return {
            table.name: int((await session.execute(select(func.count()).select_from(table))).scalar_one())
            for table in metadata.sorted_tables
        }


async def post(fox: World, path: str, body: bytes, headers: dict[str, str], method: str = "POST") -> int:
    url = f"http://127.0.0.1:{fox.fox.port}{path}"
    async with fox.http.request(method, url, data=body, headers=headers) as response:
        text = await response.text()
        assert "Traceback" not in text
        if response.status == 401 and path == "/slack/events":
            assert text == "", "a refused signature gets no detail"
        return response.status


def slack_signed(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    """Slack's headers for the exact bytes of ``body``; computed here by hand because slack_sdk
    signs text only and ``body`` need not be UTF-8."""
    timestamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }


def assert_one_quiet_line(caplog: pytest.LogCaptureFixture, requests: int) -> None:
    """Each refused request logged exactly one line, and nothing logged a traceback."""
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    refusals = [r for r in caplog.records if r.name.startswith("incidentfox") and "refused" in r.getMessage()]
    assert len(refusals) == requests, [r.getMessage() for r in refusals]


@pytest.mark.parametrize("kind", sorted(BAD_JSON))
async def test_slack_events_refuses_bad_json_bodies_without_a_500(
    fox: World, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    body = BAD_JSON[kind]
    # slack_sdk verifies signatures over text: bytes that are not UTF-8 cannot be shown to be signed.
    signed_status = 401 if kind == "invalid_utf8" else 400
    before = await row_counts(fox)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert await post(fox, "/slack/events", body, slack_signed(body)) == signed_status
        assert await post(fox, "/slack/events", body, {"Content-Type": "application/json"}) == 401
        forged = {**slack_signed(body), "X-Slack-Signature": "v0=" + "0" * 64}
        assert await post(fox, "/slack/events", body, forged) == 401
    assert_one_quiet_line(caplog, requests=3)
    assert await row_counts(fox) == before


@pytest.mark.parametrize("kind", sorted(BAD_JSON))
async def test_slack_form_payload_that_is_not_an_object_is_a_400(
    fox: World, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    body = b"payload=" + quote(BAD_JSON[kind]).encode()
    form = "application/x-www-form-urlencoded"
    before = await row_counts(fox)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert await post(fox, "/slack/events", body, slack_signed(body, form)) == 400
        assert await post(fox, "/slack/events", body, {"Content-Type": form}) == 401
    assert_one_quiet_line(caplog, requests=2)
    assert await row_counts(fox) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"type": "url_verification", "challenge": "c"}', "text/plain"),
        (b'{"type": "url_verification", "challenge": "c"}', "multipart/form-data; boundary=x"),
        (b'{"type": "event_callback", "authorizations": 5}', "application/json"),
        (b'{"type": "event_callback", "team": []}', "application/json"),
        (b'{"type": "", "event": null}', "application/json"),
        (b'{"type": "event_callback", "event": {"type": "app_mention"}}', "application/json"),
        (b'{"type": "block_actions", "user": "U1", "actions": []}', "application/json"),
        (b"payload=%7B%7D&payload=%7B%7D", "application/x-www-form-urlencoded"),
        (b"payload=%FF", "application/x-www-form-urlencoded"),
        (b"token=x&text=%FF%FE", "application/x-www-form-urlencoded"),
    ],
)
async def test_signed_slack_bodies_of_the_wrong_shape_or_type_are_a_400(
    fox: World, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    before = await row_counts(fox)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert await post(fox, "/slack/events", body, slack_signed(body, content_type)) == 400
    assert_one_quiet_line(caplog, requests=1)
    assert await row_counts(fox) == before


async def test_slack_signature_headers_that_are_not_numbers_are_a_401(
    fox: World, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"type": "url_verification", "challenge": "c"}'
    with caplog.at_level(logging.INFO):
        headers = {**slack_signed(body), "X-Slack-Request-Timestamp": "soon"}
        assert await post(fox, "/slack/events", body, headers) == 401
        headers = {**slack_signed(body), "X-Slack-Signature": "v0=ü"}
        assert await post(fox, "/slack/events", body, headers) == 401
    assert_one_quiet_line(caplog, requests=2)


async def test_a_well_formed_signed_body_still_reaches_bolt(fox: World) -> None:
    body = b'{"type": "url_verification", "challenge": "c-123"}'
    url = f"http://127.0.0.1:{fox.fox.port}/slack/events"
    async with fox.http.post(url, data=body, headers=slack_signed(body)) as response:
        assert response.status == 200
        assert "c-123" in await response.text()


@pytest.mark.parametrize("kind", sorted(BAD_JSON))
async def test_config_api_refuses_bad_json_bodies_without_a_500(
    fox: World, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    body = BAD_JSON[kind]
    # Token issuing takes an optional body: an empty one issues a token (tested with the tokens).
    routes = [(m, p) for m, p in CONFIG_WRITES if not (kind == "empty" and p.endswith("/tokens"))]
    before = await row_counts(fox)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        for method, path in routes:
            assert await post(fox, path, body, headers, method=method) == 400, (method, path)
    assert_one_quiet_line(caplog, requests=len(routes))
    assert await row_counts(fox) == before


async def test_config_api_refuses_bodies_that_are_not_labelled_json(
    fox: World, caplog: pytest.LogCaptureFixture
) -> None:
    before = await row_counts(fox)
    with caplog.at_level(logging.INFO):
        for content_type in ("text/plain", "multipart/form-data; boundary=x", "application/xml"):
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": content_type}
            for method, path in CONFIG_WRITES:
                assert await post(fox, path, b'{"org_id": "other"}', headers, method=method) == 400
    assert_one_quiet_line(caplog, requests=3 * len(CONFIG_WRITES))
    assert await row_counts(fox) == before


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_probes_ignore_any_body(fox: World, caplog: pytest.LogCaptureFixture, path: str) -> None:
    with caplog.at_level(logging.INFO):
        for body in BAD_JSON.values():
            url = f"http://127.0.0.1:{fox.fox.port}{path}"
            async with fox.http.get(url, data=body, headers={"Content-Type": "text/plain"}) as response:
                assert response.status == 200
            async with fox.http.post(url, data=body) as response:
                assert response.status == 405
    assert not [r for r in caplog.records if r.exc_info]
