"""Slack's Block Kit limits, and the pure helpers that keep rendered output inside them.

Sources: docs.slack.dev/reference/block-kit, ``slack_sdk.models`` validators and design §8
(see /work/shared/reference/slack-platform-facts.md §7). Lengths are measured with ``slack_len``:
UTF-16 code units, which is never less than the code-point count Slack may use, so a text that
fits by our count fits by Slack's.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

MAX_BLOCKS_PER_MESSAGE = 50
MAX_BLOCKS_PER_VIEW = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELD_TEXT_MAX = 2000
SECTION_FIELDS_MAX = 10
HEADER_TEXT_MAX = 150
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3000
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
BUTTON_URL_MAX = 3000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
MODAL_TITLE_MAX = 24
MODAL_BUTTON_TEXT_MAX = 24
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255

MESSAGE_TEXT_BUDGET = 12_000
"""Total text across a message's blocks; Slack answers ``msg_blocks_too_long`` near 12k (design §8)."""

FALLBACK_TEXT_MAX = 3000
"""Top-level ``text`` (notifications, screen readers). Slack truncates at 40,000; a notice needs far less."""

VIEW_JSON_BUDGET = 200_000
"""Serialized size budget for a modal's blocks: Slack rejects views over 250 kB (``view_too_large``)."""

ELLIPSIS = "…"
VIEW_SESSION_LABEL = "View session"

_ZWJ = "\u200d"
_WORD_JOINER = "\u2060"
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")


def slack_len(text: str) -> int:
    """Length as Slack may count it: UTF-16 code units (an emoji outside the BMP counts as two)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _extends_previous(ch: str) -> bool:
    """True when ``ch`` belongs to the grapheme before it (combining mark, ZWJ, variation selector…)."""
    code = ord(ch)
    return (
        ch == _ZWJ
        or unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
        or 0xE0100 <= code <= 0xE01EF
    )


def _safe_cut(text: str, cut: int) -> int:
    """Move ``cut`` left until it does not split a grapheme (emoji sequence, flag, accent, CRLF)."""
    while 0 < cut < len(text) and (
        _extends_previous(text[cut]) or text[cut - 1] == _ZWJ or (text[cut - 1] == "\r" and text[cut] == "\n")
    ):
        cut -= 1
    if 0 < cut < len(text) and _is_regional(text[cut]):
        run = 0
        while cut - run - 1 >= 0 and _is_regional(text[cut - run - 1]):
            run += 1
        if run % 2 == 1:
            cut -= 1
    return cut


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _prefix_within(text: str, budget: int) -> int:
    """The largest code-point index whose prefix has ``slack_len`` ≤ ``budget``."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > budget:
            return index
    return len(text)


def truncate(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` (by ``slack_len``), ending in ``marker`` when anything was cut.

    The cut never splits a character, an emoji sequence or a combining accent from its letter.
    """
    if slack_len(text) <= limit:
        return text
    budget = limit - slack_len(marker)
    if budget <= 0:
        return marker[: _prefix_within(marker, limit)]
    cut = _safe_cut(text, _prefix_within(text, budget))
    return text[:cut].rstrip() + marker


def truncate_mrkdwn(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """Like ``truncate`` for already-escaped mrkdwn: never leaves half an ``&amp;`` or an open ``<link``.

    An open code fence is closed again, so the rest of the message keeps its formatting.
    """
    if slack_len(text) <= limit:
        return text
    fence = "```"
    budget = limit - slack_len(marker) - slack_len(fence) - 1
    if budget <= 0:
        return truncate(text, limit, marker)
    cut = _safe_cut(text, _prefix_within(text, budget))
    head = text[:cut]
    entity = _ENTITY_TAIL.search(head)
    if entity:
        head = head[: entity.start()]
    open_link = head.rfind("<")
    if open_link > head.rfind(">"):
        head = head[:open_link]
    head = head.rstrip() + marker
    if head.count(fence) % 2 == 1:
        head += "\n" + fence
    return head


def split_mrkdwn(text: str, limit: int) -> list[str]:
    """Escaped mrkdwn ``text`` in pieces of at most ``limit`` each, preferring line and word breaks.

    No piece ends inside an ``&amp;`` entity or a grapheme; an empty text gives one empty piece.
    """
    pieces: list[str] = []
    start = 0
    while True:
        window = text[start : start + limit + 1]
        if start + len(window) >= len(text) and slack_len(window) <= limit:
            pieces.append(window)
            return pieces
        cut = _safe_cut(window, _prefix_within(window, limit))
        entity = _ENTITY_TAIL.search(window[:cut])
        if entity and entity.start() > 0:
            cut = entity.start()
        soft = max(window.rfind("\n", 0, cut), window.rfind(" ", 0, cut))
        if soft > cut // 2:
            cut = soft
        cut = max(cut, 1)
        pieces.append(window[:cut].rstrip())
        start += cut
        while start < len(text) and text[start].isspace():
            start += 1


def escape_mrkdwn(text: str) -> str:
    """Escape user or model text for mrkdwn so it renders literally and can never ping anyone.

    Slack requires ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;`` and ``&gt;``; that alone disarms
    ``<!channel>``, ``<@U123>`` and forged ``<url|label>`` links. A word joiner after the ``@`` of a bare
    ``@channel``/``@here``/``@everyone`` keeps clients that parse those (``link_names``) from pinging.
    """
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: "@" + _WORD_JOINER + m.group(1), escaped)


