"""The slack toolset: what the team's Slack channels say about an incident: recent discussion found by
Slack search, a thread read in full, a channel's recent messages, and IncidentFox's own earlier
investigations (their RCA summary and where to read them).

Every tool takes the run's ``SlackClient`` (``slack_api.connect``) and reads only the team's channels
(``routing.slack_channel_ids`` and ``integrations.slack.channels``). ``slack_search_messages`` uses
Slack's ``search.messages`` when the team set a user token (``integrations.slack.user_token``, with
``search:read``: bot tokens cannot search); without one it reads the channels' history in the window
and matches the words itself, and says so in ``method``. Results are compact rows (RFC3339 time,
channel, author, trimmed text, permalink, thread) from ``slack_views``, capped with a count of what was
left out; a refusal from Slack is one plain sentence (``SlackError``); nothing found is ``no_data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from incidentfox.agents.toolsets.base import ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.prometheus_views import Row, capped, iso, parse_time, short
from incidentfox.agents.toolsets.query_tools import (
    TIME_FORMATS,
    StrictParams,
    checked_query,
    end_field,
    invalid_params,
    typed_tool,
)
from incidentfox.agents.toolsets.slack_api import SlackClient, SlackError, check_health, connect
from incidentfox.agents.toolsets.slack_views import (
    SearchQuery,
    channel_ref,
    is_incident_root,
    match_row,
    message_row,
    parse_permalink,
    parse_query,
    permalink,
    rca_parts,
    run_state,
    slack_ts,
    ts_datetime,
    user_ref,
)

SEARCH_WINDOW = timedelta(days=14)
HISTORY_WINDOW = timedelta(hours=24)
INCIDENT_WINDOW = timedelta(days=90)
SEARCH_COUNT = 100
"""Matches asked of ``search.messages`` at once (Slack's maximum page)."""
HISTORY_PAGE = 200
MAX_HISTORY = 1000
"""Messages read per channel when matching words without Slack search."""
MAX_RESULTS = 50
MAX_THREAD = 100
MAX_THREADS_READ = 25
"""Threads opened by slack_past_incidents, newest first."""
HEALTH_TIMEOUT_S = 5.0


def _check_limit(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_RESULTS:
        raise ValueError(f"limit must be between 1 and {MAX_RESULTS}")
    return value


Limit = Annotated[int | None, AfterValidator(_check_limit)]


def _start_field(default: str) -> Any:
    return Field(default=None, description=f"Window start: {TIME_FORMATS}. Null for {default} before end.")


class SearchParams(StrictParams):
    query: Annotated[str, AfterValidator(checked_query)] = Field(
        description='Words or "quoted phrases", with Slack modifiers if useful: in:#channel, from:@user, '
        "after:2026-01-30, before:2026-02-01. Example: checkout timeout in:#incidents."
    )
    start: str | None = _start_field("14 days")
    end: str | None = end_field()
    limit: Limit = Field(
        default=None, description=f"Most messages to return, 1 to {MAX_RESULTS}; null for 20."
    )


class ThreadParams(StrictParams):
    permalink: str | None = Field(
        default=None,
        description="A message's Slack link (https://….slack.com/archives/C…/p…); or give both "
        "channel and ts.",
    )
    channel: str | None = Field(default=None, description="The channel: an id (C0123…) or #name.")
    ts: str | None = Field(
        default=None, pattern=r"^\d{9,11}\.\d{6}$", description="The thread's ts, e.g. 1767225600.000100."
    )


class HistoryParams(StrictParams):
    channel: str = Field(description="One of the team's channels: an id (C0123…) or #name.")
    start: str | None = _start_field("24 hours")
    end: str | None = end_field()
    limit: Limit = Field(
        default=None, description=f"Most messages to return, 1 to {MAX_RESULTS}; null for 30."
    )


class PastIncidentsParams(StrictParams):
    query: str | None = Field(
        default=None,
        description="Words an earlier incident's title, summary or root cause must contain; null for all.",
    )
    start: str | None = _start_field("90 days")
    end: str | None = end_field()
    limit: Limit = Field(
        default=None, description=f"Most incidents to return, 1 to {MAX_RESULTS}; null for 10."
    )


def _window(start: str | None, end: str | None, default: timedelta) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    end_at = parse_time(end, now=now, default=now)
    start_at = parse_time(start, now=now, default=end_at - default)
    if start_at >= end_at:
        raise ValueError(f"start ({iso(start_at)}) must be before end ({iso(end_at)})")
    return start_at, end_at


def _span(start: datetime, end: datetime) -> str:
    return f"from {iso(start)} to {iso(end)}"


async def _names(client: SlackClient, channels: list[str] | tuple[str, ...]) -> str:
    return ", ".join([await client.channel_name(c) for c in channels])


async def _resolve(client: SlackClient, raw: str) -> str:
    """The id of one of the team's channels named by ``raw`` (id, ``<#C…>`` or ``#name``); a
    ``SlackError`` naming the team's channels otherwise."""
    ref = channel_ref(raw)
    for channel in client.channels:
        if ref in (channel, (await client.channel_name(channel)).lower()):
            return channel
    raise SlackError(
        f"{raw} is not one of this team's Slack channels ({await _names(client, client.channels)}); "
        "only those can be read (routing.slack_channel_ids, integrations.slack.channels)."
    )


async def _workspace_url(client: SlackClient) -> str | None:
    url = (await client.whoami()).get("url")
    return str(url) if url else None


async def _history(
    client: SlackClient, channel: str, start: datetime, end: datetime, *, most: int, metadata: bool = False
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``most`` top-level messages of ``channel`` in the window, newest first, and whether more
    were left unread."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    doing = f"read the history of {await client.channel_name(channel)}"
    while len(found) < most:
        page = await client.call(
            "conversations.history",
            doing,
            channel=channel,
            oldest=slack_ts(start),
            latest=slack_ts(end),
            inclusive=True,
            limit=min(HISTORY_PAGE, most - len(found)),
            cursor=cursor,
            include_all_metadata=True if metadata else None,
        )
        found += [m for m in page.get("messages") or [] if isinstance(m, dict)]
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return found, False
    return found[:most], True


async def search_messages(client: SlackClient, params: SearchParams) -> ToolResult:
    try:
        start, end = _window(params.start, params.end, SEARCH_WINDOW)
    except ValueError as exc:
        return invalid_params(exc)
    query = parse_query(params.query)
    limit = params.limit or 20
    try:
        targets = [await _resolve(client, c) for c in query.channels] or list(client.channels)
        if client.searcher is not None:
            return await _search(client, params.query, targets, start, end, limit)
        return await _match_history(client, params.query, query, targets, start, end, limit)
    except SlackError as exc:
        return ToolResult.failed(str(exc), invocation=f"Slack search {params.query!r} {_span(start, end)}")


async def _search(
    client: SlackClient, text: str, targets: list[str], start: datetime, end: datetime, limit: int
) -> ToolResult:
    days = f"after:{(start - timedelta(days=1)).date().isoformat()} before:{(end + timedelta(days=1)).date()}"
    asked = f"{text} {days}"
    invocation = (
        f"Slack search.messages {asked!r}, kept {_span(start, end)} in {await _names(client, targets)}"
    )
    answer = await client.call(
        "search.messages", "search messages", search=True, query=asked, count=SEARCH_COUNT, sort="timestamp"
    )
    found = answer.get("messages") or {}
    matches = [m for m in found.get("matches") or [] if isinstance(m, dict)]
    ours = [m for m in matches if (m.get("channel") or {}).get("id") in targets]
    rows = [match_row(m) for m in ours if _inside(m.get("ts"), start, end)]
    data: Row = {"method": "search.messages", "slack_total": int(found.get("total") or len(matches))}
    elsewhere = len(matches) - len(ours)
    if elsewhere:
        data["outside_team_channels"] = elsewhere
    if not rows:
        reason = (
            f"Slack search found nothing for {text!r} in {await _names(client, targets)} {_span(start, end)}"
        )
        return ToolResult.no_data(
            f"{reason}; try fewer or other words, or a longer window.", invocation=invocation
        )
    data["count"] = len(rows)
    if data["slack_total"] > SEARCH_COUNT:
        data["read"] = f"the newest {SEARCH_COUNT} of Slack's {data['slack_total']} matches"
    return ToolResult.ok(
        capped(data, "messages", rows, limit, "add words or modifiers to narrow it"), invocation=invocation
    )


async def _match_history(
    client: SlackClient,
    text: str,
    query: SearchQuery,
    targets: list[str],
    start: datetime,
    end: datetime,
    limit: int,
) -> ToolResult:
    names = await _names(client, targets)
    invocation = f"conversations.history of {names} {_span(start, end)}, matching {text!r}"
    users = {user_ref(u).lower() for u in query.users}
    url = await _workspace_url(client)
    rows: list[Row] = []
    unread: list[str] = []
    for channel in targets:
        messages, more = await _history(client, channel, start, end, most=MAX_HISTORY)
        if more:
            unread.append(await client.channel_name(channel))
        for message in messages:
            at = ts_datetime(message.get("ts"))
            if (
                at is None
                or not query.within_days(at)
                or not query.matches_text(str(message.get("text") or ""))
            ):
                continue
            if users and not await _written_by(client, message, users):
                continue
            link = permalink(url, channel, str(message["ts"]))
            rows.append(message_row(message, channel, await client.channel_name(channel), link))
    method = (
        "channel history (no user token, so not Slack search: thread replies are not read; set "
        "integrations.slack.user_token with search:read for Slack's search)"
    )
    if not rows:
        return ToolResult.no_data(
            f"No top-level message in {names} {_span(start, end)} contains {text!r} (read with {method}).",
            invocation=invocation,
        )
    rows.sort(key=lambda r: r["ts"], reverse=True)
    data: Row = {"method": method, "count": len(rows)}
    if unread:
        data["unread"] = f"only the newest {MAX_HISTORY} messages of {', '.join(unread)} were read"
    return ToolResult.ok(
        capped(data, "messages", rows, limit, "add words or shorten the window"), invocation=invocation
    )


async def _written_by(client: SlackClient, message: Mapping[str, Any], users: set[str]) -> bool:
    """Whether a ``from:`` of the query (an id or a handle, lower-cased) names the message's author."""
    author = str(message.get("user") or "")
    return bool(author) and (author.lower() in users or (await client.user_name(author)).lower() in users)


def _without(row: Row, *keys: str) -> Row:
    """A row of a one-channel answer: the channel is said once, beside the rows."""
    return {k: v for k, v in row.items() if k not in ("channel", "channel_id", *keys)}


def _inside(ts: Any, start: datetime, end: datetime) -> bool:
    at = ts_datetime(ts)
    return at is not None and start <= at <= end


async def thread(client: SlackClient, params: ThreadParams) -> ToolResult:
    if params.permalink:
        parsed = parse_permalink(params.permalink)
        if parsed is None:
            return ToolResult.failed(
                "That is not a Slack message link (…/archives/C…/p…); give channel and ts."
            )
        raw_channel, ts, thread_ts = parsed
        ts = thread_ts or ts
    elif params.channel and params.ts:
        raw_channel, ts = params.channel, params.ts
    else:
        return ToolResult.failed("Give the thread's permalink, or both channel and ts.")
    invocation = f"conversations.replies of {raw_channel} thread {ts}"
    try:
        channel = await _resolve(client, raw_channel)
        name = await client.channel_name(channel)
        invocation = f"conversations.replies of {name} thread {ts}"
        answer = await client.call(
            "conversations.replies", "read the thread", channel=channel, ts=ts, limit=MAX_THREAD
        )
        url = await _workspace_url(client)
    except SlackError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    messages = [m for m in answer.get("messages") or [] if isinstance(m, dict)][:MAX_THREAD]
    if not messages:
        return ToolResult.no_data(f"The thread {ts} in {name} has no messages.", invocation=invocation)
    rows = [
        _without(message_row(m, channel, name, permalink(url, channel, str(m.get("ts")), ts)), "thread_ts")
        for m in messages
    ]
    replies = int(messages[0].get("reply_count") or len(messages) - 1)
    data: Row = {
        "channel": name,
        "channel_id": channel,
        "thread_ts": ts,
        "replies": replies,
        "messages": rows,
    }
    if answer.get("has_more"):
        data["messages_omitted"] = max(replies + 1 - len(rows), 1)
        data["note"] = f"Showing the first {len(rows)} messages of the thread."
    return ToolResult.ok(data, invocation=invocation, url=permalink(url, channel, ts))


async def channel_history(client: SlackClient, params: HistoryParams) -> ToolResult:
    try:
        start, end = _window(params.start, params.end, HISTORY_WINDOW)
    except ValueError as exc:
        return invalid_params(exc)
    limit = params.limit or 30
    invocation = f"conversations.history of {params.channel} {_span(start, end)} (newest {limit})"
    try:
        channel = await _resolve(client, params.channel)
        name = await client.channel_name(channel)
        invocation = f"conversations.history of {name} {_span(start, end)} (newest {limit})"
        messages, more = await _history(client, channel, start, end, most=limit)
        url = await _workspace_url(client)
    except SlackError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    if not messages:
        return ToolResult.no_data(f"Nobody wrote in {name} {_span(start, end)}.", invocation=invocation)
    rows = [
        _without(message_row(m, channel, name, permalink(url, channel, str(m.get("ts"))))) for m in messages
    ]
    data: Row = {"channel": name, "channel_id": channel, "count": len(rows), "messages": rows}
    if more:
        data["note"] = (
            f"Showing the newest {limit}; there are older messages in the window, shorten it to see them."
        )
    return ToolResult.ok(data, invocation=invocation)


async def past_incidents(client: SlackClient, params: PastIncidentsParams) -> ToolResult:
    try:
        start, end = _window(params.start, params.end, INCIDENT_WINDOW)
    except ValueError as exc:
        return invalid_params(exc)
    query = parse_query(params.query or "")
    limit = params.limit or 10
    matching = f" matching {params.query!r}" if params.query else ""
    invocation = f"IncidentFox threads{matching} in the team's channels {_span(start, end)}"
    try:
        me = await client.whoami()
        bot_user = me.get("user_id") if client.reader_kind == "bot" else None
        url = str(me.get("url") or "") or None
        candidates: list[tuple[str, dict[str, Any]]] = []
        for channel in client.channels:
            messages, _ = await _history(client, channel, start, end, most=MAX_HISTORY, metadata=True)
            candidates += [(channel, m) for m in messages if _may_hold_a_run(m, bot_user)]
        candidates.sort(key=lambda item: float(item[1].get("ts") or 0), reverse=True)
        incidents = []
        for channel, root in candidates[:MAX_THREADS_READ]:
            row = await _incident(client, channel, root, url)
            if row is not None and query.matches_text(" ".join(str(v) for v in row.values())):
                incidents.append(row)
    except SlackError as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    if not incidents:
        return ToolResult.no_data(
            f"No earlier IncidentFox investigation{matching} in {await _names(client, client.channels)} "
            f"{_span(start, end)}.",
            invocation=invocation,
        )
    data: Row = {"threads_read": min(len(candidates), MAX_THREADS_READ), "count": len(incidents)}
    if len(candidates) > MAX_THREADS_READ:
        data["unread_threads"] = len(candidates) - MAX_THREADS_READ
    return ToolResult.ok(
        capped(data, "incidents", incidents, limit, "add words or shorten the window"), invocation=invocation
    )


def _may_hold_a_run(message: Mapping[str, Any], bot_user: Any) -> bool:
    """A top-level message that is, or opens a thread that may hold, an IncidentFox run."""
    if is_incident_root(message) or run_state(message):
        return True
    repliers = message.get("reply_users") or []
    return bool(message.get("reply_count")) and (bot_user is None or bot_user in repliers)


async def _incident(client: SlackClient, channel: str, root: dict[str, Any], url: str | None) -> Row | None:
    """An earlier investigation as a row: its latest RCA (else its latest run message) and its links;
    ``None`` when the thread holds no run and is no incident."""
    root_ts = str(root.get("ts") or "")
    thread = [root]
    if root.get("reply_count"):
        answer = await client.call(
            "conversations.replies",
            "read an earlier thread",
            channel=channel,
            ts=root_ts,
            limit=200,
            include_all_metadata=True,
        )
        thread = [m for m in answer.get("messages") or [] if isinstance(m, dict)] or [root]
    runs = [m for m in thread if run_state(m)]
    if not runs and not is_incident_root(root):
        return None
    finals = [m for m in runs if run_state(m) == "rca"] or runs
    row: Row = {
        "time": iso(float(root_ts)),
        "channel": await client.channel_name(channel),
        "title": short(root.get("text"), 200),
        "thread_ts": root_ts,
        "runs": len(runs),
    }
    if not finals:
        row["state"] = "not investigated"
        row["permalink"] = permalink(url, channel, root_ts)
        return row
    latest = finals[-1]
    row["state"] = run_state(latest)
    row.update(rca_parts(latest))
    if row["state"] != "rca":
        row["text"] = short(latest.get("text"), 300)
    row["permalink"] = permalink(url, channel, str(latest.get("ts") or root_ts), root_ts)
    return row


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    return await check_health(config, timeout_s=HEALTH_TIMEOUT_S)


INSTRUCTIONS = """You read what the team said in its Slack channels, and IncidentFox's earlier
investigations there. Start with slack_past_incidents (words from the alert or service name) to see
whether this happened before and what the root cause was then; open a promising one with slack_thread
(its permalink). Use slack_search_messages for recent human discussion: words or "quoted phrases"
such as the service, an error message or a deploy, with Slack modifiers (in:#channel, from:@user) and a
window around the incident. Check `method` in its answer: without a user token it only matches
top-level messages. slack_channel_history shows the latest messages of one channel (deploy
announcements, on-call chatter). Only the team's own channels can be read. Quote a message with its
time, channel and permalink as evidence; what people said is a lead to verify, not proof."""

SLACK = Toolset(
    name="slack",
    description="The team's Slack channels: search for related discussion, read threads and recent "
    "messages, and find IncidentFox's earlier investigations with their root cause.",
    instructions=INSTRUCTIONS,
    connect=connect,
    prerequisites=("integrations.slack",),
    health_check=health,
    tools=(
        typed_tool(
            "slack_past_incidents",
            "Earlier IncidentFox investigations in the team's channels (default the last 90 days), newest "
            "first: the incident or question, the RCA's summary, root cause and confidence, and a permalink.",
            PastIncidentsParams,
            past_incidents,
        ),
        typed_tool(
            "slack_search_messages",
            "Search the team's Slack channels (default the last 14 days) for words or phrases, with Slack "
            "modifiers in:#channel, from:@user, after:, before:. Messages newest first with time, channel, "
            "author, text, permalink and thread.",
            SearchParams,
            search_messages,
        ),
        typed_tool(
            "slack_thread",
            f"Read one Slack thread (its permalink, or channel and ts): the parent and up to {MAX_THREAD} "
            "messages in order.",
            ThreadParams,
            thread,
        ),
        typed_tool(
            "slack_channel_history",
            "The latest messages of one of the team's channels in a window (default the last 24 hours), "
            "newest first, with reply counts.",
            HistoryParams,
            channel_history,
        ),
    ),
)
