"""Per-team concurrency limits that hold across every worker process (issue 11, tenancy).

A team's investigations (``limits.max_concurrent_runs`` in its config) and its SRE-agent sessions
(``SessionLimits.max_concurrent_per_team``) are counted per team, not per process: with ``REDIS_URL``
the slots live in Redis, one sorted set per team whose members are the holders and whose scores are
their lease expiries. A worker renews the slots it holds; a worker that died lets its slots go when
their leases run out, so a crash never leaks a team's capacity for longer than one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)

SLOT_LEASE_S = 30.0
TAKE_SLOT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local expiry = now_ms + tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], expiry, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
  return 1
end
return 0
"""
"""Take (or keep) a slot for ARGV[1] when fewer than ARGV[3] live holders have one; ARGV[2] = lease ms."""
RENEW_SLOTS = """
local now = redis.call('TIME')
local expiry = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[i - 1], 'XX', expiry, ARGV[i])
  redis.call('PEXPIRE', KEYS[i - 1], 2 * tonumber(ARGV[1]))
end
return #ARGV - 1
"""


def team_run_limit(config: Mapping[str, Any]) -> int | None:
    """The team's ``limits.max_concurrent_runs``: investigations of the team running at once across all
    workers; unset (or not a positive number) = no limit."""
    limits = config.get("limits")
    value = limits.get("max_concurrent_runs") if isinstance(limits, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


class TeamSlots(Protocol):
    async def take(self, team: str, holder: str, limit: int) -> bool:
        """A slot of ``team`` for ``holder`` if fewer than ``limit`` are taken (or it has one already)."""
        ...

    async def give_back(self, team: str, holder: str) -> None: ...


class LocalTeamSlots:
    """Slots counted in this process: the embedded default, where one process runs every investigation."""

    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}

    async def take(self, team: str, holder: str, limit: int) -> bool:
        holders = self._held.setdefault(team, set())
        if holder in holders or len(holders) < limit:
            holders.add(holder)
            return True
        return False

    async def give_back(self, team: str, holder: str) -> None:
        holders = self._held.get(team)
        if holders is not None:
            holders.discard(holder)
            if not holders:
                del self._held[team]


class RedisTeamSlots:
    """Slots shared by every process on one Redis; this process renews the ones it holds."""

    def __init__(self, redis: Redis, *, namespace: str, lease_s: float = SLOT_LEASE_S) -> None:
        self._redis = redis
        self._namespace = namespace
        self._lease_ms = max(1, round(lease_s * 1000))
        self._renew_every_s = lease_s / 3
        self._take = redis.register_script(TAKE_SLOT)
        self._renew = redis.register_script(RENEW_SLOTS)
        self._held: set[tuple[str, str]] = set()
        self._renewing: asyncio.Task[None] | None = None

    def key(self, team: str) -> str:
        return f"{self._namespace}:team-slots:{team}"

    async def take(self, team: str, holder: str, limit: int) -> bool:
        taken = await self._take(keys=[self.key(team)], args=[holder, self._lease_ms, limit])
        if not taken:
            return False
        self._held.add((team, holder))
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.create_task(self._renew_forever())
        return True

    async def give_back(self, team: str, holder: str) -> None:
        self._held.discard((team, holder))
        try:
            await self._redis.zrem(self.key(team), holder)
        except Exception as exc:  # the lease frees it anyway
            log.warning("team slot not given back team=%s error=%s; its lease frees it", team, exc)

    async def renew(self) -> None:
        held = sorted(self._held)
        if held:
            await self._renew(
                keys=[self.key(team) for team, _ in held], args=[self._lease_ms, *(h for _, h in held)]
            )

    async def close(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
            self._renewing = None

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self._renew_every_s)
            try:
                await self.renew()
            except Exception as exc:
                log.warning("renewing team slots failed error=%s; retrying", type(exc).__name__)
