"""A failed CI run on a pull request, end to end: the root message and the investigation in Slack, and
the analysis as the pull request's ONE IncidentFox comment (naming the failing step and quoting its
decisive log line), edited on a later failure; a write-back GitHub keeps refusing is retried, then
reported in the thread; a team with comments off gets none."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from incidentfox.agents.events import event_from_dict
from tests.github_world import DECISIVE, REPO, GitHubWorld, eventually, github_world, team_config
from tests.slack_world import ADMIN, CHANNEL


async def test_a_failed_run_on_a_pr_gets_a_thread_and_one_pr_comment_edited_on_the_next_failure(
    tmp_path: Path,
) -> None:
    async with github_world(tmp_path) as g:
        started = time.monotonic()
        delivery = await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run()))
        assert delivery.status == 202 and time.monotonic() - started < 2, "answered well inside 10 s"

        root = await g.root_message(f"CI failed: CI on {REPO} PR #{g.pr.number}")
        blocks = json.dumps(root.args["blocks"], ensure_ascii=False)
        assert "Lower the payment timeout" in blocks and "lower-timeout" in blocks
        assert "/actions/runs/" in blocks, "the root links to the run"
        thread = root.response["ts"]
        final = await g.w.final_update(thread, "AssertionError", timeout=30)
        assert "Run tests" in json.dumps(final.args["blocks"])
        assert "CrashLoopBackOff" not in json.dumps(final.args["blocks"]), "a CI failure is read on GitHub"

        first = await g.bot_comment("AssertionError: expected status 200, got 503")
        assert first.body.startswith("<!-- incidentfox:ci-analysis -->")
        assert "Run tests" in first.body and "test (3.11)" in first.body
        assert f"```text\n{DECISIVE}" in first.body, "the decisive log line is quoted verbatim"
        assert "**Confidence:** 🟢 High" in first.body

        second_run = g.failing_run(
            step="Lint", output=["shop/payments.py:3:1: error: F401 'os' imported but unused"]
        )
        assert (await g.send("workflow_run", g.gh.workflow_run_event(second_run))).status == 202
        edited = await g.bot_comment("F401")
        assert edited.id == first.id, "the same comment is edited, not a second one posted"
        assert [c.id for c in g.bot_comments()] == [first.id]
        assert "Lint" in edited.body and "AssertionError" not in edited.body
        assert g.gh.calls_to("issues.update_comment")[-1].status == 200

        runs = await g.wait_runs(2)
        assert [r.thread_ts for r in runs] == [thread, thread], "the PR's thread is the session"
        assert runs[0].thread_key == runs[1].thread_key
        assert len(g.roots()) == 1, "one root message per pull request"

        async def root_shows_the_second_run() -> bool:
            [message] = [m for m in g.w.slack.messages(CHANNEL) if m.ts == thread]
            return str(second_run.id) in json.dumps(message.blocks)

        await eventually(root_shows_the_second_run, "the root message showing the latest failed run")


async def test_a_rate_limited_comment_waits_for_the_reset_and_a_refusing_github_is_reported_in_the_thread(
    tmp_path: Path,
) -> None:
    async with github_world(tmp_path) as g:
        g.gh.fail_next("issues.create_comment", 403, reset_in=2)
        assert (await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run()))).status == 202
        limited_at = await eventually(lambda: _first_status(g, 403), "the rate-limited comment")
        await g.bot_comment("AssertionError")
        posted = g.gh.calls_to("issues.create_comment")
        assert [c.status for c in posted] == [403, 201]
        assert time.monotonic() - limited_at >= 1.0, "the retry waited for X-RateLimit-Reset"

        g.gh.fail_next("issues.update_comment", 502, times=50)
        thread = (await g.root_message("CI failed")).response["ts"]
        assert (
            await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run(step="Lint")))
        ).status == 202

        async def reported() -> list[Any]:
            return [
                m
                for m in g.w.slack.messages(CHANNEL, thread)
                if "GitHub kept answering 502" in (m.text or "")
            ]

        [report] = await eventually(reported, "the plain-words report in the Slack thread")
        assert (
            f"post the CI analysis on {REPO}#{g.pr.number}" in report.text and "Traceback" not in report.text
        )
        assert len([c for c in g.gh.calls_to("issues.update_comment") if c.status == 502]) >= 3, (
            "retried first"
        )
        runtime = g.w.fox.runtime
        assert runtime is not None

        async def settled() -> bool:
            """The report is posted before the row is settled, so the row may lag a moment."""
            row = await runtime.incidents.get(f"github:{REPO}#{g.pr.number}")
            return row is not None and row.note is None and row.next_at is None

        await eventually(settled, "the given-up comment to be cleared from the thread's owed work")


async def _first_status(g: GitHubWorld, status: int) -> float | None:
    return (
        time.monotonic() if any(c.status == status for c in g.gh.calls_to("issues.create_comment")) else None
    )


async def test_a_team_with_only_github_and_comments_off_is_investigated_in_slack_only(tmp_path: Path) -> None:
    async with github_world(tmp_path, kubernetes=False, post_comments=False) as g:
        assert (await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run()))).status == 202
        thread = (await g.root_message("CI failed")).response["ts"]
        await g.w.final_update(thread, "AssertionError", timeout=30)
        [run] = await g.wait_runs(1)
        assert run.status == "succeeded"
        started = [event_from_dict(e) for e in run.events if e["kind"] == "subagent_start"]
        assert [getattr(e, "agent", None) for e in started] == ["github"], "no Kubernetes checks"
        await asyncio.sleep(0.5)
        assert g.gh.calls_to("issues.create_comment") == [] and g.gh.calls_to("issues.update_comment") == []


async def test_a_failed_check_suite_of_another_ci_app_is_analysed_from_its_check_runs(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        check = g.gh.add_check_run(
            REPO,
            g.pr.head_sha,
            "ci/circleci: build",
            title="Build failed",
            summary="npm ERR! missing script: build",
            app_slug="circleci",
        )
        assert (await g.send("check_suite", g.gh.app_check_suite_event(REPO, check))).status == 202
        comment = await g.bot_comment("npm ERR! missing script: build")
        assert "ci/circleci: build" in comment.body and "Build failed" in comment.body
        [run] = await g.wait_runs(1)
        assert run.origin is not None and run.origin["check_suite_id"] == check.check_suite_id


async def test_two_workflows_failing_together_share_the_prs_thread_and_its_one_comment(
    tmp_path: Path, database_url: str
) -> None:
    async with github_world(tmp_path, database_url=database_url) as g:
        tests_run, lint_run = g.failing_run(), g.failing_run(step="Lint", output=["error: F401 'os' unused"])
        answers = await asyncio.gather(
            g.send("workflow_run", g.gh.workflow_run_event(tests_run)),
            g.send("workflow_run", g.gh.workflow_run_event(lint_run)),
        )
        assert [a.status for a in answers] == [202, 202]
        first, second = await g.wait_runs(2)
        assert first.thread_ts is not None and first.thread_ts == second.thread_ts
        assert len(g.roots()) == 1, "the second run joined the thread the first one opened"
        runtime = g.w.fox.runtime
        assert runtime is not None

        async def delivered() -> bool:
            row = await runtime.incidents.get(f"github:{REPO}#{g.pr.number}")
            return row is not None and row.note is None and bool(g.bot_comments())

        await asyncio.sleep(0.3)
        await eventually(delivered, "both analyses delivered")
        assert len(g.bot_comments()) == 1, "one comment per pull request, whichever run wrote it last"


async def test_when_the_repo_moves_to_another_team_its_next_failure_opens_a_thread_of_that_team(
    tmp_path: Path,
) -> None:
    async with github_world(tmp_path, post_comments=False) as g:
        assert (await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run()))).status == 202
        old_thread = (await g.root_message("CI failed")).response["ts"]
        await g.wait_runs(1)

        runtime = g.w.fox.runtime
        assert runtime is not None
        await runtime.config.write_config(
            ADMIN, "acme", "checkout", {"routing": {"github_repos": None}}, operation="patch"
        )
        await runtime.config.create_node(
            ADMIN, "acme", {"node_id": "payments", "parent_id": "acme", "kind": "team"}
        )
        moved = team_config(g.gh, g.w, post_comments=False)
        moved["routing"] = {"slack_channel_ids": ["C0PAYMENTS"], "github_repos": [REPO]}
        await runtime.config.write_config(ADMIN, "acme", "payments", moved, operation="put")

        assert (await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run()))).status == 202
        new_root = await g.w.slack.wait_for(
            "chat.postMessage",
            lambda c: c.ok and c.args.get("channel") == "C0PAYMENTS" and not c.args.get("thread_ts"),
        )
        _, second = await g.wait_runs(2)
        assert (second.team_node_id, second.channel_id) == ("payments", "C0PAYMENTS")
        assert second.thread_ts == new_root.response["ts"] != old_thread, "nothing of the old team's thread"
        row = await runtime.incidents.get(f"github:{REPO}#{g.pr.number}")
        assert row is not None and (row.team_node_id, row.channel_id) == ("payments", "C0PAYMENTS")


async def test_without_a_token_the_thread_says_what_to_set_instead_of_checking_kubernetes(
    tmp_path: Path,
) -> None:
    async with github_world(tmp_path, token="") as g:
        assert (await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run()))).status == 202
        thread = (await g.root_message("CI failed")).response["ts"]
        final = await g.w.final_update(thread, "cannot read this CI run", timeout=30)
        assert "integrations.github.token" in json.dumps(final.args) and "CrashLoopBackOff" not in json.dumps(
            final.args
        )
        await asyncio.sleep(0.3)
        assert g.comments() == [] and g.gh.calls == [], "nothing is read or written on GitHub without a token"
