"""What every webhook receiver shares: the answer type, payload validation and the audit of
deliveries that no team claims."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from incidentfox.bot.strict_json import loads_strict
from incidentfox.config import audit
from incidentfox.config.audit import INSTALLATION_AUDIT_ORG
from incidentfox.db.engine import SessionFactory
from incidentfox.errors import BadRequest, Unauthorized
from incidentfox.handlers.pipeline import Duplicate, Misconfigured, PipelineOutcome, Unrouted

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    status: int
    body: Mapping[str, Any] = field(default_factory=dict)


IGNORED = WebhookAnswer(204)


def answer_for(outcome: PipelineOutcome) -> WebhookAnswer:
    """What a sender is told about a trigger the pipeline took: 202 for a new run (and for a
    delivery no team claims or whose team lacks config, which the sender must not retry), 200 for a
    redelivery."""
    if isinstance(outcome, Unrouted):
        return WebhookAnswer(202, {"outcome": "unrouted"})
    if isinstance(outcome, Misconfigured):
        return WebhookAnswer(202, {"outcome": "misconfigured", "problems": list(outcome.problems)})
    if isinstance(outcome, Duplicate):
        return WebhookAnswer(200, {"outcome": "duplicate"})
    return WebhookAnswer(202, {"outcome": "accepted"})


def parse_payload(raw: bytes, model: type[M], sender: str) -> M:
    """``raw`` as ``model``, or a 400 that says what is wrong (never the payload itself)."""
    document = loads_strict(raw)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()[:3])
        raise BadRequest(
            f"the body is not a {sender} webhook payload (check: {where})", code="bad_payload"
        ) from None


def refuse_unsigned(sender: str) -> Unauthorized:
    """A 401 with no detail: which check failed is nobody's business but ours (logged at info)."""
    log.info("webhook signature refused sender=%s", sender)
    return Unauthorized("invalid signature")


async def audit_unrouted(sessions: SessionFactory, *, sender: str, what: str, delivery_id: str) -> None:
    async with sessions.begin() as session:
        audit.record(
            session,
            org_id=INSTALLATION_AUDIT_ORG,
            actor=f"webhook:{sender}",
            action="webhook.unrouted",
            target=what,
            delivery_id=delivery_id,
        )
    log.info("webhook unrouted sender=%s target=%s delivery_id=%s", sender, what, delivery_id)
