"""The root message of a GitHub thread: a failed CI run, or a question asked on a pull request or issue.

``state`` is what ``IncidentThread.state`` keeps for a ``github:{owner/repo}#{number}`` thread (or
the thread of a failed run that belongs to no pull request):

- ``kind``: ``ci_failure`` or ``conversation``;
- ``repo``, ``number`` (the pull request or issue, if any), ``is_pull``, ``subject`` (its title);
- for a failed run: ``workflow``, ``conclusion``, ``branch``, ``sha``, ``actor``, ``url`` (the run);
- for a conversation: ``author`` (who asked first) and ``url`` (the pull request or issue).

Every value comes from a webhook, so all of it is escaped; links are shown only when they are http(s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from incidentfox.blocks.components import Block, context, header, section
from incidentfox.blocks.incident import field_text, safe_link
from incidentfox.blocks.limits import escape_mrkdwn, one_line

CONCLUSIONS = {
    "failure": "❌ Failed",
    "timed_out": "⏱️ Timed out",
    "startup_failure": "⚠️ Failed to start",
}


def _where(state: Mapping[str, Any]) -> str:
    """``acme/shop PR #12``, ``acme/shop issue #7`` or ``acme/shop main`` (plain text)."""
    repo = str(state.get("repo") or "a repository")
    number = state.get("number")
    if number not in (None, ""):
        return f"{repo} {'PR' if state.get('is_pull', True) else 'issue'} #{number}"
    branch = state.get("branch")
    return f"{repo} {branch}" if branch else repo


def github_title(state: Mapping[str, Any]) -> str:
    """``CI failed: CI on acme/shop PR #12``, or ``GitHub: acme/shop PR #12`` for a conversation."""
    if state.get("kind") == "ci_failure":
        return one_line(f"CI failed: {state.get('workflow') or 'a workflow'} on {_where(state)}")
    return one_line(f"GitHub: {_where(state)}")


def _code(value: Any) -> str:
    """A webhook value shown inside backticks (a backtick of its own would end them)."""
    return field_text(value, 100).replace("`", "'")


def _ci_facts(state: Mapping[str, Any]) -> list[str]:
    conclusion = str(state.get("conclusion") or "failure")
    facts = [f"*Conclusion:* {CONCLUSIONS.get(conclusion, field_text(conclusion))}"]
    if state.get("subject"):
        facts.append(f"*Title:* {field_text(state['subject'])}")
    code = [
        f"*{label}:* `{_code(state[key])}`"
        for label, key in (("Branch", "branch"), ("Commit", "sha"))
        if state.get(key)
    ]
    if code:
        facts.append(" · ".join(code))
    if state.get("actor"):
        facts.append(f"*Triggered by:* {field_text(state['actor'], 100)}")
    return facts


def _conversation_facts(state: Mapping[str, Any]) -> list[str]:
    facts = []
    if state.get("subject"):
        facts.append(f"*Title:* {field_text(state['subject'])}")
    if state.get("author"):
        facts.append(f"*Asked by:* {field_text(state['author'], 100)}")
    return facts or ["A question was asked on GitHub."]


def render_github_root(state: Mapping[str, Any]) -> list[Block]:
    """Header, the run's or the conversation's details, and a context line with the link."""
    failed = state.get("kind") == "ci_failure"
    facts = _ci_facts(state) if failed else _conversation_facts(state)
    link = safe_link(state.get("url"), "Open the run on GitHub" if failed else "Open on GitHub")
    footer = (
        "IncidentFox investigates it in this thread."
        if failed
        else "IncidentFox answers in this thread and on GitHub."
    )
    return [
        header(github_title(state)),
        section("\n".join(facts)),
        context(f"{link} · {footer}" if link else footer),
    ]


def github_root_text(state: Mapping[str, Any]) -> str:
    """The notification text of the root message, escaped (names and titles come from the webhook)."""
    return escape_mrkdwn(github_title(state))
