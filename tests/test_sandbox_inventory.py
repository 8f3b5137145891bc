"""The sandbox inventory on SQLite and PostgreSQL: activity moves the expiry, the reaper destroys
what expired (also after a restart, and again after a failed attempt), and an expired session is
rehydrated from its stored turns."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from incidentfox.bot.runtime import build_runtime
from incidentfox.db.base import utcnow
from incidentfox.sandboxes.models import SandboxSession
from incidentfox.sandboxes.reaper import SandboxReaper
from incidentfox.sandboxes.rehydration import rehydration_preamble
from incidentfox.sandboxes.store import SandboxStore, SessionPlace, Turn
from tests.conftest import make_settings

PLACE = SessionPlace("acme", "checkout", "T1:C1:1700000000.000100", "C1", "1700000000.000100")


async def test_activity_moves_the_expiry_and_the_reaper_destroys_only_what_expired(
    database_url: str, tmp_path: Path
) -> None:
    runtime = await build_runtime(make_settings(database_url, tmp_path), migrate=True)
    try:
        store = SandboxStore(runtime.sessions)
        kept = await store.open(PLACE, backend="local", sandbox_ref="/sbx/kept", ttl_s=3600)
        stale = await store.open(
            SessionPlace("acme", "checkout", "T1:C1:2", "C1", "2"),
            backend="kubernetes",
            sandbox_ref="ns/p",
            ttl_s=60,
        )
        later = utcnow() + timedelta(minutes=30)
        await store.touch(kept.session_id, now=later)
        destroyed: list[tuple[str, str]] = []
        failing = {"ns/p"}

        async def destroy(row: SandboxSession) -> None:
            assert row.sandbox_ref is not None
            if row.sandbox_ref in failing:
                raise ConnectionError("the API server is down")
            destroyed.append((row.backend, row.sandbox_ref))

        reaper = SandboxReaper(store, destroy)
        assert await reaper.reap_once(utcnow() + timedelta(minutes=5)) == 0, (
            "a failed destroy is retried later"
        )
        row = await store.get(stale.session_id)
        assert row is not None and row.status == "active" and row.sandbox_ref == "ns/p"
        failing.clear()
        assert await reaper.reap_once(utcnow() + timedelta(minutes=61)) == 1
        assert destroyed == [("kubernetes", "ns/p")]
        assert await reaper.reap_once(later + timedelta(minutes=61)) == 1, "touched: expires an hour after"
        assert destroyed[-1] == ("local", "/sbx/kept")
        expired = await store.get(kept.session_id)
        assert expired is not None and (expired.status, expired.sandbox_ref) == ("expired", None)
    finally:
        await runtime.close()


async def test_the_inventory_and_transcript_survive_a_restart_and_rehydrate_a_fresh_sandbox(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path)
    runtime = await build_runtime(settings, migrate=True)
    try:
        store = SandboxStore(runtime.sessions)
        opened = await store.open(
            PLACE, backend="local", sandbox_ref="/sbx/a", ttl_s=60, details={"state_dir": "/sbx/a.state"}
        )
        await store.record_turn(opened.session_id, "user", "why does the checkout build fail on main?")
        await store.record_turn(opened.session_id, "tool", "Bash: git clone … && make test")
        await store.record_turn(opened.session_id, "assistant", "The test fails: DEPLOY_ENV is unset.")
        await store.set_agent_session(opened.session_id, "cli-session-1")
    finally:
        await runtime.close()
    runtime = await build_runtime(settings, migrate=True)
    try:
        store = SandboxStore(runtime.sessions)
        reaped: list[str] = []

        async def destroy(row: SandboxSession) -> None:
            reaped.append(row.sandbox_details["state_dir"])

        assert await SandboxReaper(store, destroy).reap_once(utcnow() + timedelta(seconds=61)) == 1
        assert reaped == ["/sbx/a.state"], "the backend's handles survive the restart"
        found = await store.for_thread(PLACE.thread_key)
        assert found is not None and found.status == "expired" and found.agent_session_id is None
        assert found.sandbox_details == {}
        assert found.turns == 1
        turns = await store.turns(found.session_id)
        assert [t.role for t in turns] == ["user", "tool", "assistant"]
        await store.reattach(found.session_id, backend="local", sandbox_ref="/sbx/b")
        again = await store.get(found.session_id)
        assert again is not None and (again.status, again.sandbox_ref, again.files_reset) == (
            "active",
            "/sbx/b",
            1,
        )
        preamble = rehydration_preamble(turns)
        assert "files" in preamble and "DEPLOY_ENV is unset" in preamble
        assert "why does the checkout build fail on main?" in preamble
    finally:
        await runtime.close()


def test_the_preamble_keeps_the_task_and_the_recent_turns_and_counts_the_rest() -> None:
    now = utcnow()
    turns = [Turn("user", "clone acme/checkout and find why CI fails", now)]
    turns += [Turn("assistant" if n % 2 else "user", f"step {n}", now) for n in range(1, 20)]
    preamble = rehydration_preamble(turns, recent=4)
    assert "clone acme/checkout and find why CI fails" in preamble
    assert "(15 earlier turns are not repeated here.)" in preamble
    assert "step 19" in preamble and "step 15" not in preamble
    assert rehydration_preamble([]) == ""
    long = rehydration_preamble([Turn("user", "x" * 5000, now)])
    assert len(long) < 2500 and long.rstrip().endswith("…")
