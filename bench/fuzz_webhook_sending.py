"""The webhook fuzzer's sending side: signatures and headers for each generated delivery (valid ones
made with the secret the server holds, over the exact bytes, at send time), a blocking loopback
client, and the tally of answers by status and by ``outcome``/``error`` code. The caller checks the
server's log for tracebacks. The deliveries themselves come from ``bench/fuzz_webhook_bodies.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, seed, settings

from bench.fuzz_seeding import generation_from_seed_only
from bench.fuzz_slack_bodies import JSON_TYPE, FuzzRequest, FuzzTally
from bench.fuzz_webhook_bodies import Claims, Route, WebhookRequest, route_requests

PAST_SIGNATURE = frozenset({"accepted", "unrouted", "misconfigured", "duplicate", "updated", "pong"})
"""``outcome`` values the receivers answer only once a delivery's signature holds."""


@dataclass(frozen=True, slots=True)
class WebhookSecrets:
    """The secrets the server verifies with (the team's, and the installation's fallbacks)."""

    pagerduty: str
    github: str
    incidentio: str


@dataclass(slots=True)
class WebhookTally(FuzzTally):
    """``FuzzTally`` plus answers by ``"{status} {outcome or error code}"``."""

    answers: Counter[str] = field(default_factory=Counter)

    @property
    def past_signature(self) -> int:
        """Answers that only a delivery whose signature held can get."""
        return sum(n for answer, n in self.answers.items() if answer.split(" ")[-1] in PAST_SIGNATURE)


# Signatures and headers -------------------------------------------------------------------------

WRONG_SECRET = "not-the-secret-the-server-holds"


def _hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _pagerduty_signature(request: WebhookRequest, secret: str) -> str | None:
    body, state = request.body, request.signature
    valid = "v1=" + _hex(secret, body)
    signatures = {
        "valid": valid,
        "several": f"v1={_hex(WRONG_SECRET, body)}, {valid},v1={request.noise[:20]}",
        "forged": "v1=" + _hex(WRONG_SECRET, body),
        "malformed": request.noise or "v1=",
        "other_bytes": "v1=" + _hex(secret, body + b" "),
        "too_many": ",".join([f"v1={'0' * 64}"] * 16 + [valid]),
    }
    return signatures.get(state)


def _github_signatures(request: WebhookRequest, secret: str) -> dict[str, str]:
    body, state = request.body, request.signature
    valid = "sha256=" + _hex(secret, body)
    legacy = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    headers = {
        "valid": {"X-Hub-Signature-256": valid},
        "several": {"X-Hub-Signature": legacy, "X-Hub-Signature-256": valid},
        "forged": {"X-Hub-Signature-256": "sha256=" + _hex(WRONG_SECRET, body)},
        "malformed": {"X-Hub-Signature-256": request.noise, "X-Hub-Signature": legacy},
        "other_bytes": {"X-Hub-Signature-256": "sha256=" + _hex(secret, body + b" ")},
        "too_many": {"X-Hub-Signature-256": f"sha256={'0' * 64},{valid}"},
    }
    return headers.get(state, {})


def _standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _incidentio_headers(request: WebhookRequest, secret: str) -> dict[str, str]:
    """Standard Webhooks headers; a missing ``delivery`` sends no ``webhook-id``."""
    body, state, now = request.body, request.signature, int(time.time())
    sent_at = {"stale": now - 301 - len(request.noise) * 60, "future": now + 360}.get(state, now)
    message_id = request.delivery or "msg_unsent"
    forged_key = "whsec_" + base64.b64encode(WRONG_SECRET.encode()).decode()
    valid = _standard_signature(secret, message_id, sent_at, body)
    headers = {"webhook-timestamp": str(sent_at), "webhook-signature": valid}
    if state == "several":
        junk = base64.b64encode(request.noise.encode("latin-1")).decode()
        headers["webhook-signature"] = f"v1,{junk} v2,abc {valid} v1a,{junk}"
    elif state == "forged":
        headers["webhook-signature"] = _standard_signature(forged_key, message_id, sent_at, body)
    elif state == "malformed":
        headers["webhook-signature"] = request.noise
        headers["webhook-timestamp"] = request.noise[:12] or "x"
    elif state == "other_bytes":
        headers["webhook-signature"] = _standard_signature(secret, message_id, sent_at, body + b" ")
    elif state == "too_many":
        headers["webhook-signature"] = " ".join(["v1," + "A" * 44] * 40 + [valid])
    elif state == "odd_timestamp":
        forms = (f"{now}.9", f"+{now}", f"0{now}", f"{now:_}", f" {now} ")
        headers["webhook-timestamp"] = forms[len(request.noise) % len(forms)]
    elif state == "missing":
        return {}
    if request.delivery is not None:
        headers["webhook-id"] = request.delivery
    return headers


