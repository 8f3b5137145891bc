"""Pure functions for the slack toolset: Slack's query modifiers, timestamps and permalinks, messages as
the compact rows the tools return, and how IncidentFox's own run messages are recognised.

IncidentFox marks what it posts with Slack message metadata: an incident's thread root carries
``incidentfox_incident`` and every run's message (posted as "Investigating…", edited into the RCA)
``incidentfox_run``. Without metadata (a message from an older version, a history read without
``include_all_metadata``) a bot message is recognised by the fallback text ``blocks/rca.py`` and
``blocks/progress.py`` write: "🔎 Root cause (high confidence): …", "🔍 Investigating…: …".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from incidentfox.agents.progress_marker import RUN_EVENT_TYPE
from incidentfox.agents.toolsets.prometheus_views import Row, iso, short

ROOT_EVENT_TYPE = "incidentfox_incident"
"""``incidents.threads.ROOT_EVENT_TYPE``, spelt out: importing that module would bring the run engine
(config service, database) into every toolset import. A test holds the two equal."""
TEXT_MAX = 400
_TERM = re.compile(r'(\w+):("[^"]*"|\S+)|"([^"]*)"|(\S+)')
_PERMALINK = re.compile(r"/archives/([CGD][A-Z0-9]+)/p(\d{10})(\d{6})")
_THREAD_TS = re.compile(r"[?&]thread_ts=(\d+\.\d+)")
_CHANNEL_REF = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>")
_USER_REF = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
RUN_STATES = (
    ("🔎 Root cause", "rca"),
    ("🛠️ SRE agent", "answer"),
    ("🔍 Investigating", "investigating"),
    ("⏸️ Interrupted", "interrupted"),
    ("✅ Investigation complete", "done"),
    ("❌", "failed"),
)


@dataclass(slots=True)
class SearchQuery:
    """A Slack search query taken apart: words and phrases, ``in:`` channels, ``from:`` users and the
    days of ``after:``/``before:``/``on:`` (Slack excludes the day named by ``after`` and ``before``)."""

    terms: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    after: date | None = None
    before: date | None = None
    on: date | None = None

    def matches_text(self, text: str) -> bool:
        lowered = text.lower()
        return all(term in lowered for term in self.terms)

    def within_days(self, at: datetime) -> bool:
        day = at.astimezone(UTC).date()
        if self.on is not None and day != self.on:
            return False
        if self.after is not None and day <= self.after:
            return False
        return self.before is None or day < self.before


def parse_query(text: str) -> SearchQuery:
    """``'"connection refused" in:#checkout from:@alice after:2026-01-31'`` taken apart; a modifier
    Slack does not know stays a word."""
    query = SearchQuery()
    for modifier, value, phrase, word in _TERM.findall(text):
        name, value = modifier.lower(), value.strip('"')
        day = _day(value) if name in ("after", "before", "on") else None
        if name == "in":
            query.channels.append(value)
        elif name == "from":
            query.users.append(value)
        elif day is not None:
            setattr(query, name, day)
        else:
            term = phrase or word or f"{modifier}:{value}"
            if term.strip():
                query.terms.append(term.strip().lower())
    return query


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def channel_ref(text: str) -> str:
    """``<#C0123|ops>`` or ``C0123`` → ``C0123``; ``#ops`` or ``ops`` → ``#ops`` (a name to look up)."""
    text = text.strip()
    found = _CHANNEL_REF.fullmatch(text)
    if found:
        return found.group(1)
    bare = text.removeprefix("#")
    if re.fullmatch(r"[CGD][A-Z0-9]{2,30}", bare):
        return bare
    return f"#{bare.lower()}"


def user_ref(text: str) -> str:
    """``<@U0123>``, ``U0123`` → ``U0123``; ``@alice`` → ``alice``."""
    text = text.strip()
    found = _USER_REF.fullmatch(text)
    if found:
        return found.group(1)
    return text.removeprefix("@")


def slack_ts(at: datetime) -> str:
    """``at`` as a Slack timestamp (``oldest``/``latest`` of the history methods)."""
    return f"{at.timestamp():.6f}"


def ts_time(ts: Any) -> str:
    """A Slack timestamp as RFC3339 (``""`` when it is not one)."""
    try:
        return iso(float(ts))
    except (TypeError, ValueError):
        return ""


