"""Scheduled reports: config validation through the API, one run per slot across processes sharing a
database, restarts and downtime, the report's thread in Slack, and the App Home's next run and last
result. Against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from incidentfox.agents.incidents.models import IncidentThread
from incidentfox.agents.queue import InProcessRunQueue
from incidentfox.agents.runs.models import Run
from incidentfox.blocks.config_summary import TeamOverview
from incidentfox.blocks.home import HomePage, render_home
from incidentfox.blocks.schedules import ScheduleLine
from incidentfox.blocks.thread_root import render_thread_root, thread_root_text
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.config.permissions import Principal
from incidentfox.emulators.slack.validation import validate_message, validate_view
from incidentfox.schedules.flows import Scheduler, delivery_id_of
from incidentfox.schedules.models import ScheduleSlot
from incidentfox.schedules.service import SlotStore
from incidentfox.schedules.spec import DEFAULT_PROMPT
from tests.conftest import Api, make_settings
from tests.goldens import assert_matches_golden
from tests.slack_world import CHANNEL, USER, World, world
from tests.test_slack_home import connect_org, open_home, texts

ADMIN = Principal(kind="admin")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKLY = {"cron": "0 9 * * 1", "timezone": "Europe/Berlin", "channel_id": "C0REPORTS"}
MONDAY_0830 = datetime(2026, 12, 7, 8, 30, tzinfo=BERLIN)
MONDAY_0900 = datetime(2026, 12, 7, 9, 0, tzinfo=BERLIN)
CLUSTER = {"integrations": {"kubernetes": {"api_url": "http://127.0.0.1:9", "token": "t0ken"}}}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- validation through the config API ---------------------------------------------------------------


async def _team(api: Api) -> str:
    token = await api.create_org("acme")
    await api.create_node("acme", "checkout", "acme", "team", token)
    return token


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        (
            {**WEEKLY, "cron": "61 9 * * 1"},
            "`schedules.weekly.cron` '61 9 * * 1' is not a valid cron expression",
        ),
        ({**WEEKLY, "cron": "0 9 * *"}, "has 4 fields"),
        ({**WEEKLY, "cron": "@fortnightly"}, "unknown macro"),
        ({**WEEKLY, "cron": "*/5 * * * *"}, "fires every 5 minutes"),
        (
            {**WEEKLY, "timezone": "Mars/Olympus_Mons"},
            "`schedules.weekly.timezone` 'Mars/Olympus_Mons' is not a known time zone",
        ),
        ({**WEEKLY, "timezone": "../../etc/passwd"}, "is not a known time zone"),
        ({**WEEKLY, "channel_id": "#reports"}, "`schedules.weekly.channel_id` must be a Slack channel id"),
        ({**WEEKLY, "every": "monday"}, "`schedules.weekly.every` is not a schedule setting"),
        ({**WEEKLY, "prompt": ""}, "`schedules.weekly.prompt` must be a non-empty question"),
    ],
)
async def test_the_config_api_refuses_a_bad_schedule_with_the_reason(
    api: Api, schedule: dict[str, Any], reason: str
) -> None:
    token = await _team(api)
    path = "/api/v1/orgs/acme/nodes/checkout/config"
    status, body = await api.call("PUT", path, token=token, json={"schedules": {"weekly": schedule}})
    assert status == 400, body
    assert body["error"] == "invalid_schedule"
    assert reason in body["message"]
    assert body["details"] == {"schedule": "weekly"}
    stored = await api.ok("GET", path, token=token)
    assert "schedules" not in stored["config"], "nothing was written"


async def test_the_config_api_stores_a_valid_schedule_and_a_patch_is_checked_too(api: Api) -> None:
    token = await _team(api)
    path = "/api/v1/orgs/acme/nodes/checkout/config"
    await api.ok(
        "PUT", path, token=token, json={"schedules": {"weekly": WEEKLY, "daily": {"cron": "@daily"}}}
    )
    status, body = await api.call(
        "PATCH", path, token=token, json={"schedules": {"weekly": {"timezone": "Europe/Atlantis"}}}
    )
    assert status == 400 and "Europe/Atlantis" in body["message"], body
    status, body = await api.call("PATCH", path, token=token, json={"schedules": "weekly"})
    assert status == 400 and body["error"] == "invalid_schedule", body
    await api.ok("PATCH", path, token=token, json={"schedules": {"weekly": {"timezone": "Asia/Kolkata"}}})
    stored = await api.ok("GET", path, token=token)
    assert stored["config"]["schedules"]["weekly"]["timezone"] == "Asia/Kolkata"
    assert stored["config"]["schedules"]["daily"] == {"cron": "@daily"}


# -- one run per slot, across processes --------------------------------------------------------------


@asynccontextmanager
async def _process(
    database_url: str, data_dir: Path, clock: Clock, name: str
) -> AsyncIterator[tuple[Runtime, Scheduler]]:
    """One IncidentFox process's runtime (its own engine and queue) and scheduler."""
    runtime = await build_runtime(make_settings(database_url, data_dir), migrate=True)
    scheduler = Scheduler(
        config=runtime.config,
        slots=SlotStore(runtime.sessions),
        pipeline=runtime.pipeline,
        incidents=runtime.incidents,
        worker_id=name,
        clock=clock,
    )
    try:
        yield runtime, scheduler
    finally:
        await runtime.close()


