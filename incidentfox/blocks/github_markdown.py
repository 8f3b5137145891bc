"""Comments IncidentFox writes on GitHub: the CI analysis on a pull request, and the answer to a question
asked with the bot's handle. Pure functions: an RCA in, GitHub Markdown out.

An RCA quotes CI logs and comments, which anyone who opens a pull request can write. So prose is
flattened to one line and escaped (no markup, no HTML, no @mention that would notify someone, no
image), links are shown only for plain http(s) URLs, and quoted lines sit in code fences longer than
any backtick run they hold (GitHub renders nothing inside a fence). Every part is bounded, so a
comment stays far below GitHub's 65,536 characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from incidentfox.agents.rca import RootCauseAnalysis

CI_MARKER = "incidentfox:ci-analysis"
"""The hidden marker of the one CI-analysis comment per pull request (edited on later failures)."""
MAX_TEXT = 1_500
MAX_QUOTE = 1_500
MAX_EVIDENCE = 8
MAX_ACTIONS = 6
MAX_CAVEATS = 5
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
_URL = re.compile(r"https?://[^\s<>()\[\]`]+")
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")
_WORD_JOINER = "\u2060"
CONFIDENCE_MARKS = {"high": "🟢 High", "medium": "🟡 Medium", "low": "🔴 Low"}


def answer_marker(comment_id: int) -> str:
    """The hidden marker of the answer to one comment, so a retried delivery never answers twice."""
    return f"incidentfox:answer:{comment_id}"


def md_text(text: str, limit: int = MAX_TEXT) -> str:
    """Untrusted text as one line of literal GitHub Markdown: markup escaped, mentions defused."""
    flat = " ".join(text.split())
    clipped = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return _SPECIAL.sub(r"\\\1", clipped).replace("@", "@" + _WORD_JOINER)


def md_code(text: str, limit: int = MAX_QUOTE) -> str:
    """Untrusted lines in a fence that nothing inside can close."""
    clipped = text if len(text) <= limit else text[: limit - 1] + "…"
    longest = max((len(run) for run in re.findall(r"`+", clipped)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{clipped}\n{fence}"


def md_link(url: str | None, label: str) -> str:
    """``[label](url)`` for a plain http(s) URL; empty otherwise. ``label`` must be safe already."""
    return f"[{label}]({url})" if url and _URL.fullmatch(url) else ""


def mention(login: str | None) -> str:
    """``@login`` for a real GitHub login (it notifies them), else ``someone``."""
    return f"@{login}" if login and _LOGIN.fullmatch(login) else "someone"


def _bullets(items: Sequence[str], prefix: str = "") -> list[str]:
    return [f"- {prefix}{md_text(item)}" for item in items]


def rca_markdown(rca: RootCauseAnalysis | None, error: str | None) -> str:
    """Summary, root cause, evidence, confidence, actions and caveats; or what stopped the analysis."""
    if rca is None:
        return f"IncidentFox could not finish the analysis: {md_text(error or 'unknown error')}"
    parts = [f"**Summary.** {md_text(rca.summary)}", f"**Root cause.** {md_text(rca.root_cause)}"]
    if rca.evidence:
        parts.append("**Evidence**")
        for item in rca.evidence[:MAX_EVIDENCE]:
            link = md_link(item.url, "source")
            parts.append(f"{md_text(item.source, 300)}{' · ' + link if link else ''}\n{md_code(item.quote)}")
    level = CONFIDENCE_MARKS.get(rca.confidence.level, md_text(rca.confidence.level, 20))
    parts.append(f"**Confidence:** {level}. {md_text(rca.confidence.why)}")
    actions = [
        *_bullets(rca.immediate_actions[:MAX_ACTIONS], "Now: "),
        *_bullets(rca.follow_up_actions[:MAX_ACTIONS], "Follow-up: "),
    ]
    if actions:
        parts.append("**Recommended actions**\n" + "\n".join(actions))
    if rca.caveats:
        parts.append("**Caveats**\n" + "\n".join(_bullets(rca.caveats[:MAX_CAVEATS])))
    return "\n\n".join(parts)


def ci_comment(
    *,
    workflow: str,
    run_url: str | None,
    sha: str,
    rca: RootCauseAnalysis | None,
    error: str | None,
) -> str:
    """The CI analysis of a pull request, for ``upsert_marked_comment`` with ``CI_MARKER``."""
    run = md_link(run_url, "workflow run") or "workflow run"
    heading = f"### IncidentFox: {md_text(workflow, 100)} failed"
    footer = (
        f"<sub>Analysis of the latest failed {run} (commit {md_text(sha[:12], 12)}). IncidentFox edits "
        "this comment when CI fails again on this pull request.</sub>"
    )
    return f"<!-- {CI_MARKER} -->\n{heading}\n\n{rca_markdown(rca, error)}\n\n{footer}"


def answer_comment(
    *,
    comment_id: int,
    asker: str | None,
    question_url: str | None,
    rca: RootCauseAnalysis | None,
    error: str | None,
) -> str:
    """IncidentFox's answer to a comment that mentioned it."""
    asked = md_link(question_url, "asked") or "asked"
    return (
        f"<!-- {answer_marker(comment_id)} -->\n{mention(asker)} {asked} IncidentFox:\n\n"
        f"{rca_markdown(rca, error)}"
    )
