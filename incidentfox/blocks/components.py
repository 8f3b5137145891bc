"""Small Block Kit builders shared by the renderers; each one clamps its input to Slack's limits.

Text passed to ``section`` and ``context`` is mrkdwn that the caller already made safe (user text
through ``limits.mrkdwn``); these builders only cut it to size. Every mrkdwn object is ``verbatim`` so
Slack does no automatic linking or mention parsing of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from incidentfox.blocks.limits import (
    ACTION_ID_MAX,
    ACTIONS_ELEMENTS_MAX,
    BLOCK_ID_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_VALUE_MAX,
    CONTEXT_ELEMENTS_MAX,
    CONTEXT_TEXT_MAX,
    HEADER_TEXT_MAX,
    SECTION_TEXT_MAX,
    mrkdwn,
    one_line,
    slack_len,
    truncate,
    truncate_mrkdwn,
)

Block = dict[str, Any]
ButtonStyle = Literal["primary", "danger"]

EMPTY_TEXT = "—"
"""Slack rejects empty text objects; this stands in for an empty string."""

_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def _md(text: str, limit: int) -> MarkdownTextObject:
    return MarkdownTextObject(
        text=truncate_mrkdwn(text, limit) if text.strip() else EMPTY_TEXT, verbatim=True
    )


def _plain(text: str, limit: int) -> PlainTextObject:
    flat = one_line(text)
    return PlainTextObject(text=truncate(flat, limit) if flat else EMPTY_TEXT, emoji=True)


def header(text: str) -> Block:
    """A header block; plain text never pings, so ``text`` needs no escaping."""
    return HeaderBlock(text=_plain(text, HEADER_TEXT_MAX)).to_dict()


def section(text: str, *, limit: int = SECTION_TEXT_MAX) -> Block:
    """A section block holding safe mrkdwn ``text``, cut to ``limit`` (at most 3000)."""
    return SectionBlock(text=_md(text, min(limit, SECTION_TEXT_MAX))).to_dict()


def context(*texts: str, limit: int = CONTEXT_TEXT_MAX) -> Block:
    """A context block: small grey mrkdwn lines, at most ten elements."""
    elements = [_md(t, min(limit, CONTEXT_TEXT_MAX)) for t in texts[:CONTEXT_ELEMENTS_MAX]]
    return ContextBlock(elements=elements or [_md(EMPTY_TEXT, 1)]).to_dict()


def divider() -> Block:
    return DividerBlock().to_dict()


def button(text: str, *, action_id: str, value: str, style: ButtonStyle | None = None) -> ButtonElement:
    """A button whose label, action_id and value are clamped to Slack's lengths."""
    return ButtonElement(
        text=_plain(text, BUTTON_TEXT_MAX),
        action_id=action_id[:ACTION_ID_MAX],
        value=value[:BUTTON_VALUE_MAX] or EMPTY_TEXT,
        style=style,
    )


def actions(buttons: Sequence[ButtonElement], *, block_id: str) -> Block:
    """An actions block with at most 25 buttons."""
    return ActionsBlock(
        elements=list(buttons[:ACTIONS_ELEMENTS_MAX]), block_id=block_id[:BLOCK_ID_MAX]
    ).to_dict()


def packed_sections(lines: Iterable[str], *, limit: int = SECTION_TEXT_MAX) -> list[Block]:
    """Safe mrkdwn ``lines`` packed into as few sections as fit ``limit`` each; a long line is cut."""
    limit = min(limit, SECTION_TEXT_MAX)
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        line = truncate_mrkdwn(line, limit)
        cost = slack_len(line) + (1 if chunk else 0)
        if chunk and size + cost > limit:
            blocks.append(section("\n".join(chunk), limit=limit))
            chunk, size = [], 0
            cost = slack_len(line)
        chunk.append(line)
        size += cost
    if chunk:
        blocks.append(section("\n".join(chunk), limit=limit))
    return blocks


def user_ref(user_id: str) -> str:
    """A Slack user mention when ``user_id`` looks like one, otherwise the escaped text."""
    if _SLACK_USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return mrkdwn(one_line(user_id), 80) or "someone"


def code(text: str, limit: int) -> str:
    """Untrusted ``text`` as inline code: one line, escaped, backticks swapped so the span stays closed."""
    flat = one_line(text).replace("`", "ˋ")
    return "`" + mrkdwn(flat, limit) + "`" if flat else EMPTY_TEXT


def elapsed(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``1h 02m``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
