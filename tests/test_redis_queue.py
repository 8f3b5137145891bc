"""The Redis Streams run queue shared by bot and worker processes, against a real Redis."""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis

from incidentfox.agents.queue import QueuedRun
from incidentfox.agents.redis_queue import QueueUnavailable, RedisStreamRunQueue, StreamDelivery

pytestmark = pytest.mark.redis
TEAM = "team:acme/checkout"
MakeQueue = Callable[..., RedisStreamRunQueue]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    connection = redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    yield connection
    await connection.aclose()


@pytest.fixture
async def namespace(client: redis.Redis) -> AsyncIterator[str]:
    name = "ifx-test-" + secrets.token_hex(4)
    yield name
    keys = [key async for key in client.scan_iter(match=f"{name}:*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def make_queue(client: redis.Redis, namespace: str) -> AsyncIterator[MakeQueue]:
    queues: list[RedisStreamRunQueue] = []

    def make(consumer: str, **options: Any) -> RedisStreamRunQueue:
        options.setdefault("block_s", 0.2)
        queue = RedisStreamRunQueue(client, namespace=namespace, consumer=consumer, **options)
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        await queue.stop()


async def nothing_within(queue: RedisStreamRunQueue, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), seconds)


async def pending_rows(client: redis.Redis, key: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await client.xpending_range(key, "workers", "-", "+", 100)
    return rows


async def test_put_then_get_delivers_once_and_ack_removes_the_entry(
    make_queue: MakeQueue, client: redis.Redis
) -> None:
    bot, worker = make_queue("bot"), make_queue("w1")
    entry_id = await bot.put(QueuedRun("run-1", "C1:1700000000.000100"))
    await worker.start()

    delivery = await asyncio.wait_for(worker.get(), 5)

    assert delivery == StreamDelivery(
        item=QueuedRun("run-1", "C1:1700000000.000100"), stream="shared", entry_id=entry_id, deliveries=1
    )
    key = worker.key("shared")
    assert [row["consumer"] for row in await pending_rows(client, key)] == [b"w1"]
    await worker.ack(delivery)
    assert await client.xlen(key) == 0
    assert await pending_rows(client, key) == []
    assert worker.in_flight == 0


async def test_empty_thread_key_is_none_and_an_entry_without_run_id_is_dropped(
    make_queue: MakeQueue, client: redis.Redis
) -> None:
    worker = make_queue("w1")
    await worker.start()
    await client.xadd(worker.key("shared"), {"garbage": "x"})
    await worker.put(QueuedRun("run-2", None))

    delivery = await asyncio.wait_for(worker.get(), 5)

    assert delivery.item == QueuedRun("run-2", None)
    await worker.ack(delivery)
    assert await client.xlen(worker.key("shared")) == 0
    assert await pending_rows(client, worker.key("shared")) == []


async def test_two_consumers_share_entries_without_duplicates_or_losses(make_queue: MakeQueue) -> None:
    bot = make_queue("bot")
    first, second = make_queue("w1"), make_queue("w2")
    await first.start()
    await second.start()
    expected = {f"run-{n}" for n in range(50)}
    for run_id in sorted(expected):
        await bot.put(QueuedRun(run_id, None))

    async def drain(queue: RedisStreamRunQueue) -> list[str]:
        taken: list[str] = []
        while True:
            try:
                delivery = await asyncio.wait_for(queue.get(), 1.0)
            except TimeoutError:
                return taken
            assert delivery.deliveries == 1
            taken.append(delivery.item.run_id)
            await asyncio.sleep(0)
            await queue.ack(delivery)

    took_first, took_second = await asyncio.gather(drain(first), drain(second))

    assert sorted(took_first + took_second) == sorted(expected)
    assert not set(took_first) & set(took_second)
    assert (await bot.depth()).waiting == 0


async def test_an_entry_of_a_dead_consumer_is_reclaimed_after_the_visibility_timeout(
    make_queue: MakeQueue, client: redis.Redis
) -> None:
    dead = make_queue("dead", visibility_timeout_s=0.6)
    await dead.start()
    entry_id = await dead.put(QueuedRun("run-1", "C1:1.0"))
    taken = await asyncio.wait_for(dead.get(), 5)
    await dead.stop()  # dies without acking

    heir = make_queue("heir", visibility_timeout_s=0.6)
    started = time.monotonic()
    reclaimed = await asyncio.wait_for(heir.get(), 5)

    assert time.monotonic() - started >= 0.4
    assert (reclaimed.entry_id, reclaimed.item, reclaimed.deliveries) == (entry_id, taken.item, 2)
    assert [row["consumer"] for row in await pending_rows(client, heir.key("shared"))] == [b"heir"]
    await heir.stop()  # dies too: the third delivery says so

    third = make_queue("third", visibility_timeout_s=0.6)
    assert (await asyncio.wait_for(third.get(), 5)).deliveries == 3


async def test_a_worker_restarted_under_its_own_name_takes_its_entries_back_at_once(
    make_queue: MakeQueue,
) -> None:
    before = make_queue("worker-1", visibility_timeout_s=30)
    await before.start()
    entry_id = await before.put(QueuedRun("run-1", "C1:1.0", team="acme/t"))
    await asyncio.wait_for(before.get(), 5)
    await before.stop()  # crashed: the entry stays pending under "worker-1"

    assert not make_queue("worker-1").entries_lost
    again = make_queue("worker-1", visibility_timeout_s=30)
    started = time.monotonic()
    adopted = await asyncio.wait_for(again.get(), 5)
    assert time.monotonic() - started < 5, "not after the 30 s visibility timeout"
    assert (adopted.entry_id, adopted.item.team, adopted.deliveries) == (entry_id, "acme/t", 2)
    assert not again.entries_lost, "the group was there: nothing was lost"
    await nothing_within(make_queue("worker-2", visibility_timeout_s=30), 0.5)


async def test_a_group_created_afresh_says_entries_may_be_lost(make_queue: MakeQueue) -> None:
    first = make_queue("first")
    await first.start()
    assert first.entries_lost, "a new group: Redis never saw this queue, or lost it"
    later = make_queue("later")
    await later.start()
    assert not later.entries_lost
    await first.put(QueuedRun("run-a", None))
    await first.put(QueuedRun("run-b", None))
    assert await later.run_ids("shared") == {"run-a", "run-b"}


async def test_heartbeat_keeps_a_long_run_from_being_reclaimed(
    make_queue: MakeQueue, client: redis.Redis
) -> None:
    owner = make_queue("owner", visibility_timeout_s=0.6)
    other = make_queue("other", visibility_timeout_s=0.6)
    await owner.start()
    await other.start()
    await owner.put(QueuedRun("run-long", None))
    delivery = await asyncio.wait_for(owner.get(), 5)

    await nothing_within(other, 2.2)  # > 3 x the visibility timeout

    rows = await pending_rows(client, owner.key("shared"))
    assert [(row["consumer"], row["times_delivered"]) for row in rows] == [(b"owner", 1)]
    assert rows[0]["time_since_delivered"] < 600
    await owner.ack(delivery)
    assert await pending_rows(client, owner.key("shared")) == []


async def test_a_reclaimed_entry_whose_message_was_deleted_is_acked_and_skipped(
    make_queue: MakeQueue, client: redis.Redis
) -> None:
    dead = make_queue("dead", visibility_timeout_s=0.5)
    await dead.start()
    entry_id = await dead.put(QueuedRun("run-gone", None))
    await asyncio.wait_for(dead.get(), 5)
    await dead.stop()
    await client.xdel(dead.key("shared"), entry_id)

    heir = make_queue("heir", visibility_timeout_s=0.5)
    await nothing_within(heir, 1.5)

    assert await pending_rows(client, heir.key("shared")) == []


async def test_ack_gone_acks_only_pending_entries_without_a_message(
    make_queue: MakeQueue, client: redis.Redis
) -> None:
    worker = make_queue("w1")
    await worker.start()
    gone_id = await worker.put(QueuedRun("run-gone", None))
    kept_id = await worker.put(QueuedRun("run-kept", None))
    await asyncio.wait_for(worker.get(), 5)
    await asyncio.wait_for(worker.get(), 5)
    await client.xdel(worker.key("shared"), gone_id)

    assert await worker.ack_gone("shared") == 1

    rows = await pending_rows(client, worker.key("shared"))
    assert [row["message_id"].decode() for row in rows] == [kept_id]


async def test_dedicated_team_streams_are_read_only_by_their_consumers(make_queue: MakeQueue) -> None:
    bot = make_queue("bot")
    shared_only = make_queue("shared-worker")
    dedicated = make_queue("team-worker", streams=(TEAM,))
    await shared_only.start()
    await dedicated.start()

    team_id = await bot.put(QueuedRun("run-team", None), stream=TEAM)

    await nothing_within(shared_only, 0.8)
    delivery = await asyncio.wait_for(dedicated.get(), 5)
    assert (delivery.item.run_id, delivery.stream, delivery.entry_id) == ("run-team", TEAM, team_id)
    assert dedicated.key(TEAM).endswith(":runs:team:acme/checkout")


async def test_a_consumer_of_two_streams_serves_both_fairly(make_queue: MakeQueue) -> None:
    bot = make_queue("bot")
    both = make_queue("w1", streams=("shared", TEAM))
    await both.start()
    for n in range(5):
        await bot.put(QueuedRun(f"shared-{n}", None))
    await bot.put(QueuedRun("team-0", None), stream=TEAM)

    first_two = [await asyncio.wait_for(both.get(), 5) for _ in range(2)]

    assert {delivery.stream for delivery in first_two} == {"shared", TEAM}


async def test_depth_counts_waiting_and_pending_and_the_oldest_age_grows(make_queue: MakeQueue) -> None:
    bot = make_queue("bot")
    assert (await bot.depth()).oldest_age_s == 0.0
    for n in range(3):
        await bot.put(QueuedRun(f"run-{n}", None))
    before_group = await bot.depth()
    assert (before_group.waiting, before_group.pending) == (3, 0)

    worker = make_queue("w1")
    delivery = await asyncio.wait_for(worker.get(), 5)
    early = await bot.depth()
    await asyncio.sleep(0.3)
    later = await bot.depth()

    assert (early.waiting, early.pending) == (2, 1)
    assert later.oldest_age_s >= early.oldest_age_s + 0.25
    await worker.ack(delivery)
    after = await bot.depth()
    assert (after.waiting, after.pending) == (2, 0)


async def test_unreachable_redis_raises_queue_unavailable_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1)
    queue = RedisStreamRunQueue(client, namespace="ifx-test-down", consumer="w1")
    try:
        for attempt in (queue.put(QueuedRun("run-1", None)), queue.get(), queue.depth()):
            started = time.monotonic()
            with pytest.raises(QueueUnavailable) as raised:
                await asyncio.wait_for(attempt, 5)
            assert time.monotonic() - started < 2
            assert isinstance(raised.value, ConnectionError)
            assert str(raised.value) == (
                "the run queue (Redis) did not answer (ConnectionError); try again shortly"
            )
    finally:
        await queue.stop()
        await client.aclose()


class SwallowingRedis(redis.Redis):
    """What redis-py does on Python 3.11 when a cancellation lands just as a socket write completes
    (CPython gh-86296): the command returns normally and the cancellation is lost. Here it happens on
    every XREADGROUP and heartbeat script call cancelled while ``swallow`` is set."""

    swallow = True
    entered: dict[str, asyncio.Event]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command = str(args[0])
        if command not in ("XREADGROUP", "EVALSHA"):
            return await super().execute_command(*args, **options)
        self.entered.setdefault(command, asyncio.Event()).set()
        try:
            if command == "EVALSHA":
                await asyncio.sleep(0.3)
            return await super().execute_command(*args, **options)
        except asyncio.CancelledError:
            if self.swallow:
                return []
            raise


async def test_a_cancellation_the_client_swallows_still_ends_get_and_stop(
    redis_url: str, namespace: str
) -> None:
    client = SwallowingRedis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    assert isinstance(client, SwallowingRedis)
    client.entered = {}
    worker = RedisStreamRunQueue(client, namespace=namespace, consumer="w1", visibility_timeout_s=0.3)
    getter = asyncio.create_task(worker.get())
    leftovers: list[asyncio.Task[Any]] = [getter]
    try:
        await asyncio.wait_for(client.entered.setdefault("XREADGROUP", asyncio.Event()).wait(), 5)
        getter.cancel()
        done, _ = await asyncio.wait({getter}, timeout=3)
        assert done, "get() went on after its cancellation was swallowed"
        assert getter.cancelled()

        await worker.put(QueuedRun("run-1", None))
        await asyncio.wait_for(worker.get(), 5)  # in flight: the heartbeat runs its script
        await asyncio.wait_for(client.entered.setdefault("EVALSHA", asyncio.Event()).wait(), 5)
        stopper = asyncio.create_task(worker.stop())
        leftovers.append(stopper)
        stopped, _ = await asyncio.wait({stopper}, timeout=3)
        assert stopped, "stop() waits for a heartbeat whose cancellation was swallowed"
    finally:
        client.swallow = False
        for task in leftovers:  # what a failure above left running
            task.cancel()
        await worker.stop()
        await client.aclose()


async def test_cancelled_get_and_stop_end_promptly_and_lose_nothing(make_queue: MakeQueue) -> None:
    rng = random.Random(7)
    worker = make_queue("w1", visibility_timeout_s=0.3)
    await worker.start()
    for _ in range(30):
        getter = asyncio.create_task(worker.get())
        await asyncio.sleep(rng.random() * 0.25)
        getter.cancel()
        done, _ = await asyncio.wait({getter}, timeout=2)
        assert done, "a cancelled get() kept running"

    entry_id = await worker.put(QueuedRun("run-after", None))
    delivery = await asyncio.wait_for(worker.get(), 5)
    assert (delivery.entry_id, delivery.deliveries) == (entry_id, 1)

    for n in range(10):  # with an entry in flight, the heartbeat talks to Redis every 0.1 s
        await worker.put(QueuedRun(f"run-{n}", None))
        await asyncio.wait_for(worker.get(), 5)
        await asyncio.sleep(rng.random() * 0.2)
        await asyncio.wait_for(worker.stop(), 2)
        await worker.start()
