"""GitHub-flavoured Markdown, as the SRE agent writes it, turned into Slack ``mrkdwn``.

Claude answers in CommonMark/GFM, but Slack's ``mrkdwn`` is a different dialect: ``*bold*`` instead of
``**bold**``, ``_italic_``, ``~strike~``, links as ``<url|text>``, and no headings or tables. Shown
unconverted, an answer is littered with ``**`` and ``###``. This module is a small line/regex based
converter (no Markdown library is a declared dependency); it is pure and never raises.

The output is *finished* mrkdwn: ``&``, ``<`` and ``>`` are already escaped (existing ``&amp;``,
``&lt;`` and ``&gt;`` are kept, never doubled), and the only raw ``<…>`` left are the links it made and
the Slack tokens the agent wrote itself (``<@U123>``, ``<#C123>``, ``<!here>``, ``<https://x|y>``). So
it must not go through ``limits.mrkdwn``/``escape_mrkdwn`` again, only through ``truncate_mrkdwn``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

RULE = "─" * 20
"""A horizontal rule (``---``); Slack has none in mrkdwn."""

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_RULE_LINE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BULLET = re.compile(r"^(\s*)[-*+](?:[ \t]+(.*))?$")
_TASK = re.compile(r"^\[([ xX])\][ \t]+")
_ORDERED = re.compile(r"^(\s*)(\d{1,9})[.)](?:[ \t]+(.*))?$")
_QUOTE = re.compile(r"^ {0,3}>(?:[ \t]*>)*[ \t]?(.*)$")  # Slack quotes have one level
_SEP_CELL = re.compile(r":?-+:?")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")

_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_SLACK_TOKEN = re.compile(
    r"<(?:@[UW][A-Z0-9]+|#C[A-Z0-9]+|![a-z]+(?:\^[^<>|\s]+)?|(?:https?://|mailto:)[^<>|\s]+)(?:\|[^<>]*)?>"
)
_LINK = re.compile(r"(!?)\[([^\[\]]{0,500})\]\(\s*<?((?:[^\s()<>]|\([^\s()<>]*\))+)>?(?:\s+\"[^\"]*\")?\s*\)")
_BARE_URL = re.compile(r"https?://[^\s<>]*[^\s<>.,;:!?)\]'\"*_~]")
_BACKSLASH = re.compile(r"\\([!-/:-@\[-`{-~])")
_SAFE_URL = re.compile(r"(?:https?://|mailto:)[^\s<>|\"]+")
_SPAN = ".{1,500}?"  # an emphasis span is at most 500 characters, so a stray marker costs linear time
_BOLD_ITALIC = re.compile(rf"\*\*\*(?=\S)({_SPAN})(?<=\S)\*\*\*")
_BOLD = re.compile(rf"\*\*(?=\S)({_SPAN})(?<=\S)\*\*|(?<!\w)__(?=\S)({_SPAN})(?<=\S)__(?!\w)")
_ITALIC = re.compile(rf"(?<![*\w])\*(?=[^\s*])({_SPAN})(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(rf"~~(?=\S)({_SPAN})(?<=\S)~~")
_PAIRED = re.compile(rf"(\*\*|__|~~|`)({_SPAN})\1")
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
_LOOSE_AMP = re.compile(r"&(?!(?:amp|lt|gt);)")
_BOLD_MARK = "\ue002"
_PRIVATE = dict.fromkeys(map(ord, "\ue000\ue001\ue002"))


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack entities; an ``&amp;``/``&lt;``/``&gt;`` already there is kept."""
    return _LOOSE_AMP.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    """``<url|label>`` (``<url>`` without a label) for an http(s)/mailto URL, else just the label."""
    if not _SAFE_URL.fullmatch(url):
        return label
    url = _LOOSE_AMP.sub("&amp;", url)
    return f"<{url}|{label}>" if label else f"<{url}>"


def _inline(text: str) -> str:
    """One line of Markdown inline syntax as mrkdwn, fully escaped."""
    stash: list[str] = []

    def keep(value: str) -> str:
        stash.append(value)
        return f"\ue000{len(stash) - 1}\ue001"

    def restore(value: str) -> str:
        return _PLACEHOLDER.sub(lambda m: restore(stash[int(m[1])]), value)

    def code(m: re.Match[str]) -> str:
        body = m[2]
        if len(body) > 2 and body.startswith(" ") and body.endswith(" ") and body.strip():
            body = body[1:-1]
        return keep(f"`{escape(body)}`")

    def link(m: re.Match[str]) -> str:
        label = escape(_PAIRED.sub(r"\2", restore(m[2])).strip())
        return keep(_link(m[3], label or ("" if m[1] else escape(m[3]))))

    steps: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
        (_CODE_SPAN, code),
        (_LINK, link),
        (_SLACK_TOKEN, lambda m: keep(_LOOSE_AMP.sub("&amp;", m[0]))),
        (_BARE_URL, lambda m: keep(escape(m[0]))),
        (_BACKSLASH, lambda m: keep(escape(m[1]))),
    ]
    for pattern, replace in steps:
        text = pattern.sub(replace, text)
    text = _BOLD_ITALIC.sub(rf"{_BOLD_MARK}_\1_{_BOLD_MARK}", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m[1] or m[2]}{_BOLD_MARK}", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    return restore(escape(text).replace(_BOLD_MARK, "*"))


