"""``RunQueue`` over Redis Streams (``REDIS_URL``): what bot and worker processes share.

The bot only ``put``s (an ``XADD`` to the shared stream, or to a dedicated team's own stream); a
worker reads the streams it serves through one consumer of the ``workers`` group, and ``ack``s a
delivery once its run is handled. The delivery guarantees are ``redis_queue``'s; what makes a
redelivered run harmless is the run's claim (``runs.claims``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from incidentfox.agents.queue import SHARED_STREAM, QueuedRun
from incidentfox.agents.redis_queue import QueueDepth, QueueUnavailable, RedisStreamRunQueue, StreamDelivery

SOCKET_TIMEOUT_S = 5.0


class StreamRunQueue:
    def __init__(self, streams: RedisStreamRunQueue, redis: Redis) -> None:
        self.streams = streams
        self._redis = redis

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        namespace: str,
        consumer: str,
        serves: Sequence[str] = (SHARED_STREAM,),
        visibility_timeout_s: float = 30.0,
    ) -> StreamRunQueue:
        """A queue on ``url``; ``serves`` are the streams this process's worker reads (none read until
        the first ``get``: a bot only puts)."""
        redis = Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S)
        queue = RedisStreamRunQueue(
            redis,
            namespace=namespace,
            consumer=consumer,
            streams=serves,
            visibility_timeout_s=visibility_timeout_s,
        )
        return cls(queue, redis)

    async def check(self) -> None:
        """``QueueUnavailable`` in plain words when Redis does not answer (checked at start)."""
        try:
            await self._redis.ping()
        except (ConnectionError, TimeoutError, RedisError) as exc:
            raise QueueUnavailable(f"Redis did not answer ({type(exc).__name__})") from exc

    async def put(self, item: QueuedRun) -> int:
        return await self.streams.put_counting(item, stream=item.stream)

    async def finished_recently(self) -> int:
        return await self.streams.finished_recently()

    async def get(self) -> QueuedRun:
        delivery = await self.streams.get()
        return dataclasses.replace(
            delivery.item, stream=delivery.stream, receipt=delivery, deliveries=delivery.deliveries
        )

    async def ack(self, item: QueuedRun) -> None:
        if isinstance(item.receipt, StreamDelivery):
            await self.streams.ack(item.receipt)

    def take_entries_lost(self) -> bool:
        """Whether Redis lost the queue's entries since the last call (it restarted without data)."""
        lost, self.streams.entries_lost = self.streams.entries_lost, False
        return lost

    @property
    def redis(self) -> Redis:
        return self._redis

    async def depth(self, stream: str = SHARED_STREAM) -> QueueDepth:
        return await self.streams.depth(stream)

    async def depths(self) -> dict[str, QueueDepth]:
        """The backlog of every stream there is (the shared one and each dedicated team's)."""
        return {name: await self.streams.depth(name) for name in await self._stream_names()}

    async def queued_run_ids(self) -> set[str]:
        """The runs that have an entry in any stream: what a lost-entries check must not queue again."""
        found: set[str] = set()
        for name in await self._stream_names():
            found |= await self.streams.run_ids(name)
        return found

    async def _stream_names(self) -> list[str]:
        prefix = self.streams.key("")
        names = [SHARED_STREAM]
        try:
            async for key in self._redis.scan_iter(match=f"{prefix}*", count=200):
                name = (key.decode() if isinstance(key, bytes) else str(key)).removeprefix(prefix)
                if name not in names:
                    names.append(name)
        except (ConnectionError, TimeoutError, RedisError) as exc:
            raise QueueUnavailable(f"Redis did not answer ({type(exc).__name__})") from exc
        return names

    async def close(self) -> None:
        await self.streams.stop()
        await self._redis.aclose()
