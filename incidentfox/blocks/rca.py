"""The final message of a run: the root-cause analysis with feedback buttons, or a plain failure notice.

Each part of the RCA has its own share of the 12k text budget, so a 10 KB root cause cannot push the
recommended actions out of the message; what does not fit is in the "View session" modal, which
renders the same parts with the ``FULL`` budgets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from incidentfox.agents.rca import Evidence, FirstFindingCheck, RootCauseAnalysis
from incidentfox.blocks.components import Block, actions, button, context, header, section
from incidentfox.blocks.limits import (
    FALLBACK_TEXT_MAX,
    SECTION_TEXT_MAX,
    VIEW_SESSION_LABEL,
    fit_message,
    mrkdwn,
    one_line,
    slack_len,
    split_mrkdwn,
    truncate_mrkdwn,
)
from incidentfox.blocks.slack_markdown import markdown_to_mrkdwn

ACTION_FEEDBACK_UP = "feedback_up"
ACTION_FEEDBACK_DOWN = "feedback_down"
ACTION_VIEW_SESSION = "run_view_session"
ACTION_FOLLOW_UP = "run_follow_up"
ACTION_DIG_DEEPER = "run_dig_deeper"
DIG_DEEPER_LABEL = "🛠️ Dig deeper in a sandbox"
FEEDBACK_BLOCK_ID = "run_feedback"

CONFIDENCE: dict[str, tuple[str, str]] = {
    "high": ("🟢", "High"),
    "medium": ("🟡", "Medium"),
    "low": ("🔴", "Low"),
}

FIRST_FINDING_VERDICTS: dict[str, tuple[str, str]] = {
    "confirmed": ("✅", "First finding confirmed"),
    "overturned": ("🔄", "First finding overturned"),
}

_SAFE_URL = re.compile(r"https?://[^\s<>|\"]{1,1000}")
_QUOTE_LINES = 12


@dataclass(frozen=True, slots=True)
class RcaBudget:
    """How much of each RCA part to show; a message gets ``MESSAGE``, the session modal ``FULL``."""

    summary: int
    root_cause: int
    evidence_items: int
    evidence_quote: int
    evidence_total: int
    why: int
    action_items: int
    action_item: int
    caveat_items: int


MESSAGE = RcaBudget(
    summary=1000,
    root_cause=2500,
    evidence_items=6,
    evidence_quote=400,
    evidence_total=3000,
    why=500,
    action_items=6,
    action_item=250,
    caveat_items=4,
)
FULL = RcaBudget(
    summary=SECTION_TEXT_MAX,
    root_cause=3 * SECTION_TEXT_MAX,
    evidence_items=40,
    evidence_quote=1500,
    evidence_total=8 * SECTION_TEXT_MAX,
    why=1500,
    action_items=20,
    action_item=500,
    caveat_items=10,
)


def _link(url: str | None, label: str) -> str:
    """``<url|label>`` for a plain http(s) URL; anything else is shown as the label alone."""
    if url is None or not _SAFE_URL.fullmatch(url):
        return label
    return f"<{url.replace('&', '&amp;')}|{label}>"


def evidence_line(evidence: Evidence, *, quote_limit: int) -> str:
    """The quoted line as a code block (backticks swapped so it stays closed) and its source."""
    lines = evidence.quote.replace("`", "ˋ").strip("\n").splitlines()[:_QUOTE_LINES]
    quote = mrkdwn("\n".join(line.rstrip() for line in lines), quote_limit) or "—"
    source = _link(evidence.url, mrkdwn(one_line(evidence.source), 150) or "unknown source")
    return f"```{quote}```\n— _{source}_"


def _evidence_blocks(evidence: Sequence[Evidence], budget: RcaBudget) -> list[Block]:
    shown: list[str] = []
    used = 0
    for item in evidence[: budget.evidence_items]:
        line = evidence_line(item, quote_limit=budget.evidence_quote)
        if used + slack_len(line) > budget.evidence_total:
            break
        shown.append(line)
        used += slack_len(line) + 2
    hidden = len(evidence) - len(shown)
    if hidden:
        shown.append(f"_…and {hidden} more in {VIEW_SESSION_LABEL}_")
    chunks = _pack(["*Evidence*", *shown])
    return [section(chunk) for chunk in chunks]


def _pack(parts: Sequence[str], separator: str = "\n\n") -> list[str]:
    """Join ``parts`` with ``separator`` into chunks that each fit one section."""
    chunks: list[str] = []
    for part in parts:
        if chunks and slack_len(chunks[-1]) + len(separator) + slack_len(part) <= SECTION_TEXT_MAX:
            chunks[-1] += separator + part
        else:
            chunks.append(truncate_mrkdwn(part, SECTION_TEXT_MAX))
    return chunks


def _items(items: Sequence[str], budget: RcaBudget, *, numbered: bool) -> list[str]:
    lines = [
        f"{f'{n}.' if numbered else '•'} {mrkdwn(one_line(item), budget.action_item)}"
        for n, item in enumerate(items[: budget.action_items], start=1)
    ]
    if len(items) > budget.action_items:
        lines.append(f"_…and {len(items) - budget.action_items} more_")
    return lines


def _actions_section(rca: RootCauseAnalysis, budget: RcaBudget) -> list[Block]:
    if not rca.immediate_actions and not rca.follow_up_actions:
        return []
    lines = ["*Recommended actions*"]
    if rca.immediate_actions:
        lines += ["*Immediate*", *_items(rca.immediate_actions, budget, numbered=True)]
    if rca.follow_up_actions:
        lines += ["*Follow-up*", *_items(rca.follow_up_actions, budget, numbered=False)]
    return [section(chunk) for chunk in _pack(lines, "\n")]


def _first_finding_verdict(check: FirstFindingCheck | None, budget: RcaBudget) -> list[Block]:
    """Whether the investigation confirmed or overturned the first finding the live message showed."""
    if check is None:
        return []
    icon, label = FIRST_FINDING_VERDICTS.get(str(check.verdict), ("🩺", "First finding"))
    text = f"*{icon} {label}*"
    if check.finding.strip():
        text += f" ({mrkdwn(one_line(check.finding), budget.action_item)})"
    if check.why.strip():
        text += ": " + mrkdwn(check.why, budget.why)
    return [section(text)]


def rca_blocks(rca: RootCauseAnalysis, budget: RcaBudget = MESSAGE) -> list[Block]:
    """The RCA's parts as blocks, without header or buttons (shared with the session modal)."""
    blocks = [section("*Summary*\n" + mrkdwn(rca.summary, budget.summary))]
    root_cause = split_mrkdwn(mrkdwn(rca.root_cause, budget.root_cause), SECTION_TEXT_MAX - 20)
    blocks.append(section("*Root cause*\n" + root_cause[0]))
    blocks.extend(section(chunk) for chunk in root_cause[1:])
    if rca.evidence:
        blocks.extend(_evidence_blocks(rca.evidence, budget))
    icon, level = CONFIDENCE.get(str(rca.confidence.level), ("⚪", "Unknown"))
    confidence = f"*Confidence:* {icon} {level}"
    if rca.confidence.why.strip():
        confidence += " — " + mrkdwn(rca.confidence.why, budget.why)
    blocks.append(section(confidence))
    blocks.extend(_first_finding_verdict(rca.first_finding, budget))
    blocks.extend(_actions_section(rca, budget))
    if rca.caveats:
        caveats = ["*Caveats*", *_items(rca.caveats[: budget.caveat_items], budget, numbered=False)]
        if len(rca.caveats) > budget.caveat_items:
            caveats.append(f"_…and {len(rca.caveats) - budget.caveat_items} more_")
        blocks.extend(section(chunk) for chunk in _pack(caveats, "\n"))
    return blocks


