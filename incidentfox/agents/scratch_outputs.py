"""The run's scratch space: over-budget tool outputs kept whole, and what the run's tools already answered.

One ``RunScratch`` per run (``InvestigationContext.scratch``), in memory only, shared by the planner and
its sub-agents and emptied when the run's clients are closed. Outputs are kept as the scrubbed text
the model would otherwise have seen, split into lines, under short refs (``out-3``) that the
``search_output`` and ``read_output`` tools take. The space is bounded (``SCRATCH_CAPACITY_BYTES`` of
UTF-8 text per run): the oldest outputs are evicted first, and a ref that was evicted says so.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from incidentfox.agents.toolsets.base import ToolResult

SCRATCH_CAPACITY_BYTES = 50 * 1024 * 1024


def human_size(size: int) -> str:
    """``5.2 MB``, ``310 KB`` or ``87 bytes``: sizes as the model and the timeline are told them."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


@dataclass(frozen=True, slots=True)
class StoredOutput:
    """One kept output: its ref, the tool that produced it, its lines and its size in UTF-8 bytes."""

    ref: str
    tool: str
    lines: list[str]
    size_bytes: int


class OutputUnavailable(LookupError):
    """A ref that is not (or no longer) in the scratch space; ``str()`` is plain words for the model."""


class ScratchSpace:
    """Kept outputs by ref, oldest evicted first once ``capacity_bytes`` would be exceeded."""

    def __init__(self, capacity_bytes: int = SCRATCH_CAPACITY_BYTES) -> None:
        self.capacity_bytes = capacity_bytes
        self._outputs: OrderedDict[str, StoredOutput] = OrderedDict()
        self._evicted: dict[str, StoredOutput] = {}
        self._used = 0
        self._next = 1

    @property
    def used_bytes(self) -> int:
        return self._used

    def keep(self, tool: str, lines: list[str], size_bytes: int) -> StoredOutput | None:
        """Store an output under a new ref; ``None`` when it alone is larger than the whole space."""
        if size_bytes > self.capacity_bytes:
            return None
        while self._outputs and self._used + size_bytes > self.capacity_bytes:
            _, oldest = self._outputs.popitem(last=False)
            self._used -= oldest.size_bytes
            self._evicted[oldest.ref] = StoredOutput(oldest.ref, oldest.tool, [], oldest.size_bytes)
        stored = StoredOutput(f"out-{self._next}", tool, lines, size_bytes)
        self._next += 1
        self._outputs[stored.ref] = stored
        self._used += size_bytes
        return stored

    def find(self, ref: str) -> StoredOutput | None:
        return self._outputs.get(ref)

    def get(self, ref: str) -> StoredOutput:
        """The output kept under ``ref``; ``OutputUnavailable`` says why there is none."""
        ref = ref.strip()
        if ref in self._outputs:
            return self._outputs[ref]
        if ref in self._evicted:
            gone = self._evicted[ref]
            raise OutputUnavailable(
                f"{ref} ({gone.tool}, {human_size(gone.size_bytes)}) was evicted: an investigation keeps "
                f"at most {human_size(self.capacity_bytes)} of outputs and it was the oldest. Run "
                f"{gone.tool} again, with narrower arguments if you can."
            )
        known = ", ".join(self._outputs) or "none yet"
        raise OutputUnavailable(
            f"There is no output {ref!r} in this investigation (kept outputs: {known}). Refs such as "
            "out-3 come from an over-budget tool result of this investigation."
        )

    def clear(self) -> None:
        self._outputs.clear()
        self._evicted.clear()
        self._used = 0


@dataclass(frozen=True, slots=True)
class CachedCall:
    """A finished call the run may answer a repeat from: its number, its (scrubbed) result, the ref its
    output was kept under if it was over budget, and its timeline summary."""

    call: int
    result: ToolResult
    ref: str | None
    summary: str


@dataclass(slots=True)
class RunScratch:
    """Everything the tool adapter remembers for one run.

    ``calls`` numbers the run's tool calls (1, 2, …); ``answered`` maps a call's key (toolset, tool and
    canonical arguments) to the call that answered it; ``secrets_scrubbed`` counts secrets removed from
    the run's tool outputs.
    """

    outputs: ScratchSpace = field(default_factory=ScratchSpace)
    calls: int = 0
    answered: dict[str, CachedCall] = field(default_factory=dict)
    secrets_scrubbed: int = 0
    max_calls: int | None = None
    """The run's tool-call budget (``run_budgets``); ``None``: no limit."""

    def next_call(self) -> int:
        self.calls += 1
        return self.calls

    def clear(self) -> None:
        self.outputs.clear()
        self.answered.clear()
