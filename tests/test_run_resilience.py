"""No run is stranded or lost: worker steps retried, finals kept until Slack takes them, resumes capped."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update

from incidentfox.agents.pending_finals import FinalRetrySchedule
from incidentfox.agents.progress_marker import run_metadata
from incidentfox.agents.resilience import Resilience
from incidentfox.agents.runs.models import Run
from incidentfox.agents.step_retry import Backoff
from incidentfox.db.base import utcnow
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from tests.slack_world import CHANNEL, World, world


def fast() -> Resilience:
    """Production's retry shape with tiny waits, so a storm of a few seconds tells the whole story."""
    return Resilience(
        step_backoff=Backoff(attempts=3, base_s=0.02, cap_s=0.1),
        final_wait_s=0.3,
        final_retry=FinalRetrySchedule(base_s=0.05, cap_s=0.3),
        finals_poll_s=0.05,
        requeue_delay_s=0.2,
        journal_interval_s=0.1,
        auth_warm_attempts=1,
    )


def tune(w: World) -> None:
    """Apply ``fast()`` to the running process (the world starts with the defaults) and to restarts."""
    w.fox.resilience = tuning = fast()
    assert w.fox.worker is not None and w.fox.finals is not None
    w.fox.worker.backoff = tuning.step_backoff
    w.fox.worker.final_wait_s = tuning.final_wait_s
    w.fox.worker.requeue_delay_s = tuning.requeue_delay_s
    w.fox.worker.journal.interval_s = tuning.journal_interval_s
    w.fox.finals.schedule = tuning.final_retry
    w.fox.finals.poll_s = tuning.finals_poll_s


async def stored(w: World, run_id: str) -> Run:
    assert w.fox.runtime is not None
    run = await w.fox.runtime.runs.get(run_id)
    assert run is not None
    return run


async def only_run(w: World, timeout: float = 10.0) -> Run:
    assert w.fox.runtime is not None
    for _ in range(int(timeout / 0.05)):
        async with w.fox.runtime.sessions() as session:
            from sqlalchemy import select

            runs = list((await session.scalars(select(Run))).all())
        if runs:
            [run] = runs
            return run
        await asyncio.sleep(0.05)
    raise AssertionError("no run was accepted")


async def wait_until(check: Any, timeout: float = 10.0, what: str = "condition") -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def thread_replies(w: World, thread_ts: str, needle: str) -> list[Any]:
    return [m for m in w.slack.messages(CHANNEL, thread_ts) if needle in json.dumps([m.text, m.blocks])]


