"""Every rendered message and view stays inside Slack's limits, whatever the agent or user wrote."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from incidentfox.agents.events import (
    ApprovalRequest,
    Error,
    Interrupted,
    ProgressEvent,
    Question,
    Result,
    Resumed,
    Started,
    SubagentEnd,
    SubagentStart,
    Thought,
    ToolEnd,
    ToolStart,
)
from incidentfox.agents.rca import Confidence, Evidence, RootCauseAnalysis
from incidentfox.blocks.limits import (
    ELLIPSIS,
    escape_mrkdwn,
    fit_message,
    fit_view,
    slack_len,
    split_mrkdwn,
    truncate,
    truncate_mrkdwn,
)
from incidentfox.blocks.progress import progress_text, render_progress
from incidentfox.blocks.rca import error_text, rca_text, render_error, render_rca
from incidentfox.blocks.session import render_session_view
from incidentfox.blocks.timeline import RunState

HOSTILE = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "@channel",
    "@here",
    "<@U024BE7LH>",
    "&<>",
    "&amp;",
    "`",
    "```",
]
PIECES = [
    *HOSTILE,
    "x",
    " ",
    "\n",
    "é",
    "e\u0301",
    "🇺🇸",
    "👩\u200d👩\u200d👧",
    "👍🏽",
    "日本",
    "*_~",
    "|",
    "\U0001f525",
]

hostile_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
    st.builds(lambda piece, n: piece * n, st.sampled_from(PIECES), st.integers(0, 4000)),
)
short = st.one_of(st.text(max_size=20), st.sampled_from(HOSTILE))
times = st.integers(1_700_000_000, 1_700_100_000).map(float)
call_ids = st.sampled_from(["c1", "c2", "c3"])
agents = st.sampled_from(["planner", "kubernetes", "logs", "<!channel>"])

evidence = st.builds(
    Evidence,
    quote=hostile_text,
    source=hostile_text,
    url=st.one_of(
        st.none(), st.sampled_from(["https://x.example/a?b=1&c=<2>", "javascript:alert(1)"]), short
    ),
)
rcas = st.builds(
    RootCauseAnalysis,
    summary=hostile_text,
    root_cause=hostile_text,
    evidence=st.lists(evidence, max_size=60).map(tuple),
    confidence=st.builds(Confidence, level=st.sampled_from(["high", "medium", "low"]), why=hostile_text),
    immediate_actions=st.lists(hostile_text, max_size=30).map(tuple),
    follow_up_actions=st.lists(hostile_text, max_size=30).map(tuple),
    caveats=st.lists(hostile_text, max_size=30).map(tuple),
)
events_strategy = st.one_of(
    st.builds(Started, summary=hostile_text, at=times),
    st.builds(Thought, text=hostile_text, agent=agents, at=times),
    st.builds(
        ToolStart,
        call_id=call_ids,
        tool=short,
        args=st.dictionaries(short, hostile_text, max_size=4),
        agent=agents,
        at=times,
    ),
    st.builds(
        ToolEnd,
        call_id=call_ids,
        tool=short,
        status=st.sampled_from(["ok", "error", "no_data", "approval_required", "odd"]),
        summary=hostile_text,
        agent=agents,
        at=times,
    ),
    st.builds(SubagentStart, agent=agents, task=hostile_text, at=times),
    st.builds(SubagentEnd, agent=agents, summary=hostile_text, at=times),
    st.builds(Question, text=hostile_text, at=times),
    st.builds(
        ApprovalRequest,
        approval_id=hostile_text,
        action=hostile_text,
        target=hostile_text,
        reason=hostile_text,
        at=times,
    ),
    st.builds(Interrupted, by=st.one_of(st.just("U024BE7LH"), short), at=times),
    st.builds(Resumed, by=short, at=times),
    st.builds(Result, rca=rcas, at=times),
    st.builds(Error, message=hostile_text, at=times),
)
event_lists = st.one_of(
    st.lists(events_strategy, max_size=300),
    st.builds(
        lambda few, n: (few * n)[:300], st.lists(events_strategy, min_size=1, max_size=6), st.integers(1, 300)
    ),
)
ALL_STATES: tuple[RunState, ...] = ("running", "interrupted", "done", "failed")
states = st.sampled_from(ALL_STATES)

ALLOWED_ANGLE = re.compile(r"<@[UW][A-Z0-9]+>|<https?://[^\s<>|]+\|[^<>]*>")
BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
PROFILE = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def text_objects(node: Any) -> list[dict[str, Any]]:
    """Every text object in a Block Kit structure."""
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
            return [node]
        return [t for value in node.values() for t in text_objects(value)]
    if isinstance(node, list):
        return [t for item in node for t in text_objects(item)]
    return []


def assert_cannot_ping(text: str) -> None:
    assert "<!" not in text
    assert not BROADCAST.search(text)
    assert re.sub(ALLOWED_ANGLE, "", text).count("<") == 0, text


def assert_blocks_within_limits(blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()  # slack_sdk's own validators
        kind = block["type"]
        if kind == "section":
            assert 0 < slack_len(block["text"]["text"]) <= 3000
        elif kind == "header":
            assert 0 < slack_len(block["text"]["text"]) <= 150
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            for element in block["elements"]:
                assert 0 < slack_len(element["text"]["text"]) <= 75
                assert len(element["action_id"]) <= 255
                assert 0 < len(element["value"]) <= 2000
        assert len(block.get("block_id", "")) <= 255
    for obj in text_objects(blocks):
        assert obj["text"], "Slack rejects empty text"
        if obj["type"] == "mrkdwn":
            assert_cannot_ping(obj["text"])
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))


def assert_message_within_limits(blocks: list[dict[str, Any]], text: str) -> None:
    assert 0 < len(blocks) <= 50
    assert_blocks_within_limits(blocks)
    assert sum(slack_len(t["text"]) for t in text_objects(blocks)) <= 12_000
    assert 0 < slack_len(text) <= 3000
    assert_cannot_ping(text)


def assert_view_within_limits(view: dict[str, Any]) -> None:
    assert view["type"] == "modal"
    assert 0 < slack_len(view["title"]["text"]) <= 24
    assert 0 < len(view["blocks"]) <= 100
    assert len(json.dumps(view)) <= 250_000
    assert_blocks_within_limits(view["blocks"])


@PROFILE
@given(events=event_lists, state=states, run_id=short, title=hostile_text)
def test_progress_message_respects_limits_for_any_events(
    events: list[ProgressEvent], state: RunState, run_id: str, title: str
) -> None:
    blocks = render_progress(events, run_id=run_id, title=title, state=state)
    assert_message_within_limits(blocks, progress_text(events, title=title, state=state))


@PROFILE
@given(rca=rcas, run_id=short)
def test_rca_message_respects_limits_for_any_rca(rca: RootCauseAnalysis, run_id: str) -> None:
    assert_message_within_limits(render_rca(rca, run_id=run_id), rca_text(rca))


@PROFILE
@given(message=hostile_text, run_id=short)
def test_error_message_respects_limits(message: str, run_id: str) -> None:
    assert_message_within_limits(render_error(message, run_id=run_id), error_text(message))


@PROFILE
@given(events=event_lists, run_id=short, title=hostile_text)
def test_session_view_respects_limits_for_any_events(
    events: list[ProgressEvent], run_id: str, title: str
) -> None:
    assert_view_within_limits(render_session_view(events, run_id=run_id, title=title))


def worst_case_rca() -> RootCauseAnalysis:
    noise = "<!channel> &<> @here "
    return RootCauseAnalysis(
        summary=noise * 200,
        root_cause=noise * 500,  # ~10 KB
        evidence=tuple(Evidence(quote=f"{noise} line {i}", source=noise, url=None) for i in range(500)),
        confidence=Confidence("medium", noise * 100),
        immediate_actions=tuple(noise * 20 for _ in range(50)),
        follow_up_actions=tuple(noise * 20 for _ in range(50)),
        caveats=tuple(noise * 20 for _ in range(50)),
    )


def worst_case_events() -> list[ProgressEvent]:
    noise = "<!channel> &<> " * 50
    events: list[ProgressEvent] = [Started(summary=noise, at=0.0)]
    for i in range(150):
        events.append(ToolStart(call_id=str(i), tool=noise, args={"q": noise}, at=float(i)))
        events.append(ToolEnd(call_id=str(i), tool=noise, status="ok", summary=noise, at=float(i) + 0.5))
    events.append(Result(rca=worst_case_rca(), at=400.0))
    return events


def test_worst_case_run_fits_every_surface() -> None:
    events = worst_case_events()
    assert len(events) > 300
    for state in ALL_STATES:
        blocks = render_progress(events, run_id="r1", title="<!channel> " * 100, state=state)
        assert_message_within_limits(blocks, progress_text(events, title="t", state=state))
    rca = worst_case_rca()
    rca_blocks = render_rca(rca, run_id="r1")
    assert_message_within_limits(rca_blocks, rca_text(rca))
    assert rca_blocks[-1]["block_id"] == "run_feedback", "buttons survive the overflow"
    assert_view_within_limits(render_session_view(events, run_id="r1", title="<!channel> " * 10))


def test_hidden_evidence_points_to_view_session() -> None:
    rendered = json.dumps(render_rca(worst_case_rca(), run_id="r1"), ensure_ascii=False)
    assert "more in View session" in rendered


def test_escape_turns_mentions_into_literal_text() -> None:
    assert escape_mrkdwn("<!channel> & <@U024BE7LH>") == "&lt;!channel&gt; &amp; &lt;@U024BE7LH&gt;"
    assert "<" not in escape_mrkdwn("<https://evil.example|click me>")
    assert not BROADCAST.search(escape_mrkdwn("hey @channel and @HERE and @everyone"))
    assert escape_mrkdwn("@channelz stays") == "@channelz stays"


def test_rendered_rca_cannot_ping_anyone() -> None:
    rca = RootCauseAnalysis(
        summary="<!channel> db down",
        root_cause="<!here|here> <@U024BE7LH> @everyone",
        caveats=("<!subteam^S1>",),
    )
    for obj in text_objects(render_rca(rca, run_id="<!channel>")):
        assert_cannot_ping(obj["text"])
    assert_cannot_ping(rca_text(rca))


def test_interrupt_mention_is_rendered_but_not_in_fallback_text() -> None:
    events: list[ProgressEvent] = [Started(summary="s", at=0.0), Interrupted(by="U024BE7LH", at=1.0)]
    blocks = render_progress(events, run_id="r1", title="t", state="interrupted")
    assert "<@U024BE7LH>" in json.dumps(blocks)
    assert "<@" not in progress_text(events, title="t", state="interrupted")


@settings(deadline=None)
@given(text=hostile_text, limit=st.integers(1, 5000))
def test_truncate_fits_and_keeps_graphemes_whole(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    assert slack_len(cut) <= limit
    if slack_len(text) <= limit:
        assert cut == text
    else:
        assert cut.endswith(ELLIPSIS) or limit < len(ELLIPSIS)
        body = cut.removesuffix(ELLIPSIS)
        assert text.startswith(body.rstrip())
        assert not body.endswith("\u200d")


def test_truncate_does_not_split_emoji_sequences_or_accents() -> None:
    family = "👩\u200d👩\u200d👧"
    assert truncate("ab" + family, 5) == "ab…"
    assert truncate("e\u0301e\u0301e\u0301", 4) == "e\u0301…"
    assert truncate("🇺🇸🇫🇷", 6) == "🇺🇸…"


@settings(deadline=None)
@given(raw=hostile_text, limit=st.integers(10, 3000))
def test_truncate_mrkdwn_never_leaves_half_an_entity(raw: str, limit: int) -> None:
    cut = truncate_mrkdwn(escape_mrkdwn(raw), limit)
    assert slack_len(cut) <= limit
    assert re.sub(r"&(amp|lt|gt);", "", cut).count("&") == 0
    assert "<" not in cut


@settings(deadline=None)
@given(raw=hostile_text, limit=st.integers(20, 3000))
def test_split_mrkdwn_pieces_fit_and_keep_entities(raw: str, limit: int) -> None:
    pieces = split_mrkdwn(escape_mrkdwn(raw), limit)
    for piece in pieces:
        assert slack_len(piece) <= limit
        assert re.sub(r"&(amp|lt|gt);", "", piece).count("&") == 0


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_fit_message_caps_blocks_and_keeps_buttons_last() -> None:
    buttons = {"type": "actions", "block_id": "b", "elements": []}
    fitted = fit_message([*(_section(f"step {i}") for i in range(80)), buttons])
    assert len(fitted) == 50
    assert fitted[-1] is buttons
    assert "the rest is in *View session*" in fitted[-2]["elements"][0]["text"]
    assert fitted[-2]["elements"][0]["text"].startswith("…and 32 more items")


def test_fit_message_caps_total_text() -> None:
    fitted = fit_message([_section("x" * 2900) for _ in range(10)])
    total = sum(slack_len(t["text"]) for t in text_objects(fitted))
    assert total <= 12_000
    assert [b["type"] for b in fitted] == ["section"] * 4 + ["context"]


def test_fit_message_leaves_small_messages_alone() -> None:
    blocks = [_section("a"), _section("b")]
    assert fit_message(blocks) == blocks


def test_fit_view_caps_at_100_blocks() -> None:
    fitted = fit_view([_section(str(i)) for i in range(250)])
    assert len(fitted) == 100
    assert fitted[-1]["type"] == "context"
    assert fitted[98]["text"]["text"] == "98"