def _feedback_actions(run_id: str, *, dig_deeper: bool = False) -> Block:
    buttons = [
        button("👍 Helpful", action_id=ACTION_FEEDBACK_UP, value=run_id),
        button("👎 Not helpful", action_id=ACTION_FEEDBACK_DOWN, value=run_id),
        button(VIEW_SESSION_LABEL, action_id=ACTION_VIEW_SESSION, value=run_id),
        button("Ask a follow-up", action_id=ACTION_FOLLOW_UP, value=run_id),
    ]
    if dig_deeper:
        buttons.append(button(DIG_DEEPER_LABEL, action_id=ACTION_DIG_DEEPER, value=run_id))
    return actions(buttons, block_id=FEEDBACK_BLOCK_ID)


def render_rca(rca: RootCauseAnalysis, *, run_id: str, dig_deeper: bool = False) -> list[Block]:
    """The final message: header, the RCA's parts, then feedback / View session / follow-up buttons
    (and "Dig deeper in a sandbox" when the SRE agent is on)."""
    blocks = [
        header("🔎 Root-cause analysis"),
        *rca_blocks(rca),
        _feedback_actions(run_id, dig_deeper=dig_deeper),
    ]
    return fit_message(blocks)


def rca_text(rca: RootCauseAnalysis) -> str:
    """Fallback ``text``: the summary with its confidence."""
    _, level = CONFIDENCE.get(str(rca.confidence.level), ("⚪", "Unknown"))
    summary = mrkdwn(one_line(rca.summary), FALLBACK_TEXT_MAX) or "see the thread"
    return truncate_mrkdwn(f"🔎 Root cause ({level.lower()} confidence): {summary}", FALLBACK_TEXT_MAX)