async def _configure(runtime: Runtime, team: dict[str, Any]) -> None:
    config = runtime.config
    async with config.sessions.begin() as session:
        await config.create_org(session, org_id="acme", name="Acme", actor="test")
    await config.create_node(ADMIN, "acme", {"node_id": "checkout", "parent_id": "acme", "kind": "team"})
    await config.write_config(ADMIN, "acme", "checkout", team, operation="put")


async def _runs(runtime: Runtime) -> list[Run]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(Run).order_by(Run.created_at))).all())


async def _slots(runtime: Runtime) -> list[ScheduleSlot]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(ScheduleSlot).order_by(ScheduleSlot.slot_at))).all())


async def test_a_slot_fires_once_across_two_processes_and_not_again_after_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_0830)
    async with (
        _process(database_url, tmp_path, clock, "host-a") as (a, scheduler_a),
        _process(database_url, tmp_path, clock, "host-b") as (b, scheduler_b),
    ):
        await _configure(a, {**CLUSTER, "schedules": {"weekly": WEEKLY}})

        first = await asyncio.gather(scheduler_a.tick(), scheduler_b.tick())
        assert first == [[], []], "a schedule seen for the first time does not post last week's report"

        clock.now = MONDAY_0900 + timedelta(seconds=20)
        fired = await asyncio.gather(
            *(s.tick() for s in (scheduler_a, scheduler_b, scheduler_a, scheduler_b))
        )
        assert sum(len(f) for f in fired) == 1, fired
        [run] = await _runs(a)
        assert (run.source, run.kind, run.team_node_id) == ("schedule", "schedule", "checkout")
        assert run.question == DEFAULT_PROMPT
        assert run.channel_id == "C0REPORTS"
        assert run.origin is not None and run.origin["schedule_id"] == "weekly"
        assert isinstance(a.queue, InProcessRunQueue) and isinstance(b.queue, InProcessRunQueue)
        queued = [await q.get() for q in (a.queue, b.queue) if q.qsize() > 0]
        assert [item.run_id for item in queued] == [run.run_id], "queued once, by the process that claimed it"

        slots = await _slots(b)
        assert [(s.outcome, s.slot_at) for s in slots] == [
            ("baseline", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
            ("queued", datetime(2026, 12, 7, 8, 0, tzinfo=UTC)),
        ]
        assert slots[1].run_id == run.run_id

    clock.now = MONDAY_0900 + timedelta(minutes=5)
    async with _process(database_url, tmp_path, clock, "host-c") as (c, restarted):
        assert await restarted.tick() == [], "a restarted process does not fire a claimed slot again"
        assert len(await _runs(c)) == 1


async def test_after_downtime_only_the_latest_missed_slot_fires_once(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_0830)
    async with _process(database_url, tmp_path, clock, "host-a") as (runtime, scheduler):
        await _configure(runtime, {**CLUSTER, "schedules": {"weekly": WEEKLY}})
        await scheduler.tick()

        clock.now = MONDAY_0830 + timedelta(days=22)
        [fired] = await scheduler.tick()
        assert fired.slot_at == datetime(2026, 12, 28, 9, 0, tzinfo=BERLIN)
        assert await scheduler.tick() == []
        assert len(await _runs(runtime)) == 1, "three missed Mondays make one report, not a backlog"


async def test_a_paused_or_changed_schedule_does_not_fire_a_past_slot(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_0830)
    async with _process(database_url, tmp_path, clock, "host-a") as (runtime, scheduler):
        await _configure(runtime, {**CLUSTER, "schedules": {"weekly": {**WEEKLY, "enabled": False}}})
        await scheduler.tick()
        clock.now = MONDAY_0900 + timedelta(days=7, minutes=1)
        assert await scheduler.tick() == [], "paused"

        await runtime.config.write_config(
            ADMIN, "acme", "checkout", {"schedules": {"weekly": {"enabled": True}}}, operation="patch"
        )
        clock.now += timedelta(minutes=1)
        assert await scheduler.tick() == [], "resumed: the slots missed while paused are not made up"
        clock.now = MONDAY_0900 + timedelta(days=14, seconds=5)
        assert len(await scheduler.tick()) == 1

        await runtime.config.write_config(
            ADMIN, "acme", "checkout", {"schedules": {"weekly": {"cron": "0 8 * * *"}}}, operation="patch"
        )
        clock.now += timedelta(minutes=1)
        assert await scheduler.tick() == [], "a changed cron starts afresh instead of firing today's 08:00"
        assert len(await _runs(runtime)) == 1


async def test_a_slot_whose_claimer_died_before_submitting_is_taken_over_once(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_0830)
    async with (
        _process(database_url, tmp_path, clock, "host-a") as (a, scheduler_a),
        _process(database_url, tmp_path, clock, "host-b") as (_, scheduler_b),
    ):
        await _configure(a, {**CLUSTER, "schedules": {"weekly": WEEKLY}})
        await scheduler_a.tick()
        [schedule] = await scheduler_a.schedules()
        slot = schedule.slot(MONDAY_0900.astimezone(UTC))
        assert await SlotStore(a.sessions).claim(slot, by="host-dead")
        async with a.sessions.begin() as session:
            await session.execute(
                update(ScheduleSlot)
                .where(ScheduleSlot.schedule_key == slot.schedule_key, ScheduleSlot.slot_at == slot.slot_at)
                .values(claimed_at=datetime.now(UTC) - timedelta(minutes=10))
            )

        clock.now = MONDAY_0900 + timedelta(minutes=1)
        await asyncio.gather(scheduler_a.tick(), scheduler_b.tick())
        [run] = await _runs(a)
        [row] = [s for s in await _slots(a) if s.outcome != "baseline"]
        assert (row.outcome, row.run_id) == ("queued", run.run_id)
        assert row.claimed_by in ("host-a", "host-b")
        assert run.delivery_id == delivery_id_of(slot)


async def test_a_team_without_an_integration_gets_the_reason_as_its_last_result(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_0830)
    async with _process(database_url, tmp_path, clock, "host-a") as (runtime, scheduler):
        await _configure(runtime, {"schedules": {"weekly": WEEKLY}})
        await scheduler.tick()
        clock.now = MONDAY_0900 + timedelta(seconds=1)
        await scheduler.tick()
        assert await _runs(runtime) == []
        results = await SlotStore(runtime.sessions).last_results("acme", "checkout", ["weekly"])
        assert results["weekly"].outcome == "misconfigured"
        assert "No integration is configured" in (results["weekly"].detail or "")


# -- the report in Slack, and the App Home -----------------------------------------------------------


def _next_monday_9am_new_york(now: datetime) -> datetime:
    local = now.astimezone(NEW_YORK)
    day = local.date()
    while True:
        candidate = datetime(day.year, day.month, day.day, 9, 0, tzinfo=NEW_YORK)
        if candidate.weekday() == 0 and candidate > local:
            return candidate
        day += timedelta(days=1)


async def _root_post(w: World, needle: str) -> Any:
    return await w.slack.wait_for(
        "chat.postMessage",
        lambda c: c.ok and not c.args.get("thread_ts") and needle in str(c.args.get("text")),
        timeout=15,
    )


async def test_a_due_schedule_posts_its_report_in_its_own_thread_and_the_home_shows_it(
    tmp_path: Path, database_url: str
) -> None:
    """The slot is a week or more ahead of the real clock, so the process's own scheduler loop, which
    runs on the real clock beside the test's ticks, never fires anything itself."""
    async with world(tmp_path, database_url=database_url) as w:
        await connect_org(w)
        schedule = {
            "cron": "0 9 * * 1",
            "timezone": "America/New_York",
            "prompt": "Weekly health check of prod",
        }
        config = w.fox.runtime.config if w.fox.runtime else None
        assert config is not None and w.fox.scheduler is not None
        await config.write_config(
            ADMIN, "acme", "checkout", {"schedules": {"health": schedule}}, operation="patch"
        )

        view, _ = await open_home(w, USER)
        shown = texts(view)
        expected = _next_monday_9am_new_york(datetime.now(UTC)).strftime("%Y-%m-%d %H:%M %Z")
        assert "*Scheduled reports*" in shown
        assert "*health*: At 09:00 on Monday (America/New_York)" in shown
        assert f"next: {expected} · last: not run yet" in shown
        assert "`schedules.health" not in shown, "shown in its own part, not in the config list"

        monday = _next_monday_9am_new_york(datetime.now(UTC) + timedelta(days=7))
        slot_text = monday.strftime("%Y-%m-%d %H:%M %Z")
        clock = Clock(monday - timedelta(hours=1))
        w.fox.scheduler.clock = clock
        assert await w.fox.scheduler.tick() == []
        clock.now = monday + timedelta(seconds=30)
        [slot] = await w.fox.scheduler.tick()

        root = await _root_post(w, "Scheduled report: health")
        assert root.args["channel"] == CHANNEL, "the team's claimed channel is the default"
        root_blocks = json.dumps(root.args["blocks"])
        assert "Weekly health check of prod" in root_blocks and slot_text in root_blocks
        final = await w.final_update(root.response["ts"], "DEPLOY_ENV is undefined", timeout=20)
        assert final.args["channel"] == CHANNEL
        [run] = await w.wait_runs_finished(1)
        assert (run.status, run.thread_ts, run.kind) == ("succeeded", root.response["ts"], "schedule")
        assert w.fox.runtime is not None
        async with w.fox.runtime.sessions() as session:
            thread = await session.get(IncidentThread, run.origin["incident_key"] if run.origin else "")
        assert thread is not None and thread.root_ts == root.response["ts"]

        view, _ = await open_home(w, USER)
        shown = texts(view)
        assert f"https://incidentfox-test.slack.com/archives/{CHANNEL}/p" in shown
        assert f"|succeeded>, {slot_text}" in shown, "the last result links its thread"

        await w.restart()
        assert w.fox.scheduler is not None
        w.fox.scheduler.clock = Clock(clock.now + timedelta(minutes=3))
        assert await w.fox.scheduler.tick() == [], slot
        await asyncio.sleep(0.3)
        assert len(await w.wait_runs_finished(1)) == 1


# -- renderers (golden) ------------------------------------------------------------------------------


def test_the_home_and_the_reports_root_message_match_their_goldens_and_slack_accepts_them() -> None:
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=BERLIN)
    lines = (
        ScheduleLine(
            "weekly",
            when="At 09:00 on Monday",
            timezone="Europe/Berlin",
            channel_id="C0REPORTS",
            next_run=monday + timedelta(days=7),
            last_slot=monday,
            last_status="succeeded",
            permalink="https://acme.slack.com/archives/C0REPORTS/p1765094400000100",
        ),
        ScheduleLine(
            "nightly",
            when="At 02:00",
            timezone="UTC",
            channel_id="C0OPS",
            enabled=False,
            last_slot=datetime(2026, 12, 6, 2, 0, tzinfo=UTC),
            last_status="misconfigured",
            last_detail="IncidentFox is turned off for this team (`enabled: false` in its config).",
        ),
        ScheduleLine("budget", problem="`schedules.budget.cron` is not set"),
    )
    team = TeamOverview(
        org_id="acme", team_id="checkout", name="Checkout", path=("acme", "checkout"), schedules=lines
    )
    view = render_home(HomePage(user_id=USER, org_id="acme", org_name="Acme", teams=(team,), team_count=1))
    assert validate_view(view, allowed_types={"home"}) is None
    assert_matches_golden("schedules", "home", view)

    state = {
        "source": "schedule",
        "schedule_id": "weekly",
        "when": "At 09:00 on Monday",
        "timezone": "Europe/Berlin",
        "slot": "2026-12-07 09:00 CET",
        "prompt": "Weekly health check: <!channel> namespaces *prod* and _staging_",
    }
    root = {"blocks": render_thread_root(state), "text": thread_root_text(state)}
    assert validate_message(root["text"], root["blocks"]) is None
    assert "<!channel>" not in json.dumps(root), "config text never pings"
    assert_matches_golden("schedules", "root", root)
