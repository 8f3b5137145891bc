"""The run queue across processes: a Redis Streams consumer group that bots put to and workers take from.

Each stream ``shared`` or ``team:ORG/TEAM`` is the key ``{namespace}:runs:{stream}``, read by the group
``workers`` (created from id 0, so runs put before any worker started are delivered too).

Delivery guarantees:

- **At least once.** An entry stays pending (XREADGROUP's PEL) from its delivery until ``ack()``. If its
  worker dies, it becomes idle and, after ``visibility_timeout_s``, another worker's ``get()`` reclaims it
  (XAUTOCLAIM) with ``deliveries`` one higher. A run can therefore start twice: the run store, not the
  queue, decides whether a delivery still has work to do; after 3 deliveries the worker parks it.
- **No reclaim while the holder lives.** Every ``visibility_timeout_s / 3`` a heartbeat re-claims each
  in-flight entry to its own consumer (``XCLAIM ... JUSTID``: resets the idle time, not the delivery
  count). A Lua script does so only while the entry is still this consumer's: one another worker took
  over (this one stalled past the timeout) is dropped from the heartbeat and logged, never stolen back.
- **Acked entries are deleted** (XACK + XDEL in one transaction), so the stream holds exactly the
  entries waiting or pending. An ack Redis does not answer is retried by the heartbeat, which keeps
  the entry claimed meanwhile; ``stop()`` tries it once more.
- **A restarted worker takes its own entries back at once**: ``start()`` claims the entries still
  pending under its consumer name (a stable ``WORKER_ID``), so a crash-restart loses no time.
- **stop() acks nothing**: entries in flight or read but not yet handed out stay pending and are
  reclaimed by another worker after the timeout (a cancelled ``get()`` may leave one behind the same way).
- **Redis down**: ``put()``, ``get()`` and ``depth()`` raise ``QueueUnavailable`` at once (no spinning);
  the caller backs off. The client's ``socket_timeout`` must exceed ``block_s``.
- Fairness: one XREADGROUP over all of a worker's streams returns at most one entry per stream, and
  reclaims are looked for stream by stream in rotating order; idle entries are searched for
  continuously while some are found, else at most every ``visibility_timeout_s / 3`` per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from incidentfox.agents.queue import FINISH_WINDOW_MIN, QueuedRun

log = logging.getLogger(__name__)
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
CLAIM_IF_MINE = """
local lost = {}
for i = 3, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
"""Heartbeat: reset the idle time of each entry still pending for this consumer; return the others."""


ADOPT_AT_MOST = 1000
"""Entries of its previous life a restarted worker takes back at start (the rest: by reclaim)."""


class QueueUnavailable(ConnectionError):
    """The run queue's Redis did not answer; try again after a pause."""


@dataclass(frozen=True, slots=True)
class StreamDelivery:
    """One delivery of a queued run: ``deliveries`` is 1 the first time, 2 after one reclaim, ..."""

    item: QueuedRun
    stream: str
    entry_id: str
    deliveries: int


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """A stream's backlog: entries not yet delivered, delivered but not acked, and the age of the oldest
    of them in seconds (by the entry id's timestamp and Redis' clock; 0.0 when there are none)."""

    waiting: int
    pending: int
    oldest_age_s: float


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _parse(fields: Any) -> QueuedRun | None:
    if isinstance(fields, list | tuple):
        fields = dict(zip(fields[::2], fields[1::2], strict=False))
    if not isinstance(fields, dict):
        return None
    values = {_text(key): _text(value) for key, value in fields.items()}
    run_id = values.get("run_id", "")
    if not run_id:
        return None
    return QueuedRun(
        run_id=run_id, thread_key=values.get("thread_key") or None, team=values.get("team") or None
    )


def _fields(item: QueuedRun) -> dict[Any, Any]:
    fields: dict[Any, Any] = {"run_id": item.run_id, "thread_key": item.thread_key or ""}
    if item.team:
        fields["team"] = item.team
    return fields


def _cancels() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _honour_cancel(before: int) -> None:
    """Raise a cancellation that was requested but swallowed: Python 3.11's ``wait_for``, which redis-py
    uses for socket writes when a ``socket_timeout`` is set, drops one that lands as the write
    completes (CPython gh-86296), and a loop would then never end."""
    if _cancels() > before:
        raise asyncio.CancelledError


