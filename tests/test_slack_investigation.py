"""The investigation slice end to end: @mention -> team -> run -> live progress -> RCA in the thread."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

from incidentfox.agents.events import event_from_dict
from tests.slack_world import CHANNEL, signed_headers, world


async def test_mention_in_a_claimed_channel_ends_with_an_rca_quoting_the_log_line(
    tmp_path: Path, database_url: str
) -> None:
    async with world(tmp_path, database_url=database_url) as w:
        mention = w.mention("why is checkout crashlooping?")
        response = await w.post_event(w.slack.make_event_callback(mention, event_id="Ev001"))
        assert response.status == 200

        posted = await w.progress_post(mention["ts"])
        assert posted.args["channel"] == CHANNEL
        assert posted.args["text"].startswith("🔍 Investigating")
        final = await w.final_update(mention["ts"], "DEPLOY_ENV is undefined")
        final_text = json.dumps(final.args["blocks"])
        assert "checkout-7d9f8b6c5-x2k4q" in final_text
        assert "previous logs" in final_text
        assert "feedback_up" in final_text

        [run] = await w.wait_runs_finished(1)
        assert run.status == "succeeded"
        assert run.thread_ts == mention["ts"]
        kinds = [event_from_dict(e).kind for e in run.events]
        assert kinds[0] == "started"
        assert kinds[1] == "subagent_start"
        assert kinds[-2:] == ["subagent_end", "result"]
        assert run.rca["confidence"]["level"] == "high"
        assert run.timings["first_message_s"] < 5
        updates = [c for c in w.slack.calls("chat.update") if c.args.get("ts") == posted.response["ts"]]
        assert updates[-1] is final
        gaps = [b.at - a.at for a, b in itertools.pairwise(updates)]
        assert all(gap >= 0.18 for gap in gaps), gaps


async def test_slack_retry_does_not_start_a_second_run(tmp_path: Path, database_url: str) -> None:
    async with world(tmp_path, database_url=database_url) as w:
        body = w.slack.make_event_callback(w.mention("why is checkout crashlooping?"), event_id="Ev002")
        first = await w.post_event(body)
        retry = await w.post_event(body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
        assert (first.status, retry.status) == (200, 200)
        await w.wait_runs_finished(1)
        await asyncio.sleep(0.3)
        runs = await w.wait_runs_finished(1)
        assert len(runs) == 1
        progress = [
            c for c in w.slack.calls("chat.postMessage") if "Investigating" in str(c.args.get("text"))
        ]
        assert len(progress) == 1


async def test_an_unclaimed_channel_gets_a_setup_hint_and_no_run(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        mention = w.mention("anything wrong?", channel="C0NOBODY")
        assert (await w.post_event(w.slack.make_event_callback(mention, event_id="Ev003"))).status == 200
        hint = await w.slack.wait_for("chat.postEphemeral")
        assert hint.args["user"] == "U0ALICE"
        assert "/incidentfox setup" in hint.args["text"]
        assert "C0NOBODY" in hint.args["text"]
        assert w.slack.calls("chat.postMessage") == []
        assert w.fox.runtime is not None
        assert await w.fox.runtime.runs.unfinished() == []


async def test_a_team_without_integrations_is_told_which_key_is_missing(tmp_path: Path) -> None:
    async with world(tmp_path, team_config={"routing": {"slack_channel_ids": [CHANNEL]}}) as w:
        mention = w.mention("why is checkout down?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="Ev004"))
        notice = await w.slack.wait_for("chat.postMessage")
        assert notice.args["thread_ts"] == mention["ts"]
        assert "integrations.kubernetes.kubeconfig" in notice.args["text"]
        assert "*checkout*" in notice.args["text"]


async def test_forged_stale_and_missing_signatures_get_401_and_start_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        body = json.dumps(w.slack.make_event_callback(w.mention("why?"), event_id="Ev005"))
        cases = [
            signed_headers(body, secret="wrong-secret"),
            signed_headers(body, timestamp=1_600_000_000),
            {"Content-Type": "application/json"},
        ]
        for headers in cases:
            async with w.http.post(w.url, data=body, headers=headers) as response:
                assert response.status == 401
                assert await response.text() == ""
        await asyncio.sleep(0.2)
        assert w.slack.calls("chat.postMessage") == []


async def test_oversized_and_malformed_bodies_are_refused(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        big = '{"x": "' + "a" * (1024 * 1024) + '"}'
        async with w.http.post(w.url, data=big, headers=signed_headers(big)) as response:
            assert response.status == 413
        broken = '{"type": "event_callback", '
        async with w.http.post(w.url, data=broken, headers=signed_headers(broken)) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "malformed_json"


async def test_url_verification_challenge_is_answered(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"})
        async with w.http.post(w.url, data=body, headers=signed_headers(body)) as response:
            assert response.status == 200
            assert (await response.json()) == {"challenge": "abc123"}


async def test_socket_mode_mention_is_acked_and_investigated(tmp_path: Path) -> None:
    async with world(tmp_path, socket_mode=True) as w:
        await w.slack.wait_for_connections(1)
        mention = w.mention("why is checkout crashlooping?")
        envelope = await w.slack.send_event(mention, event_id="Ev006")
        ack = await w.slack.wait_for_ack(envelope)
        assert ack.latency < 3.0
        await w.final_update(mention["ts"], "DEPLOY_ENV is undefined")
        [run] = await w.wait_runs_finished(1)
        assert run.delivery_id == "slack:Ev006"


async def test_rate_limited_and_failing_slack_calls_are_retried_and_the_rca_lands(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.slack.fail_next("chat.postMessage", status=429, retry_after=1)
        w.slack.fail_next("chat.update", status=503)
        w.slack.fail_next("chat.update", status=429, retry_after=1, times=2)
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="Ev007"))
        await w.final_update(mention["ts"], "DEPLOY_ENV is undefined", timeout=20)
        failed = w.slack.calls("chat.update", ok=False)
        assert sorted(c.status for c in failed) == [429, 429, 503]
        assert [c.status for c in w.slack.calls("chat.postMessage")] == [429, 200]
        [run] = await w.wait_runs_finished(1)
        assert run.status == "succeeded"


async def test_an_unreachable_cluster_ends_in_plain_words(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.k8s.unreachable = True
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="Ev008"))
        final = await w.final_update(mention["ts"], "unreachable")
        text = json.dumps(final.args)
        assert "Traceback" not in text
        assert w.k8s.token not in text


async def test_a_run_accepted_before_a_restart_is_investigated_after_it(tmp_path: Path) -> None:
    async with world(tmp_path, role="bot") as w:
        mention = w.mention("why is checkout crashlooping?")
        assert (await w.post_event(w.slack.make_event_callback(mention, event_id="Ev009"))).status == 200
        assert w.fox.runtime is not None
        [queued] = await w.fox.runtime.runs.unfinished()
        assert queued.status == "queued"
        assert w.slack.calls("chat.postMessage") == [], "no worker in this process"

        await w.restart(role="all")
        await w.final_update(mention["ts"], "DEPLOY_ENV is undefined")
        [run] = await w.wait_runs_finished(1)
        assert run.run_id == queued.run_id


async def test_a_direct_message_in_a_claimed_dm_is_investigated(tmp_path: Path) -> None:
    team = {
        "routing": {"slack_channel_ids": ["D0ALICE"]},
        "integrations": {"kubernetes": {"kubeconfig_content": "not: a kubeconfig"}},
    }
    async with world(tmp_path, team_config=team) as w:
        dm = {**w.slack.make_message("D0ALICE", "U0ALICE", "is anything broken?"), "channel_type": "im"}
        assert (await w.post_event(w.slack.make_event_callback(dm, event_id="Ev010"))).status == 200
        final = await w.final_update(dm["ts"], "Kubernetes")
        assert "not available" in json.dumps(final.args)
        [run] = await w.wait_runs_finished(1)
        assert run.kind == "dm"


async def test_no_llm_mode_scrubs_the_teams_secret_values_from_the_rca(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert w.fox.runtime is not None
        from incidentfox.config.permissions import Principal

        await w.fox.runtime.config.write_config(
            Principal(kind="admin"),
            "acme",
            "checkout",
            {"integrations": {"database": {"credentials": {"dsn_suffix": "DEPLOY_ENV is undefined"}}}},
            operation="patch",
        )
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="Ev011"))
        final = await w.final_update(mention["ts"], "[REDACTED]")
        assert "DEPLOY_ENV is undefined" not in json.dumps(final.args)
        [run] = await w.wait_runs_finished(1)
        assert "DEPLOY_ENV is undefined" not in json.dumps(run.rca)
        assert "DEPLOY_ENV is undefined" not in json.dumps(run.events)


async def test_a_trigger_that_cannot_be_persisted_is_left_for_slacks_retry(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    from incidentfox.agents.runs.intake import RunIntake

    async with world(tmp_path) as w:
        original = RunIntake._commit

        async def database_down(self: RunIntake, batch: Any) -> Any:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))

        body = w.slack.make_event_callback(w.mention("why is checkout crashlooping?"), event_id="Ev012")
        RunIntake._commit = database_down  # type: ignore[method-assign]
        try:
            first = await w.post_event(body)
        finally:
            RunIntake._commit = original  # type: ignore[method-assign]
        assert first.status >= 500, "no ack, so Slack delivers the event again"
        assert w.slack.calls("chat.postMessage") == []

        retry = await w.post_event(body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
        assert retry.status == 200
        [run] = await w.wait_runs_finished(1)
        assert run.delivery_id == "slack:Ev012"
