"""The body of a signed ``POST /slack/events``, parsed strictly and checked for the shape Slack sends.

Bolt parses a body leniently and reads ids out of it assuming Slack's shapes (``team`` a string or an
object with an ``id``, ``authorizations`` a list of objects, ...), and so do our listeners. A body of
``[]``, ``"x"`` or ``{"authorizations": 5}`` made them raise, which became a 500 with a traceback.
``parse_slack_body`` refuses such bodies with ``MalformedJson`` (400) before Bolt sees them. It runs
only after the signature holds: an unsigned body is never parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from incidentfox.bot.strict_json import MalformedJson, loads_strict_object

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_TEXT_FIELDS = frozenset(
    {
        "action_id",
        "action_ts",
        "api_app_id",
        "block_id",
        "bot_access_token",
        "callback_id",
        "channel_id",
        "command",
        "context_enterprise_id",
        "context_team_id",
        "enterprise_id",
        "event_id",
        "event_ts",
        "function_execution_id",
        "private_metadata",
        "response_url",
        "subtype",
        "team_id",
        "text",
        "thread_ts",
        "trigger_id",
        "ts",
        "type",
        "user_id",
        "user_team",
    }
)
"""Fields read as ids or text: a string (or null) wherever they appear."""

_REFERENCE_FIELDS = frozenset({"channel", "enterprise", "team", "user"})
"""Fields Slack sends either as an id string or as an object whose ``id`` is a string."""

_OBJECT_FIELDS = frozenset(
    {"assistant_thread", "container", "event", "function_data", "item", "message", "previous_message", "view"}
)
"""Fields that hold a nested object of the same vocabulary (checked in turn)."""

_OBJECT_LIST_FIELDS = frozenset({"actions", "authorizations", "response_urls"})
"""Fields that hold a list of objects of the same vocabulary (checked in turn)."""


def parse_slack_body(raw: bytes, media_type: str) -> dict[str, Any]:
    """The payload of a signed Slack request: an Events API JSON object, a slash command's form
    fields, or an interactivity form's ``payload=`` object. Raises ``MalformedJson`` otherwise."""
    if media_type == FORM:
        fields = _form_fields(raw)
        if "payload" in fields:
            payload = loads_strict_object(fields["payload"], what="the form field payload")
            check_envelope(payload)
            return payload
        return fields
    if media_type == JSON:
        document = loads_strict_object(raw)
        check_envelope(document)
        return document
    raise MalformedJson(f"Slack sends {JSON} or {FORM}, not {media_type[:60] or 'no content type'}")


def check_envelope(payload: Mapping[str, Any]) -> None:
    """Refuse a payload whose well-known fields do not have the types Slack gives them, or that lacks
    what the kind of payload it claims to be always carries."""
    _check_fields(payload)
    _check_required(payload)


def _check_fields(payload: Mapping[str, Any]) -> None:
    pending: list[tuple[str, Mapping[str, Any]]] = [("body", payload)]
    while pending:
        where, node = pending.pop()
        in_action = where.startswith("body.actions[")
        for key, value in node.items():
            path = f"{where}.{key}"
            if value is None:
                # Bolt reads nested objects as ``body.get("event", {})``: present means an object.
                _require(key not in _OBJECT_FIELDS and key not in _OBJECT_LIST_FIELDS, path, "not null")
                continue
            if key == "text" and in_action:
                continue  # a button's label: a text object, not a string
            if key in _TEXT_FIELDS or (key == "value" and in_action):
                _require(isinstance(value, str), path, "a string")
            elif key in _REFERENCE_FIELDS:
                _require(isinstance(value, str | dict), path, "a string or an object")
                if isinstance(value, dict):
                    _require(isinstance(value.get("id", ""), str), path + ".id", "a string")
                    pending.append((path, value))
            elif key in _OBJECT_FIELDS:
                _require(isinstance(value, dict), path, "an object")
                pending.append((path, value))
            elif key in _OBJECT_LIST_FIELDS:
                _require(isinstance(value, list), path, "a list")
                for index, item in enumerate(value):
                    _require(isinstance(item, dict), f"{path}[{index}]", "an object")
                    pending.append((f"{path}[{index}]", item))


def _check_required(payload: Mapping[str, Any]) -> None:
    kind = payload.get("type")
    if kind == "event_callback":
        event = payload.get("event")
        _require(isinstance(event, dict), "body.event", "an object")
        assert isinstance(event, dict)
        _require(isinstance(event.get("type"), str), "body.event.type", "a string")
        if event.get("type") in ("app_mention", "message"):
            for key in ("channel", "ts"):
                _require(isinstance(event.get(key), str), f"body.event.{key}", "a string")
    elif kind in ("block_actions", "view_submission", "view_closed", "shortcut", "message_action"):
        user = payload.get("user")
        _require(isinstance(user, dict) and isinstance(user.get("id"), str), "body.user.id", "a string")
        if kind == "block_actions":
            _require(bool(payload.get("actions")), "body.actions", "a list of one or more actions")
        if kind in ("view_submission", "view_closed"):
            _require(isinstance(payload.get("view"), dict), "body.view", "an object")


def _form_fields(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=200)
    except UnicodeDecodeError as exc:
        raise MalformedJson("request body is not UTF-8") from exc
    except ValueError as exc:
        raise MalformedJson("the form body has too many fields") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise MalformedJson(f"the form field {name[:40]!r} appears twice")
        fields[name] = value
    return fields


def _require(holds: bool, path: str, kind: str) -> None:
    if not holds:
        raise MalformedJson(f"{path[:120]} must be {kind}")