def webhook_headers(request: WebhookRequest, secrets: WebhookSecrets) -> dict[str, str]:
    """Every header of ``request``; a valid signature is computed over its exact bytes, now."""
    headers: dict[str, str] = {"User-Agent": "incidentfox-fuzz"}
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    if request.route == "pagerduty":
        signature = _pagerduty_signature(request, secrets.pagerduty)
        if signature is not None:
            headers["X-PagerDuty-Signature"] = signature
        headers["X-Webhook-Id"] = "fuzz-webhook-subscription"
    elif request.route == "incidentio":
        headers |= _incidentio_headers(request, secrets.incidentio)
    else:
        headers |= _github_signatures(request, secrets.github)
        if request.event is not None:
            headers["X-GitHub-Event"] = request.event
        if request.delivery is not None:
            headers["X-GitHub-Delivery"] = request.delivery
    return headers


# Sending ----------------------------------------------------------------------------------------


class LoopbackClient:
    """One kept-alive blocking connection to 127.0.0.1, opened again after any transport error."""

    def __init__(self, port: int, timeout_s: float = 30.0) -> None:
        self._port = port
        self._timeout_s = timeout_s
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """The answer's status and body; status 599 when the connection failed instead."""
        try:
            self._connection.request("POST", path, body=body, headers=headers)
            response = self._connection.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            self._connection.close()
            self._connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=self._timeout_s)
            return 599, b""

    def close(self) -> None:
        self._connection.close()


def answer_label(status: int, body: bytes) -> str:
    """``"{status} {outcome or error code}"`` of a JSON answer, else the status alone."""
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        code = document.get("outcome") or document.get("error")
        if isinstance(code, str):
            return f"{status} {code}"
    return str(status)


def github_route_exists(port: int, secrets: WebhookSecrets, repo: str) -> bool:
    """Whether ``POST /webhooks/github`` is served: a signed ``ping`` gets anything but 404."""
    body = json.dumps({"zen": "probe", "hook_id": 1, "repository": {"full_name": repo}}).encode()
    probe = WebhookRequest(
        body=body,
        content_type=JSON_TYPE,
        signature="valid",
        route="github",
        path="/webhooks/github",
        event="ping",
        delivery="fuzz-route-probe",
        noise="",
    )
    client = LoopbackClient(port)
    try:
        status, _ = client.post(probe.path, probe.body, webhook_headers(probe, secrets))
    finally:
        client.close()
    return status != 404


def fuzz_webhook_route(
    port: int,
    route: Route,
    secrets: WebhookSecrets,
    claims: Claims,
    *,
    examples: int,
    random_seed: int,
) -> WebhookTally:
    """Send ``examples`` generated deliveries to ``route`` on ``127.0.0.1:port`` (blocking; run it off
    the server's loop)."""
    tally = WebhookTally()
    client = LoopbackClient(port)

    @seed(random_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(route_requests(route, claims))
    def send(request: WebhookRequest) -> None:
        status, answer = client.post(request.path, request.body, webhook_headers(request, secrets))
        tally.statuses[status] += 1
        tally.answers[answer_label(status, answer)] += 1
        if status >= 500 and len(tally.server_errors) < 5:
            tally.server_errors.append(request)

    try:
        with generation_from_seed_only():
            send()
    finally:
        client.close()
    return tally


def describe(request: FuzzRequest, limit: int = 300) -> str:
    """One line about a request, for a report of 5xx answers."""
    if not isinstance(request, WebhookRequest):
        return f"{request.content_type} {request.signature} {request.body[:limit]!r}"
    extra = f" X-GitHub-Event={request.event!r}" if request.route == "github" else ""
    return (
        f"POST {request.path}{extra} content-type={request.content_type} signature={request.signature} "
        f"({len(request.body)} bytes) {request.body[:limit]!r}"
    )