def _line(line: str) -> str:
    """One line outside code blocks and tables: heading, rule, list item, quote or paragraph text."""
    if m := _HEADING.match(line):
        title = (m[2] or "").strip()
        closed = title.rstrip("#")
        if not closed or closed[-1] in " \t":  # an optional closing run of #s
            title = closed.strip()
        title = _PAIRED.sub(lambda p: p[0] if p[1] == "`" else p[2], title)
        return f"*{_inline(title)}*" if title else ""
    if _RULE_LINE.match(line):
        return RULE
    if m := _QUOTE.match(line):
        inner = _line(m[1])
        return f"> {inner}" if inner else ">"
    if m := _BULLET.match(line):
        item = m[2] or ""
        if task := _TASK.match(item):
            item = ("☑ " if task[1] in "xX" else "☐ ") + item[task.end() :]
        return f"{m[1]}• {_inline(item)}".rstrip()
    if m := _ORDERED.match(line):
        return f"{m[1]}{m[2]}. {_inline(m[3] or '')}".rstrip()
    indent = line[: len(line) - len(line.lstrip())]
    return indent + _inline(line.strip().removesuffix("\\").rstrip())


def _cells(row: str) -> list[str]:
    """The cells of a table row; outer pipes are optional and ``\\|`` is a literal pipe."""
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(row)]


def _plain_cell(cell: str) -> str:
    """A table cell as plain text (it is shown inside a code block, where nothing is formatted)."""
    cell = _LINK.sub(lambda m: f"{m[2]} ({m[3]})" if m[2] else m[3], cell)
    return _BACKSLASH.sub(r"\1", _PAIRED.sub(r"\2", cell))


def _width(text: str) -> int:
    """Columns ``text`` takes in a monospace font: wide (CJK, emoji) characters take two."""
    shown = re.sub(r"&(?:amp|lt|gt);", "&", text)
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in shown
    )


def _table(header: str, separator: str, rows: list[str]) -> list[str]:
    """A GFM table as an aligned code block; columns keep their ``:--:`` alignment."""
    aligns = ["right" if s.endswith(":") and not s.startswith(":") else "left" for s in _cells(separator)]
    grid = [[_plain_cell(c) for c in _cells(r)] for r in [header, *rows]]
    grid = [(r + [""] * len(aligns))[: len(aligns)] for r in grid]
    widths = [max(_width(r[i]) for r in grid) for i in range(len(aligns))]

    def render(row: list[str]) -> str:
        padded = []
        for cell, width, align in zip(row, widths, aligns, strict=True):
            pad = " " * (width - _width(cell))
            padded.append(pad + cell if align == "right" else cell + pad)
        return escape(" | ".join(padded).rstrip())

    rule = "-+-".join("-" * w for w in widths)
    return ["```", render(grid[0]), rule, *(render(r) for r in grid[1:]), "```"]


def _is_table_start(lines: list[str], i: int) -> bool:
    """A GFM table: a row of cells, then a ``|---|:--:|`` row with as many cells."""
    return (
        "|" in lines[i]
        and i + 1 < len(lines)
        and "|" in lines[i + 1]
        and all(_SEP_CELL.fullmatch(cell) for cell in _cells(lines[i + 1]))
        and len(_cells(lines[i])) == len(_cells(lines[i + 1]))
    )


def markdown_to_mrkdwn(text: str) -> str:
    """The agent's Markdown ``text`` as escaped Slack mrkdwn, ready for a section's raw text."""
    lines = text.translate(_PRIVATE).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if fence := _FENCE.match(line):
            mark = fence[1]
            if mark[0] == "`" and "`" in fence[2]:
                out.append(_line(line))
                i += 1
                continue
            out.append("```")
            i += 1
            closing = re.compile(rf"^\s*{re.escape(mark[0])}{{{len(mark)},}}[ \t]*$")
            while i < len(lines) and not closing.match(lines[i]):
                out.append(escape(lines[i]))
                i += 1
            out.append("```")
            i += 1
        elif _is_table_start(lines, i):
            rows: list[str] = []
            j = i + 2
            while j < len(lines) and lines[j].strip() and "|" in lines[j]:
                rows.append(lines[j])
                j += 1
            out.extend(_table(lines[i], lines[i + 1], rows))
            i = j
        else:
            out.append(_line(line.rstrip()))
            i += 1
    return "\n".join(out).strip("\n")