def ts_datetime(ts: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def parse_permalink(link: str) -> tuple[str, str, str | None] | None:
    """A message permalink's channel, message ts and thread ts (for a reply), or ``None``."""
    found = _PERMALINK.search(link)
    if not found:
        return None
    thread = _THREAD_TS.search(link)
    return found.group(1), f"{found.group(2)}.{found.group(3)}", thread.group(1) if thread else None


def permalink(workspace_url: str | None, channel: str, ts: str, thread_ts: str | None = None) -> str | None:
    """Slack's permalink of a message (as ``chat.getPermalink`` writes it) from the workspace URL."""
    if not workspace_url or not workspace_url.startswith("https://"):
        return None
    link = f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel}"
    return link


def thread_of(message: Mapping[str, Any]) -> str:
    """The ts of the thread a message is in, or its own ts (a thread's parent or a lone message)."""
    return str(message.get("thread_ts") or message.get("ts") or "")


def message_row(message: Mapping[str, Any], channel: str, name: str, link: str | None) -> Row:
    """One message as the tools show it: time, channel, author, text and where to read it."""
    row: Row = {
        "time": ts_time(message.get("ts")),
        "channel": name,
        "channel_id": channel,
        "user": str(message.get("user") or message.get("bot_id") or message.get("username") or ""),
        "text": short(message.get("text"), TEXT_MAX),
        "ts": str(message.get("ts") or ""),
        "thread_ts": thread_of(message),
    }
    if message.get("username"):
        row["username"] = str(message["username"])
    if message.get("reply_count"):
        row["replies"] = int(message["reply_count"])
    if link:
        row["permalink"] = link
    return row


def match_row(match: Mapping[str, Any]) -> Row:
    """A ``search.messages`` match as a row; the thread comes from its permalink."""
    found = match.get("channel")
    channel: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    channel_id = str(channel.get("id") or "")
    name = f"#{channel['name']}" if channel.get("name") else channel_id
    link = str(match.get("permalink") or "")
    parsed = parse_permalink(link)
    row = message_row(match, channel_id, name, link or None)
    row["thread_ts"] = (parsed[2] if parsed and parsed[2] else None) or str(match.get("ts") or "")
    return row


def metadata_type(message: Mapping[str, Any]) -> str | None:
    metadata = message.get("metadata")
    return str(metadata.get("event_type")) if isinstance(metadata, Mapping) else None


def is_incident_root(message: Mapping[str, Any]) -> bool:
    """The root message IncidentFox posted for a PagerDuty or incident.io incident."""
    return metadata_type(message) == ROOT_EVENT_TYPE


def run_state(message: Mapping[str, Any]) -> str | None:
    """What an IncidentFox run message says (``rca``, ``investigating``, ``failed``…), or ``None`` when
    the message is not one."""
    marked = metadata_type(message) == RUN_EVENT_TYPE
    if not marked and not message.get("bot_id"):
        return None
    text = str(message.get("text") or "")
    for prefix, state in RUN_STATES:
        if text.startswith(prefix):
            return state
    return "other" if marked else None


def rca_parts(message: Mapping[str, Any]) -> Row:
    """The summary, root cause and confidence of an RCA message, read from its blocks (falling back
    to its text, "🔎 Root cause (high confidence): summary")."""
    parts: Row = {}
    for block in message.get("blocks") or []:
        text = ((block or {}).get("text") or {}).get("text") if isinstance(block, Mapping) else None
        if not isinstance(text, str):
            continue
        for label, key in (("*Summary*\n", "summary"), ("*Root cause*\n", "root_cause")):
            if text.startswith(label) and key not in parts:
                parts[key] = short(text.removeprefix(label), TEXT_MAX)
        if text.startswith("*Confidence:*") and "confidence" not in parts:
            parts["confidence"] = short(text.removeprefix("*Confidence:*").strip(), 200)
    fallback = re.match(r"🔎 Root cause \((\w+) confidence\): (.*)", str(message.get("text") or ""), re.S)
    if fallback:
        parts.setdefault("confidence", fallback.group(1))
        parts.setdefault("summary", short(fallback.group(2), TEXT_MAX))
    return parts
