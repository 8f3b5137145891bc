"""What a fresh sandbox's agent is told about the conversation its expired predecessor had.

Pure: the stored turns in, one prompt preamble out. The task (the thread's first request) and how
far the conversation got are kept whole; the most recent turns are quoted as they were; everything
between is counted, so the agent knows something happened there without the prompt growing with
the thread. The files are gone, and the preamble says so, so the agent re-creates what it needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from incidentfox.sandboxes.store import Turn

RECENT_TURNS = 8
TURN_CHARS = 1500
TASK_CHARS = 2000


def rehydration_preamble(turns: Sequence[Turn], *, recent: int = RECENT_TURNS) -> str:
    """The preamble for the first turn in a fresh sandbox; empty when there is nothing to restore."""
    if not turns:
        return ""
    first_user = next((t for t in turns if t.role == "user"), None)
    tail = list(turns[-recent:])
    skipped = len(turns) - len(tail) - (1 if first_user is not None and first_user not in tail else 0)
    lines = [
        "This conversation continues in a fresh sandbox: the earlier sandbox expired after a period "
        "without activity and its files (clones, scripts, outputs) are gone. Re-create what you need.",
    ]
    if first_user is not None and first_user not in tail:
        lines += ["", "The original request was:", _quote(first_user.text, TASK_CHARS)]
    if skipped > 0:
        lines += ["", f"({skipped} earlier turns are not repeated here.)"]
    lines += ["", "The most recent turns, oldest first:"]
    for turn in tail:
        lines.append(f"[{turn.role}] {_quote(turn.text, TURN_CHARS)}")
    return "\n".join(lines)


def _quote(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
