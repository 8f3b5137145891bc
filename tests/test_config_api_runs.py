"""The run history API for the config console: lists, pages, one run's timeline, who may see what,
and that nothing secret leaves. Over loopback HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from incidentfox.agents.events import (
    ApprovalDecided,
    ApprovalRequest,
    ProgressEvent,
    Result,
    Started,
    SubagentEnd,
    SubagentStart,
    Thought,
    ToolEnd,
    ToolStart,
    event_to_dict,
)
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.agents.runs.models import Run, RunFeedback
from incidentfox.bot.runtime import Runtime
from incidentfox.db.base import utcnow
from tests.conftest import Api

SLACK_BOT_TOKEN = "xoxb-" + "1234567890-abcdefghijKLMN"
BASE = utcnow().replace(microsecond=0) - timedelta(days=1)
RCA = RootCauseAnalysis(
    summary="checkout pods crash-loop: DATABASE_URL points at a deleted host",
    root_cause="the 14:02 deploy changed DATABASE_URL",
)


@dataclass
class World:
    org_token: str
    checkout_token: str
    globex_token: str


async def _world(api: Api) -> World:
    """acme: platform (unit) -> checkout (team), payments (team); globex: web (team)."""
    org_token = await api.create_org("acme")
    await api.create_node("acme", "platform", "acme", "unit", org_token)
    await api.create_node("acme", "checkout", "platform", "team", org_token)
    await api.create_node("acme", "payments", "acme", "team", org_token)
    globex = await api.create_org("globex")
    await api.create_node("globex", "web", "globex", "team", globex)
    checkout = await api.team_token("acme", "checkout", org_token)
    return World(org_token, checkout, globex)


def _run(
    run_id: str,
    team: str,
    minutes: int,
    *,
    org: str = "acme",
    status: str = "succeeded",
    question: str = "why is checkout down?",
    events: Sequence[ProgressEvent] = (),
    **columns: Any,
) -> Run:
    created = BASE + timedelta(minutes=minutes)
    finished = status in ("succeeded", "failed", "interrupted")
    return Run(
        run_id=run_id,
        org_id=org,
        team_node_id=team,
        source="slack",
        kind="mention",
        delivery_id=f"delivery-{run_id}",
        thread_key=f"slack:C1:{run_id}",
        channel_id="C0CHECKOUT",
        thread_ts=f"1717430{minutes:03d}.000100",
        requester="U0ALICE",
        question=question,
        status=status,
        events=[event_to_dict(event) for event in events],
        created_at=created,
        started_at=None if status == "queued" else created + timedelta(seconds=2),
        finished_at=created + timedelta(seconds=44.5) if finished else None,
        **columns,
    )


async def _store(runtime: Runtime, *rows: Run | RunFeedback) -> None:
    async with runtime.sessions.begin() as session:
        session.add_all(rows)


async def _list(api: Api, token: str, org: str = "acme", **query: Any) -> tuple[int, Any]:
    return await api.call("GET", f"/api/v1/orgs/{org}/runs?{urlencode(query)}", token=token)


def _ids(body: Any) -> list[str]:
    return [run["run_id"] for run in body["runs"]]


async def _standard_runs(runtime: Runtime) -> None:
    await _store(
        runtime,
        _run("run_c1", "checkout", 1),
        _run("run_p2", "payments", 2, status="failed", error="The model could not be reached."),
        _run("run_c3", "checkout", 3, status="running"),
        _run("run_p4", "payments", 4, status="queued"),
        _run("run_g5", "web", 5, org="globex"),
    )


# -- lists --------------------------------------------------------------------------------------------


async def test_an_org_admin_lists_its_org_newest_first_in_the_documented_shape(
    api: Api, runtime: Runtime
) -> None:
    w = await _world(api)
    await _standard_runs(runtime)
    long_question = "why " + "is checkout slow " * 30
    await _store(runtime, _run("run_c6", "checkout", 6, question=long_question))

    status, body = await _list(api, w.org_token)
    assert status == 200, body
    assert _ids(body) == ["run_c6", "run_p4", "run_c3", "run_p2", "run_c1"]
    assert body["next_before"] is None
    newest = body["runs"][0]
    assert set(newest) == {
        "run_id",
        "org_id",
        "team_node_id",
        "status",
        "source",
        "kind",
        "text",
        "origin",
        "channel_id",
        "thread_ts",
        "created_at",
        "started_at",
        "finished_at",
        "duration_s",
    }
    assert len(newest["text"]) == 300
    assert newest["text"] == long_question[:299] + "…"
    assert newest["duration_s"] == 42.5
    assert datetime.fromisoformat(newest["created_at"]) == BASE + timedelta(minutes=6)
    queued = body["runs"][1]
    assert (queued["status"], queued["started_at"], queued["duration_s"]) == ("queued", None, None)
    assert (queued["team_node_id"], queued["channel_id"], queued["origin"]) == (
        "payments",
        "C0CHECKOUT",
        None,
    )


async def test_team_and_status_filters_narrow_the_list(api: Api, runtime: Runtime) -> None:
    w = await _world(api)
    await _standard_runs(runtime)
    assert _ids((await _list(api, w.org_token, team="payments"))[1]) == ["run_p4", "run_p2"]
    assert _ids((await _list(api, w.org_token, status="running"))[1]) == ["run_c3"]
    assert _ids((await _list(api, w.org_token, team="checkout", status="succeeded"))[1]) == ["run_c1"]
    assert _ids((await _list(api, w.org_token, team="checkout", status="failed"))[1]) == []
    assert (await _list(api, w.org_token, org="globex"))[0] == 403, (
        "an org admin never sees another org's runs"
    )


async def test_pages_walk_every_run_once_even_when_two_share_a_timestamp(api: Api, runtime: Runtime) -> None:
    w = await _world(api)
    await _store(
        runtime,
        *(_run(f"run_{i:02d}", "checkout", minutes=i // 2) for i in range(7)),
        _run("run_other", "payments", 2),
    )
    seen: list[str] = []
    before: str | None = None
    pages = 0
    while True:
        query: dict[str, Any] = {"team": "checkout", "limit": 2}
        if before:
            query["before"] = before
        status, body = await _list(api, w.org_token, **query)
        assert status == 200, body
        seen += _ids(body)
        pages += 1
        before = body["next_before"]
        if before is None:
            break
        assert before == body["runs"][-1]["run_id"]
    assert seen == ["run_06", "run_05", "run_04", "run_03", "run_02", "run_01", "run_00"]
    assert pages == 4


async def test_a_page_cursor_must_come_from_the_same_list(api: Api, runtime: Runtime) -> None:
    w = await _world(api)
    await _standard_runs(runtime)
    for before in ("run_g5", "run_missing", "run_p2", "not a run id!"):
        status, body = await _list(api, w.org_token, team="checkout", before=before)
        assert (status, body["error"]) == (400, "invalid_cursor"), before
        assert "next_before" in body["message"]
    status, body = await _list(api, w.org_token, before="run_p2")
    assert (status, _ids(body)) == (200, ["run_c1"]), "an org-wide list pages by any of its runs"


async def test_bad_list_parameters_are_plain_word_400s_and_unknown_places_404(
    api: Api, runtime: Runtime
) -> None:
    w = await _world(api)
    cases = {
        "status=done": "status must be one of queued, running, succeeded, failed, interrupted",
        "limit=0": "limit must be an integer between 1 and 200",
        "limit=201": "limit must be an integer between 1 and 200",
        "team=Checkout": "team must match",
        "team=platform": "'platform' is a unit; runs belong to teams",
    }
    for query, message in cases.items():
        status, body = await api.call("GET", f"/api/v1/orgs/acme/runs?{query}", token=w.org_token)
        assert status == 400, query
        assert message in body["message"], (query, body)
    status, body = await api.call("GET", "/api/v1/orgs/acme/runs?team=nope", token=w.org_token)
    assert (status, body["error"]) == (404, "not_found")
    status, body = await api.call("GET", "/api/v1/orgs/nope/runs")
    assert (status, body["error"]) == (404, "not_found")
    status, body = await api.call("GET", "/api/v1/orgs/acme/runs/run_nope")
    assert (status, body["error"]) == (404, "unknown_run")


# -- who may see what ---------------------------------------------------------------------------------


async def test_a_team_token_sees_only_its_own_teams_runs(api: Api, runtime: Runtime) -> None:
    w = await _world(api)
    await _standard_runs(runtime)

    status, body = await _list(api, w.checkout_token)
    assert (status, _ids(body)) == (200, ["run_c3", "run_c1"]), "its own team without asking"
    assert _ids((await _list(api, w.checkout_token, team="checkout"))[1]) == ["run_c3", "run_c1"]
    for query in ({"team": "payments"}, {"team": "platform"}):
        status, body = await _list(api, w.checkout_token, **query)
        assert (status, body["error"]) == (403, "forbidden"), query
    assert (await _list(api, w.checkout_token, org="globex"))[0] == 403

    assert (await api.call("GET", "/api/v1/orgs/acme/runs/run_c1", token=w.checkout_token))[0] == 200
    status, body = await api.call("GET", "/api/v1/orgs/acme/runs/run_p2", token=w.checkout_token)
    assert (status, body["error"]) == (403, "forbidden")
    assert (await api.call("GET", "/api/v1/orgs/globex/runs/run_g5", token=w.checkout_token))[0] == 403

    refused = (await api.ok("GET", "/api/v1/orgs/acme/audit?action=auth.forbidden", token=w.org_token))[
        "events"
    ]
    assert {e["target"] for e in refused} == {
        "GET /api/v1/orgs/acme/runs",
        "GET /api/v1/orgs/acme/runs/run_p2",
    }


async def test_an_org_admin_cannot_reach_another_orgs_runs_by_any_path(api: Api, runtime: Runtime) -> None:
    w = await _world(api)
    await _standard_runs(runtime)
    assert (await api.call("GET", "/api/v1/orgs/globex/runs/run_g5", token=w.org_token))[0] == 403
    status, body = await api.call("GET", "/api/v1/orgs/acme/runs/run_g5", token=w.org_token)
    assert (status, body["error"]) == (404, "unknown_run"), "a globex run is not in acme"
    status, body = await api.call("GET", "/api/v1/orgs/globex/runs/run_g5", token=w.globex_token)
    assert (status, body["run"]["team_node_id"]) == (200, "web")
    assert _ids((await _list(api, w.globex_token, org="globex"))[1]) == ["run_g5"]


# -- one run ------------------------------------------------------------------------------------------


async def test_a_run_shows_its_summary_feedback_and_a_plain_text_timeline(api: Api, runtime: Runtime) -> None:
    w = await _world(api)
    t0 = BASE.timestamp()
    events: list[ProgressEvent] = [
        Started(summary="why is checkout down?", at=t0),
        Thought(text="Let me look at the pods & their logs.", at=t0 + 1),
        SubagentStart(agent="kubernetes", task="check the checkout pods", at=t0 + 2),
        ToolStart(
            call_id="c1",
            tool="list_pods",
            args={"namespace": "prod", "labels": ["a"]},
            agent="kubernetes",
            at=t0 + 3,
        ),
        ToolEnd(call_id="c1", tool="list_pods", status="ok", summary="3 pods", agent="kubernetes", at=t0 + 4),
        SubagentEnd(agent="kubernetes", summary="1 problem(s) found", at=t0 + 5),
        ApprovalRequest(
            approval_id="ap1", action="rollout restart", target="deployment prod/checkout", at=t0 + 6
        ),
        ApprovalDecided(approval_id="ap1", decision="denied", by="U0BOB", at=t0 + 7),
        Result(rca=RCA, at=t0 + 8),
    ]
    await _store(
        runtime,
        _run("run_full", "checkout", 1, events=events, rca=RCA.to_dict()),
        RunFeedback(run_id="run_full", user_id="U0ALICE", vote="up", at=BASE + timedelta(hours=1)),
        RunFeedback(run_id="run_full", user_id="U0BOB", vote="down", at=BASE + timedelta(hours=2)),
        RunFeedback(run_id="run_full", user_id="U0CAROL", vote="up", at=BASE + timedelta(hours=3)),
    )

    body = await api.ok("GET", "/api/v1/orgs/acme/runs/run_full", token=w.checkout_token)
    run = body["run"]
    assert run["run_id"] == "run_full"
    assert run["summary"] == RCA.summary
    assert run["error"] is None
    assert run["feedback"]["up"] == 2
    assert run["feedback"]["down"] == 1
    assert [(v["user_id"], v["vote"]) for v in run["feedback"]["votes"]] == [
        ("U0ALICE", "up"),
        ("U0BOB", "down"),
        ("U0CAROL", "up"),
    ]
    assert [(e["kind"], e["text"]) for e in body["timeline"]] == [
        ("started", "Started: why is checkout down?"),
        ("thought", "Let me look at the pods & their logs."),
        ("subagent_start", "kubernetes agent started: check the checkout pods"),
        ("tool_start", 'kubernetes: list_pods namespace=prod, labels=["a"]'),
        ("tool_end", "kubernetes: list_pods: ok — 3 pods"),
        ("subagent_end", "kubernetes agent finished: 1 problem(s) found"),
        ("approval_request", "Approval requested: rollout restart on deployment prod/checkout"),
        ("approval_decided", "rollout restart on deployment prod/checkout: denied by U0BOB"),
        ("result", f"Root cause found: {RCA.summary}"),
    ]
    assert datetime.fromisoformat(body["timeline"][3]["at"]) == BASE + timedelta(seconds=3)


async def test_a_failed_run_shows_its_error_and_unreadable_events_are_skipped(
    api: Api, runtime: Runtime
) -> None:
    w = await _world(api)
    run = _run("run_bad", "checkout", 1, status="failed", error="The model could not be reached.")
    run.events = [
        {"kind": "started"},
        {"kind": "bogus", "at": 1.0},
        {"kind": "error", "message": "x", "at": 2.0},
    ]
    await _store(runtime, run)
    body = await api.ok("GET", "/api/v1/orgs/acme/runs/run_bad", token=w.org_token)
    assert (body["run"]["summary"], body["run"]["error"]) == (None, "The model could not be reached.")
    assert body["run"]["feedback"] == {"up": 0, "down": 0, "votes": []}
    assert body["timeline"] == [{"at": "1970-01-01T00:00:02+00:00", "kind": "error", "text": "Failed: x"}]


async def test_no_credential_leaves_through_the_runs_api(api: Api, runtime: Runtime) -> None:
    """Rows are scrubbed when written; these were not (an older row, a missed path), and the API
    still shows no credential in the question, tool arguments, summaries, the RCA or the error."""
    w = await _world(api)
    t0 = BASE.timestamp()
    leaky_rca = RootCauseAnalysis(summary=f"the bot token {SLACK_BOT_TOKEN} was revoked", root_cause="x")
    events: list[ProgressEvent] = [
        Started(summary=f"is {SLACK_BOT_TOKEN} still valid?", at=t0),
        ToolStart(
            call_id="c1",
            tool="http_get",
            args={
                "url": "https://api",
                "password": "hunter2 with spaces",
                "headers": "Bearer abcdefghijklmnop",
            },
            at=t0 + 1,
        ),
        ToolEnd(
            call_id="c1", tool="http_get", status="error", summary=f"401 for {SLACK_BOT_TOKEN}", at=t0 + 2
        ),
        Result(rca=leaky_rca, at=t0 + 3),
    ]
    await _store(
        runtime,
        _run(
            "run_leaky",
            "checkout",
            1,
            question=f"why does {SLACK_BOT_TOKEN} fail?",
            events=events,
            rca=leaky_rca.to_dict(),
            error="could not post with token=s3cr3t-value-123",
            origin={"kind": "mention", "comment_url": "https://user:pa55word@github.example/x"},
        ),
    )
    listed = (await _list(api, w.org_token))[1]
    shown = str(listed) + str(await api.ok("GET", "/api/v1/orgs/acme/runs/run_leaky", token=w.org_token))
    for secret in (SLACK_BOT_TOKEN, "hunter2", "abcdefghijklmnop", "s3cr3t-value-123", "pa55word"):
        assert secret not in shown, secret
    assert "[REDACTED]" in listed["runs"][0]["text"]
