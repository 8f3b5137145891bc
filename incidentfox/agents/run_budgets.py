"""How much one investigation may spend: wall-clock time, model turns, tool calls and model retries.

Read per run from the team's effective config (``agent.*``, inherited org → unit → team like every
other key), so a noisy team can be held tighter without touching the others:

- ``agent.timeout_s`` (default 600): the whole run, sub-agents and tools included;
- ``agent.max_turns`` (default 30): the planner's model turns (each sub-agent has its own 8);
- ``agent.max_tool_calls`` (default 80): tool calls of the run across all agents. A call past the
  budget does not run: the model reads that the budget is spent and writes its analysis from the
  evidence it has, so a looping model ends with an RCA rather than a timeout;
- ``agent.model_retries`` (default 3): retries of one model call on a transient failure (HTTP 408,
  409, 429, 5xx, 529, a dropped connection, a timeout), after a backoff of 1 s doubling to at most
  20 s with jitter, or what the provider's ``Retry-After`` asks. The SDK's runner does the retrying
  (``ModelSettings.retry``) and turns the client's own retries off, so a call is never retried twice
  over; a streamed answer that has already begun is not replayed.

A value of the wrong type or out of range is not fatal: the default is used and the reason logged
once per run, because a run that refuses to start over a typo in a limit helps nobody mid-incident.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents import ModelRetrySettings, ModelSettings, retry_policies

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_MAX_TURNS = 30
DEFAULT_MAX_TOOL_CALLS = 80
DEFAULT_MODEL_RETRIES = 3
TRANSIENT_STATUSES = (408, 409, 429, 500, 502, 503, 504, 529)
"""HTTP statuses a model endpoint answers when trying again later can work (529: Anthropic overloaded)."""


@dataclass(frozen=True, slots=True)
class RunBudgets:
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_turns: int = DEFAULT_MAX_TURNS
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS
    model_retries: int = DEFAULT_MODEL_RETRIES
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 20.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RunBudgets:
        section = config.get("agent")
        agent: Mapping[str, Any] = section if isinstance(section, Mapping) else {}
        return cls(
            timeout_s=_number(agent, "timeout_s", DEFAULT_TIMEOUT_S, low=1.0, high=24 * 3600.0),
            max_turns=int(_number(agent, "max_turns", DEFAULT_MAX_TURNS, low=1, high=500, whole=True)),
            max_tool_calls=int(
                _number(agent, "max_tool_calls", DEFAULT_MAX_TOOL_CALLS, low=1, high=5000, whole=True)
            ),
            model_retries=int(
                _number(agent, "model_retries", DEFAULT_MODEL_RETRIES, low=0, high=10, whole=True)
            ),
        )

    def model_settings(self) -> ModelSettings:
        """The agents' model settings: runner-managed retries of transient model failures."""
        return ModelSettings(
            retry=ModelRetrySettings(
                max_retries=self.model_retries,
                backoff={
                    "initial_delay": self.backoff_initial_s,
                    "max_delay": self.backoff_max_s,
                    "multiplier": 2.0,
                    "jitter": True,
                },
                policy=retry_policies.any(
                    retry_policies.provider_suggested(),
                    retry_policies.retry_after(),
                    retry_policies.network_error(),
                    retry_policies.http_status(TRANSIENT_STATUSES),
                ),
            )
        )


def tool_budget_spent(max_calls: int) -> str:
    """What the model reads instead of a tool's answer once the run's tool calls are spent."""
    return (
        f"Not run: this investigation has used its budget of {max_calls} tool calls. Write the root-cause "
        "analysis now from the evidence already gathered, and say in the caveats what you could not check."
    )


def _number(
    section: Mapping[str, Any], key: str, default: float, *, low: float, high: float, whole: bool = False
) -> float:
    value = section.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or (whole and value != int(value)):
        log.warning("agent.%s must be a %s; using %s", key, "whole number" if whole else "number", default)
        return default
    if not low <= value <= high:
        log.warning("agent.%s=%s is outside %s..%s; using %s", key, value, low, high, default)
        return default
    return float(value)