def _unavailable(exc: BaseException) -> QueueUnavailable:
    return QueueUnavailable(f"the run queue (Redis) did not answer ({type(exc).__name__}); try again shortly")


class RedisStreamRunQueue:
    """The run queue over Redis Streams (see the module docstring); one instance per process."""

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        consumer: str,
        streams: Sequence[str] = ("shared",),
        group: str = "workers",
        visibility_timeout_s: float = 60.0,
        block_s: float = 1.0,
    ) -> None:
        if not streams:
            raise ValueError("a run queue consumer reads at least one stream")
        self._redis = redis
        self._namespace = namespace
        self._consumer = consumer
        self._streams = tuple(dict.fromkeys(streams))
        self._group = group
        self._visibility_ms = max(1, round(visibility_timeout_s * 1000))
        self._beat_s = visibility_timeout_s / 3
        self._block_ms = max(1, round(block_s * 1000))
        self._claim_if_mine = redis.register_script(CLAIM_IF_MINE)
        self._in_flight: dict[tuple[str, str], StreamDelivery] = {}
        self._unacked: dict[tuple[str, str], StreamDelivery] = {}
        self._ready: deque[StreamDelivery] = deque()
        self._cursors = dict.fromkeys(self._streams, "0-0")
        self._next_reclaim = dict.fromkeys(self._streams, 0.0)
        self._turn = 0
        self._heartbeat: asyncio.Task[None] | None = None
        self.entries_lost = False
        """Set when the group vanished (Redis restarted empty): the owner queues unfinished runs again."""

    def key(self, stream: str) -> str:
        return f"{self._namespace}:runs:{stream}"

    @property
    def in_flight(self) -> int:
        """Entries this consumer holds (delivered, not acked) and heartbeats."""
        return len(self._in_flight)

    async def start(self) -> None:
        try:
            await self._create_groups()
            for stream in self._streams:
                await self._adopt_own(stream)
        except UNREACHABLE as exc:
            raise _unavailable(exc) from exc
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat_forever())

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        with contextlib.suppress(*UNREACHABLE):
            await self._flush_acks()
        self._in_flight.clear()
        self._unacked.clear()
        self._ready.clear()

    async def put(self, item: QueuedRun, *, stream: str = "shared") -> str:
        """Queue a run on ``stream``; needs no ``start()``. Returns the entry id."""
        fields = _fields(item)
        try:
            return _text(await self._redis.xadd(self.key(stream), fields))
        except UNREACHABLE as exc:
            raise _unavailable(exc) from exc

    async def put_counting(self, item: QueuedRun, *, stream: str = "shared") -> int:
        """Queue a run on ``stream`` and say how many entries wait undelivered there, this one included
        (one round trip: the bot's back-pressure check costs the ack nothing more)."""
        key = self.key(stream)
        fields = _fields(item)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(key, fields)
                pipe.xlen(key)
                pipe.xpending(key, self._group)
                added, length, summary = await pipe.execute(raise_on_error=False)
        except UNREACHABLE as exc:
            raise _unavailable(exc) from exc
        for reply in (added, length):
            if isinstance(
                reply, Exception
            ):  # e.g. OOM: the entry is not in, so the run must not count as queued
                raise _unavailable(reply) from reply
        pending = 0 if isinstance(summary, Exception) else int(summary["pending"])
        return max(1, int(length) - pending)

    async def finished_recently(self, minutes: int = FINISH_WINDOW_MIN) -> int:
        """Runs acked by any worker in this minute and the ``minutes - 1`` before it: the queue's pace."""
        now = int(time.time() // 60)
        keys = [self._finished_key(minute) for minute in range(now - minutes + 1, now + 1)]
        try:
            counts = await self._redis.mget(keys)
        except UNREACHABLE as exc:
            raise _unavailable(exc) from exc
        return sum(int(count) for count in counts if count is not None)

    def _finished_key(self, minute: int) -> str:
        return f"{self._namespace}:runs-finished:{minute}"

    async def get(self) -> StreamDelivery:
        """The next delivery; blocks until there is one. If cancelled, an entry already read is handed
        out by the next ``get()``; one whose reply the cancellation cut off is reclaimed after the timeout."""
        cancels = _cancels()
        if self._heartbeat is None:
            await self.start()
        while True:
            _honour_cancel(cancels)
            while self._ready:
                ready = self._ready.popleft()
                if (ready.stream, ready.entry_id) in self._in_flight:  # not lost meanwhile
                    return ready
            order = self._streams[self._turn :] + self._streams[: self._turn]
            self._turn = (self._turn + 1) % len(self._streams)
            try:
                for stream in order:
                    if (delivery := await self._reclaim(stream)) is not None:
                        return delivery
                await self._read_new(order)
            except UNREACHABLE as exc:
                raise _unavailable(exc) from exc
            except ResponseError as exc:
                if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                    raise
                log.warning("run queue stream or group missing (Redis lost its data?); creating it again")
                await self.start()

    async def ack(self, delivery: StreamDelivery) -> None:
        """Done with the run: remove the entry. If Redis does not answer, the heartbeat retries it."""
        where = (delivery.stream, delivery.entry_id)
        self._in_flight.pop(where, None)
        try:
            await self._delete(delivery.stream, [delivery.entry_id])
        except UNREACHABLE as exc:
            log.warning("run queue ack deferred (%s) run_id=%s", type(exc).__name__, delivery.item.run_id)
            self._in_flight[where] = delivery
            self._unacked[where] = delivery

    async def depth(self, stream: str = "shared") -> QueueDepth:
        key = self.key(stream)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xlen(key)
                pipe.xrange(key, count=1)
                pipe.time()
                pipe.xpending(key, self._group)
                length, first, now, summary = await pipe.execute(raise_on_error=False)
        except UNREACHABLE as exc:
            raise _unavailable(exc) from exc
        for reply in (length, first, now):
            if isinstance(reply, Exception):
                raise reply
        pending = 0 if isinstance(summary, Exception) else int(summary["pending"])
        oldest = 0.0
        if first:
            now_ms = int(now[0]) * 1000 + int(now[1]) / 1000
            oldest = max(0.0, (now_ms - int(_text(first[0][0]).split("-")[0])) / 1000)
        return QueueDepth(waiting=max(0, int(length) - pending), pending=pending, oldest_age_s=oldest)

    async def _create_groups(self) -> None:
        """A group created here (not there already) means Redis never saw this queue or lost it: the
        owner should check which unfinished runs have no entry (``entries_lost``)."""
        for stream in self._streams:
            try:
                await self._redis.xgroup_create(self.key(stream), self._group, id="0", mkstream=True)
                self.entries_lost = True
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run_ids(self, stream: str, *, page: int = 1000) -> set[str]:
        """The run ids of every entry in ``stream`` (waiting or pending)."""
        key, start, found = self.key(stream), "-", set[str]()
        try:
            while True:
                entries = await self._redis.xrange(key, start, "+", count=page) or []
                for _, fields in entries:
                    if (item := _parse(fields)) is not None:
                        found.add(item.run_id)
                if len(entries) < page:
                    return found
                start = "(" + _text(entries[-1][0])
        except UNREACHABLE as exc:
            raise _unavailable(exc) from exc

    async def _delete(self, stream: str, entry_ids: Sequence[str]) -> None:
        key = self.key(stream)
        finished = self._finished_key(int(time.time() // 60))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(key, self._group, *entry_ids)
            pipe.xdel(key, *entry_ids)
            pipe.incrby(finished, len(entry_ids))
            pipe.expire(finished, (FINISH_WINDOW_MIN + 2) * 60)
            await pipe.execute()

    async def _reclaim(self, stream: str) -> StreamDelivery | None:
        """Take over one entry idle past the visibility timeout, whoever held it."""
        now = time.monotonic()
        if now < self._next_reclaim[stream]:
            return None
        key, start = self.key(stream), self._cursors[stream]
        reply = await self._redis.xautoclaim(
            key, self._group, self._consumer, self._visibility_ms, start_id=start, count=1
        )
        cursor, entries = _text(reply[0]), reply[1]
        self._cursors[stream] = cursor
        gone = [_text(entry_id) for entry_id in (reply[2] if len(reply) > 2 else [])]
        if gone:
            await self._redis.xack(key, self._group, *gone)
        if any(entry_id is None for entry_id, _ in entries):  # Redis 6.2: deleted entries come back nil
            await self.ack_gone(stream, start, "+" if cursor == "0-0" else "(" + cursor)
        for entry_id, fields in entries:
            if entry_id is not None:
                delivery = await self._deliver(stream, _text(entry_id), fields, reclaimed=True)
                if delivery is not None:
                    return delivery
        if cursor == "0-0":
            self._next_reclaim[stream] = now + self._beat_s
        return None

    async def ack_gone(self, stream: str, start: str = "-", end: str = "+") -> int:
        """Ack this consumer's pending entries (up to 100 from ``start`` to ``end``) whose message is gone."""
        key = self.key(stream)
        rows = await self._redis.xpending_range(key, self._group, start, end, 100, self._consumer)
        ids = [_text(row["message_id"]) for row in rows]
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xrange(key, entry_id, entry_id, count=1)
            found = await pipe.execute() if ids else []
        gone = [entry_id for entry_id, entries in zip(ids, found, strict=True) if not entries]
        if gone:
            await self._redis.xack(key, self._group, *gone)
        return len(gone)

    async def _adopt_own(self, stream: str) -> None:
        """Take back at once the entries still pending for this consumer's name: a worker restarted
        under the same ``WORKER_ID`` after a crash resumes its runs without waiting out the timeout."""
        key = self.key(stream)
        rows = await self._redis.xpending_range(key, self._group, "-", "+", ADOPT_AT_MOST, self._consumer)
        mine: list[Any] = [_text(row["message_id"]) for row in rows]
        mine = [entry_id for entry_id in mine if (stream, entry_id) not in self._in_flight]
        if not mine:
            return
        claimed: Any = await self._redis.xclaim(key, self._group, self._consumer, 0, mine)
        for entry_id, fields in claimed:
            if entry_id is None or fields is None:
                continue
            delivery = await self._deliver(stream, _text(entry_id), fields, reclaimed=True)
            if delivery is not None:
                self._ready.append(delivery)
        await self.ack_gone(stream)
        log.info("run queue took back %d entries of this worker's previous life stream=%s", len(mine), stream)

    async def _read_new(self, order: Sequence[str]) -> None:
        by_key = {self.key(stream): stream for stream in order}
        reply = await self._redis.xreadgroup(
            self._group, self._consumer, dict.fromkeys(by_key, ">"), count=1, block=self._block_ms
        )
        replies: Iterable[Any] = reply.items() if isinstance(reply, dict) else (reply or [])
        for key, entries in replies:
            for entry_id, fields in entries:
                stream = by_key[_text(key)]
                delivery = await self._deliver(stream, _text(entry_id), fields, reclaimed=False)
                if delivery is not None:
                    self._ready.append(delivery)

    async def _deliver(
        self, stream: str, entry_id: str, fields: Any, *, reclaimed: bool
    ) -> StreamDelivery | None:
        item = _parse(fields)
        if item is None:
            log.warning("run queue entry without a run_id dropped stream=%s entry_id=%s", stream, entry_id)
            await self._delete(stream, [entry_id])
            return None
        deliveries = 1
        if reclaimed:
            rows = await self._redis.xpending_range(self.key(stream), self._group, entry_id, entry_id, 1)
            if not rows:  # acked by its previous holder in the meantime
                return None
            deliveries = int(rows[0]["times_delivered"])
            log.info("run queue entry reclaimed run_id=%s deliveries=%d", item.run_id, deliveries)
        delivery = StreamDelivery(item=item, stream=stream, entry_id=entry_id, deliveries=deliveries)
        self._in_flight[(stream, entry_id)] = delivery
        return delivery

    async def _flush_acks(self) -> None:
        for where, delivery in list(self._unacked.items()):
            await self._delete(delivery.stream, [delivery.entry_id])
            self._unacked.pop(where, None)
            self._in_flight.pop(where, None)

    async def _beat(self) -> None:
        await self._flush_acks()
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in list(self._in_flight):
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            lost = await self._claim_if_mine(
                keys=[self.key(stream)], args=[self._group, self._consumer, *ids]
            )
            for entry_id in lost:
                if (delivery := self._in_flight.pop((stream, _text(entry_id)), None)) is not None:
                    log.warning(
                        "run queue entry taken over by another worker run_id=%s", delivery.item.run_id
                    )

    async def _beat_forever(self) -> None:
        while True:
            _honour_cancel(0)
            await asyncio.sleep(self._beat_s)
            try:
                await self._beat()
            except Exception as exc:  # the heartbeat must outlive any Redis trouble
                log.warning("run queue heartbeat failed (%s); retrying", type(exc).__name__)
