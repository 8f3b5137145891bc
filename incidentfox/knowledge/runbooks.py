"""Reading an uploaded markdown runbook into titled passages, or refusing it with the reason.

A runbook is split at its ``#``/``##``/``###`` headings (never inside a fenced code block), so that a
search finds the section that answers. Its title is the ``title:`` of a YAML front matter block, else
its first heading, else its file name. A document that cannot be read as a runbook is refused with one
plain sentence: bytes that are not UTF-8 text, a binary file, an empty or heading-only document, a
front matter block that is not closed or not ``key: value`` lines, or one larger than ``MAX_BYTES``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_BYTES = 512 * 1024
MAX_PATH = 300
PASSAGE_CHARS = 2400
"""A section longer than this is cut at paragraph breaks into several passages of one section."""
MIN_WORDS = 3

_HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_FRONT_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:(\s.*)?$")
_PATH = re.compile(r"^[\w][\w .\-/]*$")


class UnreadableRunbook(ValueError):
    """The document is not a runbook this knowledge base can read; ``str()`` says why, for its sender."""


@dataclass(frozen=True, slots=True)
class Passage:
    section: str
    text: str


@dataclass(frozen=True, slots=True)
class Runbook:
    path: str
    title: str
    url: str | None
    passages: tuple[Passage, ...]


def checked_path(path: object) -> str:
    """The runbook's path as it is cited (``runbooks/postgres-failover.md``); ``UnreadableRunbook`` when
    it is not a plain relative path."""
    if not isinstance(path, str) or not path.strip():
        raise UnreadableRunbook("give the runbook's path, such as runbooks/postgres-failover.md")
    text = path.strip().strip("/")
    if len(text) > MAX_PATH or not _PATH.match(text) or ".." in PurePosixPath(text).parts:
        raise UnreadableRunbook(
            f"the path {path[:80]!r} is not a plain relative path of letters, digits, '-', '_', '.' and '/' "
            f"(at most {MAX_PATH} characters)"
        )
    return text


def decoded(raw: bytes) -> str:
    """The upload as text; ``UnreadableRunbook`` for binary or non-UTF-8 bytes or an oversized file."""
    if len(raw) > MAX_BYTES:
        raise UnreadableRunbook(f"it is {len(raw)} bytes; a runbook may be at most {MAX_BYTES} bytes")
    if b"\x00" in raw:
        raise UnreadableRunbook("it is a binary file (it contains NUL bytes), not markdown text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableRunbook(
            f"it is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8 markdown"
        ) from None


def parse_runbook(path: str, content: str) -> Runbook:
    """The runbook's title and passages; ``UnreadableRunbook`` with the reason when it has none."""
    if len(content.encode("utf-8")) > MAX_BYTES:
        raise UnreadableRunbook(f"it is larger than {MAX_BYTES} bytes")
    if "\x00" in content:
        raise UnreadableRunbook("it is a binary file (it contains NUL bytes), not markdown text")
    meta, body = _front_matter(content.replace("\r\n", "\n").replace("\r", "\n"))
    sections = _sections(body)
    title = meta.get("title") or next((s for s, _ in sections if s), "") or PurePosixPath(path).stem
    passages = tuple(
        Passage(section=heading, text=piece)
        for heading, text in sections
        for piece in _pieces(text)
        if len(re.findall(r"\w+", piece)) >= MIN_WORDS
    )
    if not passages:
        raise UnreadableRunbook(
            "it has no text to search: write at least a sentence under a heading, not only headings, "
            "front matter or whitespace"
        )
    return Runbook(path=path, title=title[:200], url=meta.get("url") or None, passages=passages)


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """``key: value`` lines between ``---`` fences at the very top (the subset runbooks use)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() in ("---", "..."))
    except StopIteration:
        raise UnreadableRunbook(
            "its front matter starts with '---' on the first line but is never closed by another '---'"
        ) from None
    meta: dict[str, str] = {}
    for number, line in enumerate(lines[1:end], start=2):
        if not line.strip() or line.lstrip().startswith("#") or line.startswith((" ", "\t", "- ")):
            continue
        if not _FRONT_KEY.match(line):
            raise UnreadableRunbook(
                f"line {number} of its front matter is not a 'key: value' line: {line.strip()[:60]!r}"
            )
        key, _, value = line.partition(":")
        meta[key.strip().lower()] = value.strip().strip("'\"")
    return meta, "\n".join(lines[end + 1 :])


def _sections(body: str) -> list[tuple[str, str]]:
    """``(heading, text)`` in order; text before the first heading has the heading ``""``."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        found = None if fenced else _HEADING.match(line)
        if found:
            sections.append((found.group(2).strip(), []))
        else:
            sections[-1][1].append(line)
    return [(heading, "\n".join(lines).strip()) for heading, lines in sections if heading or any(lines)]


def _pieces(text: str) -> list[str]:
    if len(text) <= PASSAGE_CHARS:
        return [text]
    pieces: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", text):
        if current and len(current) + len(paragraph) > PASSAGE_CHARS:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
        while len(current) > PASSAGE_CHARS:
            pieces.append(current[:PASSAGE_CHARS])
            current = current[PASSAGE_CHARS:]
    if current:
        pieces.append(current)
    return pieces
