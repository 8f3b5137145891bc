"""Cross-process cache invalidation: every config write is announced over Redis pub/sub.

Each process caches effective configs and routing lookups. With several processes on one database,
a write in one must drop the others' cached copies. ``RedisConfigChanges`` publishes each change
on ``{namespace}:config-changes`` and applies the changes other processes publish. If the
subscription drops, messages may have been missed, so on reconnect every cache is cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

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
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def publish(self, change: ConfigChange) -> None:
        try:
            await self._client.publish(self._channel, change.to_json())
        except RedisError as exc:
            log.warning(
                "config change not announced over Redis (other processes keep cached copies): %s",
                type(exc).__name__,
            )

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if self._subscribed.is_set():
                        self._apply(ConfigChange(org_id="", node_id=None))
                    self._subscribed.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._receive(message["data"])
            except (RedisError, OSError) as exc:
                log.warning(
                    "config change subscription lost (%s); retrying in %.1f s", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _receive(self, raw: str | bytes) -> None:
        try:
            change = ConfigChange.from_json(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed config change message")
            return
        self._apply(change)
