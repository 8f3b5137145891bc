"""Integration health for a team: each toolset's prerequisite check, cached for a minute.

A team's integrations are the sections under ``integrations.*`` in its effective config plus every
toolset that can work without one (Kubernetes falls back to the installation's ``KUBECONFIG``).
A toolset with a health check is asked (one cheap API call); an integration with no toolset yet is
reported as configured but unchecked, never as a made-up "OK".

Results are cached per team, toolset and integration settings for ``ttl_s`` seconds, so opening the
App Home twice costs one API call, and editing the settings is checked afresh at once. Concurrent
callers for the same key share one check.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from incidentfox.agents.redaction import scrub_text, secret_values
from incidentfox.agents.toolsets.base import Toolset, ToolsetHealth, lookup_dotted

log = logging.getLogger(__name__)

HealthStatus = Literal["ok", "failing", "unchecked", "off"]
UNCHECKED_NO_TOOLSET = "configured; no health check until its toolset exists"
UNCHECKED_NO_CHECK = "configured; this toolset has no health check"
TURNED_OFF = "turned off (`enabled: false`)"
_MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class HealthLine:
    """One integration of a team and how it is doing.

    ``status``: ``ok`` (the check passed), ``failing`` (``detail`` says why in one sentence),
    ``unchecked`` (configured, but nothing can check it yet) or ``off`` (``enabled: false``).
    """

    integration: str
    status: HealthStatus
    detail: str = ""


_Key = tuple[str, str, str, str]


class IntegrationHealth:
    """Runs and caches the health checks of ``toolsets`` for teams."""

    def __init__(
        self,
        toolsets: Sequence[Toolset],
        *,
        ttl_s: float = 60.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._toolsets = {toolset.name: toolset for toolset in toolsets}
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._cache: dict[_Key, tuple[float, ToolsetHealth]] = {}
        self._in_flight: dict[_Key, asyncio.Task[ToolsetHealth]] = {}

    async def check(self, org_id: str, team_id: str, config: Mapping[str, Any]) -> list[HealthLine]:
        """A line per integration of the team, sorted by name; the toolset checks run concurrently."""
        sections = _integration_sections(config)
        names = sorted(set(sections) | set(self._toolsets))
        lines = await asyncio.gather(
            *(self._line(org_id, team_id, name, sections.get(name), config) for name in names)
        )
        return [line for line in lines if line is not None]

    async def _line(
        self,
        org_id: str,
        team_id: str,
        name: str,
        section: Mapping[str, Any] | None,
        config: Mapping[str, Any],
    ) -> HealthLine | None:
        if section is not None and section.get("enabled") is False:
            return HealthLine(name, "off", TURNED_OFF)
        toolset = self._toolsets.get(name)
        if toolset is None:
            return HealthLine(name, "unchecked", UNCHECKED_NO_TOOLSET)
        missing = toolset.missing_prerequisites(config)
        if missing:
            if section is None:
                return None
            keys = ", ".join(f"`{key}`" for key in missing)
            return HealthLine(name, "failing", f"missing {keys}")
        if toolset.health_check is None:
            return HealthLine(name, "unchecked", UNCHECKED_NO_CHECK) if section is not None else None
        result = await self._cached(org_id, team_id, toolset, section, config)
        if not result.configured:
            if section is None:
                return None
            return HealthLine(
                name, "failing", f"not set up: {result.reason}" if result.reason else "not set up"
            )
        if result.healthy:
            return HealthLine(name, "ok")
        return HealthLine(name, "failing", result.reason or "the health check failed")

    async def _cached(
        self,
        org_id: str,
        team_id: str,
        toolset: Toolset,
        section: Mapping[str, Any] | None,
        config: Mapping[str, Any],
    ) -> ToolsetHealth:
        key = (org_id, team_id, toolset.name, _fingerprint(section))
        hit = self._cache.get(key)
        if hit is not None and self._clock() - hit[0] < self._ttl_s:
            return hit[1]
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._run(toolset, config))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task)

    def _settle(self, key: _Key, task: asyncio.Task[ToolsetHealth]) -> None:
        """Cache a finished check; a caller that gives up (cancelled) never cancels it for the others."""
        self._in_flight.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self._remember(key, task.result())

    async def _run(self, toolset: Toolset, config: Mapping[str, Any]) -> ToolsetHealth:
        assert toolset.health_check is not None
        try:
            result = await asyncio.wait_for(toolset.health_check(config), self._timeout_s)
        except TimeoutError:
            return ToolsetHealth.failing(
                f"no answer within {self._timeout_s:g} s; is the endpoint reachable?"
            )
        except Exception as exc:
            log.warning("health check crashed toolset=%s error=%s", toolset.name, type(exc).__name__)
            return ToolsetHealth.failing(f"the health check failed unexpectedly ({type(exc).__name__})")
        if result.reason:
            return ToolsetHealth(
                configured=result.configured,
                healthy=result.healthy,
                reason=scrub_text(result.reason, secret_values(config)),
            )
        return result

    def _remember(self, key: _Key, result: ToolsetHealth) -> None:
        now = self._clock()
        if len(self._cache) >= _MAX_ENTRIES:
            for stale in [k for k, (at, _) in self._cache.items() if now - at >= self._ttl_s]:
                del self._cache[stale]
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
        self._cache[key] = (now, result)


def _integration_sections(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    integrations = lookup_dotted(config, "integrations")
    if not isinstance(integrations, Mapping):
        return {}
    return {str(name): value for name, value in integrations.items() if isinstance(value, Mapping)}


def _fingerprint(section: Mapping[str, Any] | None) -> str:
    """A digest of the integration's settings (secrets included, never stored), so a changed token or
    URL is checked again at once instead of showing a stale result for up to a minute."""
    raw = json.dumps(section or {}, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
