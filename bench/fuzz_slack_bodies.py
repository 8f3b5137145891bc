"""A hypothesis-driven fuzzer of ``POST /slack/events``: what Slack could send, and what it never would.

Each example is one request: a body (random JSON of any type, Slack-shaped envelopes with random
leaves, slash-command and interactivity forms, huge nesting, invalid UTF-8, NaN, duplicate keys,
random bytes), a content type and a signature state (valid, missing, forged, non-numeric timestamp).
``fuzz_slack_events`` sends them with a blocking client to a server on 127.0.0.1 and tallies the
answers; the caller checks the server's log for tracebacks. Used by ``make fuzz`` (10,000 bodies)
and by a seeded few hundred in the regular tests.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from bench.fuzz_seeding import generation_from_seed_only

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class FuzzRequest:
    body: bytes
    content_type: str | None
    signature: str  # "valid", "missing", "forged" or "bad_timestamp"


@dataclass(slots=True)
class FuzzTally:
    """Answers by status; ``server_errors`` keeps a few 5xx examples for the report."""

    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[FuzzRequest] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def five_xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
ids = st.sampled_from(["C0CHECKOUT", "U0ALICE", "T0ACME", "D0DM", "", "1700000000.000100"]) | st.text(
    max_size=12
)
loose = ids | json_values


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, loose)


@st.composite
def event_callbacks(draw: st.DrawFn) -> dict[str, Any]:
    event = {
        "type": draw(
            _maybe(st.sampled_from(["app_mention", "message", "app_home_opened", "reaction_added"]))
        ),
        "channel": draw(_maybe(ids)),
        "user": draw(_maybe(ids)),
        "text": draw(_maybe(st.text(max_size=80))),
        "ts": draw(_maybe(ids)),
        "channel_type": draw(_maybe(st.sampled_from(["im", "channel"]))),
    }
    if draw(st.booleans()):
        event["thread_ts"] = draw(_maybe(ids))
    body = {
        "type": draw(_maybe(st.just("event_callback"))),
        "team_id": draw(_maybe(ids)),
        "api_app_id": draw(_maybe(ids)),
        "event_id": draw(_maybe(st.text(min_size=1, max_size=16))),
        "event": draw(st.one_of(st.just(event), loose)),
    }
    if draw(st.booleans()):
        body["authorizations"] = draw(_maybe(st.just([{"team_id": "T0ACME", "user_id": "U0BOT"}])))
    return body


@st.composite
def interactivity(draw: st.DrawFn) -> dict[str, Any]:
    action = {
        "action_id": draw(
            _maybe(st.sampled_from(["run_interrupt", "run_resume", "feedback_up", "home_page"]))
        ),
        "value": draw(_maybe(ids)),
        "block_id": draw(_maybe(ids)),
        "type": "button",
    }
    return {
        "type": draw(
            _maybe(st.sampled_from(["block_actions", "view_submission", "view_closed", "shortcut"]))
        ),
        "user": draw(st.one_of(st.fixed_dictionaries({"id": _maybe(ids)}), loose)),
        "team": draw(st.one_of(st.fixed_dictionaries({"id": _maybe(ids)}), loose)),
        "channel": draw(st.one_of(st.fixed_dictionaries({"id": _maybe(ids)}), loose)),
        "trigger_id": draw(_maybe(ids)),
        "actions": draw(st.one_of(st.just([action]), loose)),
        "view": draw(
            st.one_of(st.fixed_dictionaries({"id": _maybe(ids), "callback_id": _maybe(ids)}), loose)
        ),
    }


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


json_bodies = st.one_of(
    json_values.map(_json_bytes),
    event_callbacks().map(_json_bytes),
    st.just(b'{"type": "url_verification", "challenge": "c", "type": "x"}'),
    st.integers(min_value=1, max_value=150_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(min_value=1, max_value=20_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.binary(max_size=200),
    event_callbacks().map(lambda body: _json_bytes(body).replace(b'"', b'"\xff', 1)),
    event_callbacks().map(lambda body: _json_bytes(body)[: max(1, len(_json_bytes(body)) // 2)]),
    st.sampled_from([b"[]", b"null", b'"x"', b"1", b"NaN", b'{"a": Infinity}', b"", b'"\\ud800"']),
)
form_bodies = st.one_of(
    interactivity().map(lambda payload: urlencode({"payload": json.dumps(payload, allow_nan=True)}).encode()),
    json_bodies.map(lambda raw: b"payload=" + raw.replace(b"&", b"%26")),
    st.fixed_dictionaries(
        {
            "command": _maybe(st.just("/incidentfox")),
            "text": st.text(max_size=60),
            "channel_id": ids,
            "user_id": ids,
            "team_id": ids,
            "trigger_id": ids,
        }
    ).map(lambda fields: urlencode({k: str(v) for k, v in fields.items()}).encode()),
    st.binary(max_size=120),
)
requests = st.one_of(
    st.builds(
        FuzzRequest,
        body=json_bodies,
        content_type=st.sampled_from([JSON_TYPE, JSON_TYPE, "text/plain", None]),
        signature=st.sampled_from(["valid", "valid", "valid", "missing", "forged", "bad_timestamp"]),
    ),
    st.builds(
        FuzzRequest,
        body=form_bodies,
        content_type=st.sampled_from([FORM_TYPE, FORM_TYPE, "multipart/form-data", None]),
        signature=st.sampled_from(["valid", "valid", "valid", "missing", "forged"]),
    ),
)


def slack_headers(request: FuzzRequest, signing_secret: str) -> dict[str, str]:
    """The headers for ``request``; a valid signature is computed over its exact bytes."""
    headers: dict[str, str] = {}
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    if request.signature == "missing":
        return headers
    timestamp = str(int(time.time())) if request.signature != "bad_timestamp" else "not-a-number"
    base = b"v0:" + timestamp.encode() + b":" + request.body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    if request.signature == "forged":
        digest = digest[::-1]
    headers.update({"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + digest})
    return headers


def fuzz_slack_events(port: int, signing_secret: str, *, examples: int, random_seed: int) -> FuzzTally:
    """Send ``examples`` generated requests to ``127.0.0.1:port`` (blocking; run it off the server's loop)."""
    tally = FuzzTally()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    @seed(random_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests)
    def send(request: FuzzRequest) -> None:
        nonlocal connection
        try:
            connection.request(
                "POST", "/slack/events", body=request.body, headers=slack_headers(request, signing_secret)
            )
            response = connection.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            tally.statuses[599] += 1
            return
        tally.statuses[response.status] += 1
        if response.status >= 500 and len(tally.server_errors) < 5:
            tally.server_errors.append(request)

    with generation_from_seed_only():
        send()
    connection.close()
    return tally
