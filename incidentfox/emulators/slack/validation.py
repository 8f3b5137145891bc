"""Block Kit and message-size validation with Slack's own limits and error codes.

Limits (see /work/shared/reference/slack-platform-facts.md, section 7): 50 blocks per message, 100 per
modal or Home tab; section text 3000 chars, 10 fields of 2000; header 150 (plain_text); context 10
elements; actions 25 elements; block_id/action_id 255; button text 75; message ``text`` 40,000
(``msg_too_long``); about 12,000 chars of text across a message's blocks (``msg_blocks_too_long``, an
undocumented cap reported in bolt-js#2867); modal title/submit/close 24; private_metadata 3000.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_ID_LENGTH = 255
MAX_BUTTON_TEXT = 75
MAX_MESSAGE_TEXT = 40_000
MAX_MESSAGE_BLOCK_TEXT = 12_000
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000

_TEXT_TYPES = {"plain_text", "mrkdwn"}


@dataclass(frozen=True, slots=True)
class Invalid:
    """A validation failure: Slack's error code plus human-readable ``response_metadata`` messages."""

    error: str
    messages: list[str] = field(default_factory=list)


class _BlockError(Exception):
    pass


def decode_json_field(value: Any) -> Any:
    """Form-encoded requests carry ``blocks``/``view``/``metadata`` as JSON strings; decode those.

    Raises ``ValueError`` when a string is not JSON.
    """
    if isinstance(value, str):
        return json.loads(value)
    return value


def validate_message(text: Any, blocks: Any, *, require_content: bool = True) -> Invalid | None:
    """Check a message's ``text`` and ``blocks`` the way chat.postMessage / chat.update do."""
    if text is not None and not isinstance(text, str):
        return Invalid("invalid_arguments", ["[ERROR] text must be a string"])
    if blocks is not None:
        problem = _validate_blocks(blocks, MAX_MESSAGE_BLOCKS)
        if problem is not None:
            return problem
        total = sum(len(t) for t in _texts(blocks))
        if total > MAX_MESSAGE_BLOCK_TEXT:
            return Invalid("msg_blocks_too_long", [f"[ERROR] blocks hold {total} chars of text"])
    if text is not None and len(text) > MAX_MESSAGE_TEXT:
        return Invalid("msg_too_long")
    if require_content and not text and not blocks:
        return Invalid("no_text")
    return None


def validate_view(view: Any, *, allowed_types: set[str]) -> Invalid | None:
    """Check a view object for ``views.open/update/push`` (modal) or ``views.publish`` (home)."""
    if not isinstance(view, dict):
        return Invalid("invalid_arguments", ["[ERROR] view must be an object"])
    view_type = view.get("type")
    if view_type not in allowed_types:
        return Invalid("invalid_arguments", [f"[ERROR] view type must be one of {sorted(allowed_types)}"])
    problem = _validate_blocks(view.get("blocks"), MAX_VIEW_BLOCKS)
    if problem is not None:
        return problem
    try:
        if view_type == "modal":
            _text_object(view.get("title"), "title", MAX_VIEW_TITLE, plain_only=True)
            for key in ("submit", "close"):
                if view.get(key) is not None:
                    _text_object(view[key], key, MAX_VIEW_TITLE, plain_only=True)
        _max_len(view.get("private_metadata"), "private_metadata", MAX_PRIVATE_METADATA)
        _max_len(view.get("callback_id"), "callback_id", MAX_ID_LENGTH)
        _max_len(view.get("external_id"), "external_id", MAX_ID_LENGTH)
    except _BlockError as exc:
        return Invalid("invalid_arguments", [f"[ERROR] {exc}"])
    return None


def _validate_blocks(blocks: Any, max_blocks: int) -> Invalid | None:
    if not isinstance(blocks, list):
        return Invalid("invalid_blocks", ["[ERROR] blocks must be an array"])
    if len(blocks) > max_blocks:
        return Invalid(
            "invalid_blocks", [f"[ERROR] no more than {max_blocks} items allowed [json-pointer:/blocks]"]
        )
    for index, block in enumerate(blocks):
        try:
            _check_block(block)
        except _BlockError as exc:
            return Invalid("invalid_blocks", [f"[ERROR] {exc} [json-pointer:/blocks/{index}]"])
    return None


def _check_block(block: Any) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str) or not block["type"]:
        raise _BlockError("each block must be an object with a type")
    _max_len(block.get("block_id"), "block_id", MAX_ID_LENGTH)
    kind = block["type"]
    if kind == "section":
        if block.get("text") is None and not block.get("fields"):
            raise _BlockError("section needs text or fields")
        if block.get("text") is not None:
            _text_object(block["text"], "text", MAX_SECTION_TEXT)
        fields = block.get("fields") or []
        if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
            raise _BlockError(f"section fields must be a list of at most {MAX_SECTION_FIELDS}")
        for item in fields:
            _text_object(item, "fields", MAX_FIELD_TEXT)
    elif kind == "header":
        _text_object(block.get("text"), "text", MAX_HEADER_TEXT, plain_only=True)
    elif kind == "context":
        _elements(block, MAX_CONTEXT_ELEMENTS)
    elif kind == "actions":
        for element in _elements(block, MAX_ACTIONS_ELEMENTS):
            _check_element(element)


def _elements(block: dict[str, Any], limit: int) -> list[Any]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= limit:
        raise _BlockError(f"{block['type']} needs 1 to {limit} elements")
    return elements


def _check_element(element: Any) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        raise _BlockError("each element must be an object with a type")
    _max_len(element.get("action_id"), "action_id", MAX_ID_LENGTH)
    if element["type"] == "button":
        _text_object(element.get("text"), "button text", MAX_BUTTON_TEXT, plain_only=True)
        _max_len(element.get("value"), "value", 2000)
        _max_len(element.get("url"), "url", 3000)


def _text_object(obj: Any, name: str, limit: int, *, plain_only: bool = False) -> None:
    if (
        not isinstance(obj, dict)
        or obj.get("type") not in _TEXT_TYPES
        or not isinstance(obj.get("text"), str)
    ):
        raise _BlockError(f"{name} must be a text object")
    if plain_only and obj["type"] != "plain_text":
        raise _BlockError(f"{name} must be plain_text")
    length = len(obj["text"])
    if length == 0:
        raise _BlockError(f"{name} must be more than 0 characters")
    if length > limit:
        raise _BlockError(f"{name} must be less than {limit + 1} characters")


def _max_len(value: Any, name: str, limit: int) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise _BlockError(f"{name} must be a string of at most {limit} characters")


def _texts(node: Any) -> list[str]:
    """Every ``text`` string inside text objects of a block tree (for the cumulative cap)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") in _TEXT_TYPES and isinstance(node.get("text"), str):
            found.append(node["text"])
        for value in node.values():
            if isinstance(value, dict | list):
                found.extend(_texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_texts(item))
    return found