async def test_a_first_post_refused_with_server_errors_is_retried_and_the_run_finishes(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        tune(w)
        w.slack.fail_next("chat.postMessage", status=500, times=4)
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvR1"))
        await w.final_update(mention["ts"], "DEPLOY_ENV")
        [run] = await w.wait_runs_finished(1)
        assert run.status == "succeeded"
        posts = [
            c
            for c in w.slack.calls("chat.postMessage", ok=True)
            if "Investigating" in str(c.args.get("text"))
        ]
        assert len(posts) == 1


async def test_slack_unreachable_at_the_first_post_ends_the_run_with_a_message_kept_across_a_restart(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        tune(w)
        w.slack.fail_next("chat.postMessage", status=503, times=10_000)
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvR2"))
        run = await only_run(w)

        async def failed_with_pending() -> bool:
            current = await stored(w, run.run_id)
            return current.status == "failed" and current.final_message is not None

        await wait_until(failed_with_pending, what="the run to fail with its message pending")
        await w.restart()
        w.slack.clear_faults()

        async def settled() -> bool:
            return (await stored(w, run.run_id)).final_message is None

        await wait_until(settled, what="the pending message to be delivered")
        notes = thread_replies(w, mention["ts"], "could not reach Slack")
        assert len(notes) == 1
        assert (await stored(w, run.run_id)).message_ts == notes[0].ts


async def test_a_database_read_that_fails_twice_is_retried_and_the_run_finishes(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tune(w)
        assert w.fox.runtime is not None
        runs = w.fox.runtime.runs
        real_get = runs.get
        failures = {"left": 2}

        async def flaky_get(run_id: str) -> Run | None:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise OSError("connection reset by the database")
            return await real_get(run_id)

        runs.get = flaky_get  # type: ignore[method-assign]
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvR3"))
        await w.final_update(mention["ts"], "DEPLOY_ENV")
        [run] = await w.wait_runs_finished(1)
        assert run.status == "succeeded"
        assert failures["left"] == 0


async def test_a_run_that_cannot_be_read_at_all_stays_queued_and_is_tried_again(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tune(w)
        assert w.fox.runtime is not None
        runs = w.fox.runtime.runs
        real_get = runs.get
        down = {"now": True}

        async def down_get(run_id: str) -> Run | None:
            if down["now"]:
                raise OSError("the database is down")
            return await real_get(run_id)

        runs.get = down_get  # type: ignore[method-assign]
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvR4"))
        await asyncio.sleep(0.5)
        assert (await only_run(w)).status == "queued"
        down["now"] = False
        await w.final_update(mention["ts"], "DEPLOY_ENV")
        [run] = await w.wait_runs_finished(1)
        assert run.status == "succeeded"


async def test_a_config_that_cannot_be_loaded_ends_the_run_with_a_plain_message(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tune(w)
        assert w.fox.runtime is not None

        async def broken_config(org_id: str, node_id: str) -> dict[str, Any]:
            raise OSError("the database is down: password=hunter2")

        w.fox.runtime.config.effective_config = broken_config  # type: ignore[method-assign]
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvR5"))
        final = await w.final_update(mention["ts"], "could not load this team")
        assert "hunter2" not in json.dumps(final.args)
        [run] = await w.wait_runs_finished(1)
        assert run.status == "failed"


async def test_the_final_rca_outlasts_a_429_storm_and_a_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tune(w)
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvR6"))
        posted = await w.progress_post(mention["ts"])
        w.slack.fail_next("chat.update", status=429, retry_after=1, times=100_000)
        run = await only_run(w)

        async def finished_with_pending() -> bool:
            current = await stored(w, run.run_id)
            return current.status == "succeeded" and current.final_message is not None

        await wait_until(finished_with_pending, what="the RCA to be kept pending")
        await w.restart()
        await asyncio.sleep(2.0)
        assert (await stored(w, run.run_id)).final_message is not None, "still pending while the storm lasts"
        w.slack.clear_faults()
        final = await w.final_update(mention["ts"], "DEPLOY_ENV")
        assert final.args["ts"] == posted.response["ts"]

        async def settled() -> bool:
            return (await stored(w, run.run_id)).final_message is None

        await wait_until(settled, what="the pending RCA to be settled")
        finals = [
            c
            for c in w.slack.calls("chat.update", ok=True)
            if "DEPLOY_ENV" in json.dumps(c.args.get("blocks"))
        ]
        assert len(finals) == 1, "delivered once, never again"


async def test_a_pending_final_whose_thread_is_gone_is_dropped(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tune(w)
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvR7"))
        await w.progress_post(mention["ts"])
        w.slack.fail_next("chat.update", status=429, retry_after=1, times=20)
        run = await only_run(w)

        async def pending() -> bool:
            return (await stored(w, run.run_id)).final_message is not None

        await wait_until(pending, what="the RCA to be kept pending")
        w.slack.clear_faults()
        w.slack.fail_next("chat.update", status=200, error="channel_not_found", times=1)

        async def settled() -> bool:
            return (await stored(w, run.run_id)).final_message is None

        await wait_until(settled, what="the pending RCA to be dropped")
        tries = len(w.slack.calls("chat.update"))
        await asyncio.sleep(0.5)
        assert len(w.slack.calls("chat.update")) == tries


async def _queued_run(w: World, event_id: str) -> tuple[dict[str, Any], Run]:
    """A run accepted by a bot-only process (no worker), so it is still ``queued``."""
    await w.restart(role="bot")
    mention = w.mention("why is checkout crashlooping?")
    await w.post_event(w.slack.make_event_callback(mention, event_id=event_id))
    return mention, await only_run(w)


async def _set(w: World, run_id: str, **values: Any) -> None:
    assert w.fox.runtime is not None
    async with w.fox.runtime.sessions.begin() as session:
        await session.execute(update(Run).where(Run.run_id == run_id).values(**values))


async def test_a_run_cut_off_three_times_ends_with_a_message_instead_of_running_again(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tune(w)
        mention, run = await _queued_run(w, "EvR8")
        await _set(w, run.run_id, attempts=3)
        await w.restart()

        async def ended() -> bool:
            current = await stored(w, run.run_id)
            return current.status == "failed" and current.final_message is None

        await wait_until(ended, what="the run to end")
        assert len(thread_replies(w, mention["ts"], "cut off by a restart 3 times")) == 1
        assert not [
            c for c in w.slack.calls("chat.postMessage") if "Investigating" in str(c.args.get("text"))
        ]


async def test_a_run_older_than_the_age_limit_ends_with_a_message(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tune(w)
        mention, run = await _queued_run(w, "EvR9")
        await _set(w, run.run_id, created_at=utcnow() - timedelta(hours=2))
        await w.restart()

        async def ended() -> bool:
            return (await stored(w, run.run_id)).status == "failed"

        await wait_until(ended, what="the run to end")
        await wait_until(
            lambda: _true(len(thread_replies(w, mention["ts"], "more than 1 hour old")) == 1),
            what="the message in the thread",
        )


async def _true(value: bool) -> bool:
    return value


async def test_a_resumed_run_within_the_limits_runs_and_counts_the_attempt(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tune(w)
        mention, _ = await _queued_run(w, "EvR10")
        await w.restart()
        await w.final_update(mention["ts"], "DEPLOY_ENV")
        [finished] = await w.wait_runs_finished(1)
        assert finished.status == "succeeded"
        assert finished.attempts == 2


@pytest.fixture
async def slow_model() -> Any:
    async with OpenAIEmulator() as emulator:
        emulator.responder = RoutedScript().when_tool_offered(
            "ask_kubernetes", [ScriptStep.delay(60), ScriptStep.delay(60), ScriptStep.delay(60)]
        )
        yield emulator


async def test_progress_is_persisted_while_the_run_is_still_running(
    tmp_path: Path, slow_model: OpenAIEmulator
) -> None:
    async with world(tmp_path, openai=slow_model) as w:
        tune(w)
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvR11"))
        await w.progress_post(mention["ts"])
        run = await only_run(w)

        async def timeline_saved() -> bool:
            current = await stored(w, run.run_id)
            return current.status == "running" and len(current.events) >= 2

        await wait_until(timeline_saved, what="the running run's events in the database")
        kinds = [event["kind"] for event in (await stored(w, run.run_id)).events]
        assert kinds[0] == "started"
        w.fox.shutdown_grace_s = 0.1


async def test_an_event_that_arrives_while_auth_test_fails_gets_503_and_its_retry_runs(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        tune(w)
        w.slack.fail_next("auth.test", status=500, times=10_000)
        await w.restart()
        mention = w.mention("why is checkout crashlooping?")
        body = w.slack.make_event_callback(mention, event_id="EvR12")
        refused = await w.post_event(body)
        assert refused.status == 503
        assert w.fox.runtime is not None
        assert await w.fox.runtime.runs.unfinished() == []
        w.slack.clear_faults()
        await asyncio.sleep(1.1)
        retried = await w.post_event(body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
        assert retried.status == 200
        await w.final_update(mention["ts"], "DEPLOY_ENV")


async def test_deliveries_past_their_retry_window_are_pruned_and_recent_ones_still_dedupe(
    tmp_path: Path,
) -> None:
    from incidentfox.agents.runs.delivery_pruning import prune_deliveries
    from incidentfox.agents.runs.models import Delivery

    async with world(tmp_path) as w:
        assert w.fox.runtime is not None
        now = utcnow()
        aged = {
            "slack:EvOLD": timedelta(hours=2),
            "slack:EvRECENT": timedelta(minutes=10),
            "slack:resume:run_1": timedelta(days=30),
            "github:old-delivery": timedelta(days=5),
            "github:recent-delivery": timedelta(days=2),
            "pagerduty:old": timedelta(days=2),
            "pagerduty:recent": timedelta(hours=3),
            "other:recent": timedelta(days=3),
        }
        async with w.fox.runtime.sessions.begin() as session:
            session.add_all(
                Delivery(delivery_id=d, outcome="queued", received_at=now - age) for d, age in aged.items()
            )
        assert await prune_deliveries(w.fox.runtime.sessions) == 3
        async with w.fox.runtime.sessions() as session:
            from sqlalchemy import select

            left = set((await session.scalars(select(Delivery.delivery_id))).all())
        assert left == {
            "slack:EvRECENT",
            "slack:resume:run_1",
            "github:recent-delivery",
            "pagerduty:recent",
            "other:recent",
        }
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvRECENT"))
        await asyncio.sleep(0.3)
        assert await w.fox.runtime.runs.unfinished() == []
        assert not w.slack.calls("chat.postMessage")


async def test_a_run_cut_off_after_slack_took_its_first_post_takes_that_message_over(tmp_path: Path) -> None:
    """The crash came between Slack accepting "Investigating…" and the run saving its ``ts``."""
    async with world(tmp_path) as w:
        tune(w)
        mention, run = await _queued_run(w, "EvR14")
        bot = AsyncWebClient(token=w.slack.bot_token, base_url=w.slack.api_url)
        other = await bot.chat_postMessage(
            channel=CHANNEL,
            thread_ts=mention["ts"],
            text="Investigating… (another run)",
            metadata=run_metadata("run_someoneelse"),
        )
        stranded = await bot.chat_postMessage(
            channel=CHANNEL,
            thread_ts=mention["ts"],
            text="Investigating…",
            metadata=run_metadata(run.run_id),
        )
        await w.restart()
        await w.slack.wait_for(
            "chat.update",
            lambda c: c.ok and c.args.get("ts") == stranded["ts"] and "DEPLOY_ENV" in json.dumps(c.args),
            timeout=15,
        )
        [finished] = await w.wait_runs_finished(1)
        assert (finished.status, finished.message_ts, finished.attempts) == ("succeeded", stranded["ts"], 2)
        posted = [c for c in w.slack.calls("chat.postMessage") if c.args.get("thread_ts") == mention["ts"]]
        assert len(posted) == 2, "the resumed run posted no second progress message"
        untouched = [m for m in w.slack.messages(CHANNEL, mention["ts"]) if m.ts == other["ts"]]
        assert [m.text for m in untouched] == ["Investigating… (another run)"]