ANSWER_MAX = 3 * SECTION_TEXT_MAX
ANSWER_HEADER = "🛠️ SRE agent"


def render_answer(answer: str, *, run_id: str) -> list[Block]:
    """The final message of an SRE agent turn: the agent's own answer as it wrote it (it is not an
    RCA, so it gets no empty RCA sections), with the same buttons as an RCA."""
    return fit_message([header(ANSWER_HEADER), *answer_blocks(answer), _feedback_actions(run_id)])


_BROADCAST = re.compile(r"<!(here|channel|everyone|subteam\^[A-Z0-9]+)(?:\|([^>]*))?>")


def _no_broadcasts(text: str) -> str:
    """``@here``/``@channel``/group pings as plain words: the agent's answer can be steered by what its
    tools read, so it must not page a whole channel."""
    return _BROADCAST.sub(lambda m: "@" + (m.group(2) or m.group(1)).removeprefix("@"), text)


def answer_blocks(answer: str) -> list[Block]:
    """The SRE agent's answer (Markdown, as Claude writes it) as Slack mrkdwn sections, shared with the
    session modal. ``markdown_to_mrkdwn`` escapes by itself, so the text skips ``mrkdwn()``."""
    converted = _no_broadcasts(markdown_to_mrkdwn(answer[: 2 * ANSWER_MAX]))
    body = truncate_mrkdwn(converted, ANSWER_MAX) or "_The agent finished without a written answer._"
    return [section(chunk) for chunk in split_mrkdwn(body, SECTION_TEXT_MAX - 20)]


def answer_text(answer: str) -> str:
    """Fallback ``text`` for an SRE agent answer."""
    said = mrkdwn(one_line(answer), FALLBACK_TEXT_MAX) or "see the thread"
    return truncate_mrkdwn(f"{ANSWER_HEADER}: {said}", FALLBACK_TEXT_MAX)


ERROR_HINT = (
    "What you can do: press *Ask a follow-up* to try again, or open *View session* to see which steps ran. "
    "If it keeps failing, check the team's integration settings (`integrations` in its config)."
)


def render_error(message: str, *, run_id: str) -> list[Block]:
    """The final message of a failed run: what happened in plain words and what to do next."""
    detail = mrkdwn(message, 2000) if message.strip() else "Something went wrong on our side."
    buttons = [
        button(VIEW_SESSION_LABEL, action_id=ACTION_VIEW_SESSION, value=run_id),
        button("Ask a follow-up", action_id=ACTION_FOLLOW_UP, value=run_id),
    ]
    blocks = [
        section(f"❌ *The investigation could not finish.*\n{detail}"),
        context(ERROR_HINT),
        actions(buttons, block_id=FEEDBACK_BLOCK_ID),
    ]
    return fit_message(blocks)


def error_text(message: str) -> str:
    """Fallback ``text`` for a failed run."""
    detail = mrkdwn(one_line(message), 500)
    return truncate_mrkdwn(f"❌ The investigation could not finish. {detail}".rstrip(), FALLBACK_TEXT_MAX)
