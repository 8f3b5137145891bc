"""Cross-process cache invalidation: every config write is announced over Redis pub/sub.

Each process caches effective configs and routing lookups. With several processes on one database,
a write in one must drop the others' cached copies. ``RedisConfigChanges`` publishes each change
on ``{namespace}:config-changes`` and applies the changes other processes publish. If the
subscription drops, messages may have been missed, so on reconnect every cache is cleared.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from incidentfox.pubsub import RedisSubscription

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """A write to ``node_id`` of ``org_id`` (its subtree's effective configs change) and the routing
    claims it added or released. ``node_id=None`` means "drop everything"."""

    org_id: str
    node_id: str | None
    claims: tuple[tuple[str, str], ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps({"org_id": self.org_id, "node_id": self.node_id, "claims": list(self.claims)})

    @classmethod
    def from_json(cls, raw: str | bytes) -> ConfigChange:
        data: dict[str, Any] = json.loads(raw)
        claims = tuple((str(kind), str(identifier)) for kind, identifier in data.get("claims", ()))
        return cls(org_id=str(data["org_id"]), node_id=data.get("node_id"), claims=claims)


class ConfigChanges(Protocol):
    async def publish(self, change: ConfigChange) -> None: ...


class LocalConfigChanges:
    """One process: the writer already invalidated its own caches, so there is nobody to tell."""

    async def publish(self, change: ConfigChange) -> None:
        return None


class RedisConfigChanges:
    def __init__(self, redis_url: str, *, namespace: str, apply: Callable[[ConfigChange], None]) -> None:
        self._client = redis.from_url(redis_url)
        self._channel = f"{namespace}:config-changes"
        self._apply = apply
        self._subscription = RedisSubscription(
            self._client,
            self._channel,
            self._receive,
            on_resubscribe=lambda: self._apply(ConfigChange(org_id="", node_id=None)),
        )

    async def start(self) -> None:
        await self._subscription.start()

    async def publish(self, change: ConfigChange) -> None:
        try:
            await self._client.publish(self._channel, change.to_json())
        except RedisError as exc:
            log.warning(
                "config change not announced over Redis (other processes keep cached copies): %s",
                type(exc).__name__,
            )

    async def close(self) -> None:
        await self._subscription.close()
        await self._client.aclose()

    def _receive(self, raw: str | bytes) -> None:
        try:
            change = ConfigChange.from_json(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed config change message")
            return
        self._apply(change)