def mrkdwn(text: str, limit: int) -> str:
    """Untrusted ``text`` escaped for mrkdwn and cut to ``limit`` without breaking an entity.

    Escaping only lengthens text, so the raw text is pre-cut just past ``limit`` before escaping: a long
    tool output costs the same as a short one.
    """
    return truncate_mrkdwn(escape_mrkdwn(text[: limit + 2]), limit)


def one_line(text: str) -> str:
    """All whitespace runs (newlines included) collapsed to single spaces, for timeline lines."""
    return " ".join(text.split())


def _text_objects(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node["text"]
            return
        for value in node.values():
            yield from _text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item)


def block_text_length(block: dict[str, Any]) -> int:
    """Total ``slack_len`` of every text object in ``block`` (sections, fields, headers, buttons…)."""
    return sum(slack_len(text) for text in _text_objects(block))


def _overflow_notice(hidden: int, where: str) -> dict[str, Any]:
    text = f"{ELLIPSIS}and {hidden} more item{'s' if hidden != 1 else ''} {where}"
    return ContextBlock(elements=[MarkdownTextObject(text=text)]).to_dict()


def _fit(
    blocks: Sequence[dict[str, Any]],
    *,
    max_blocks: int,
    budget: int,
    measure: Callable[[dict[str, Any]], int],
    where: str,
) -> list[dict[str, Any]]:
    """Keep blocks in order while they fit; always keep ``actions`` blocks (the buttons) when possible.

    Once one content block is dropped every later content block is dropped too, so the reader never
    sees a gap; a context block at that spot says how much is missing and where to find it.
    """
    notice = _overflow_notice(len(blocks), where)
    if len(blocks) <= max_blocks and sum(measure(b) for b in blocks) <= budget:
        return list(blocks)
    sizes = [measure(b) for b in blocks]
    is_action = [b.get("type") == "actions" for b in blocks]
    reserved_count = 1 + sum(is_action)
    reserved_size = measure(notice) + sum(s for s, a in zip(sizes, is_action, strict=True) if a)
    if reserved_count > max_blocks or reserved_size > budget:
        reserved_count, reserved_size = 1, measure(notice)
        is_action = [False] * len(blocks)
    kept: list[dict[str, Any]] = []
    notice_at: int | None = None
    hidden = 0
    count, size = reserved_count, reserved_size
    for block, block_size, action in zip(blocks, sizes, is_action, strict=True):
        if action:
            kept.append(block)
        elif notice_at is None and count + 1 <= max_blocks and size + block_size <= budget:
            kept.append(block)
            count += 1
            size += block_size
        else:
            if notice_at is None:
                notice_at = len(kept)
            hidden += 1
    if notice_at is not None:
        kept.insert(notice_at, _overflow_notice(hidden, where))
    return kept


def fit_message(blocks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cap a message at 50 blocks and ``MESSAGE_TEXT_BUDGET`` characters of text.

    Overflow is replaced by a final context block pointing at the "View session" modal. Blocks must
    already respect their own per-block limits (the renderers guarantee that).
    """
    return _fit(
        blocks,
        max_blocks=MAX_BLOCKS_PER_MESSAGE,
        budget=MESSAGE_TEXT_BUDGET,
        measure=block_text_length,
        where=f"did not fit in this message; the rest is in *{VIEW_SESSION_LABEL}*.",
    )


def _json_size(block: dict[str, Any]) -> int:
    return len(json.dumps(block))


def fit_view(blocks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cap a modal or Home tab at 100 blocks and ``VIEW_JSON_BUDGET`` bytes of serialized blocks."""
    return _fit(
        blocks,
        max_blocks=MAX_BLOCKS_PER_VIEW,
        budget=VIEW_JSON_BUDGET,
        measure=_json_size,
        where="not shown; Slack shows at most 100 blocks in a view.",
    )
