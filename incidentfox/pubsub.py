"""One Redis pub/sub channel kept subscribed: resubscribes after any Redis trouble, with backoff.

Messages published while the subscription was down are lost; ``on_resubscribe`` lets the owner make
up for that (drop caches, say) each time it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
SUBSCRIBE_WAIT_S = 5.0


class RedisSubscription:
    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        receive: Callable[[str | bytes], None],
        *,
        on_resubscribe: Callable[[], None] | None = None,
    ) -> None:
        self.channel = channel
        self._client = client
        self._receive = receive
        self._on_resubscribe = on_resubscribe
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        """Subscribe, waiting a few seconds for the first subscription (and going on without it)."""
        self._listener = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=SUBSCRIBE_WAIT_S)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if self._subscribed.is_set() and self._on_resubscribe is not None:
                        self._on_resubscribe()
                    self._subscribed.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._receive(message["data"])
            except (RedisError, OSError) as exc:
                why = type(exc).__name__
                log.warning("subscription to %s lost (%s); retrying in %.1f s", self.channel, why, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
