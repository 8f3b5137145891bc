"""Questions asked on GitHub with the bot's handle: answered in the same place (the conversation, or
the line comment's review thread), in the pull request's Slack thread, which is the session for every
later question; the bot's own comments (and other bots') never start anything."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from incidentfox.emulators.github_models import IssueComment, ReviewComment
from tests.github_world import REPO, GitHubWorld, eventually, github_world


async def _answer_to(g: GitHubWorld, comment_id: int) -> IssueComment:
    return await g.bot_comment(f"<!-- incidentfox:answer:{comment_id} -->")


async def test_a_mention_on_a_pr_is_answered_there_and_follow_ups_continue_the_prs_thread(
    tmp_path: Path,
) -> None:
    async with github_world(tmp_path) as g:
        g.failing_run()
        payload = g.gh.issue_comment_event(
            REPO, g.pr.number, "@IncidentFox why did CI fail here?", author="alice"
        )
        delivery = await g.send("issue_comment", payload)
        assert delivery.status == 202, delivery.response_text

        root = await g.root_message(f"GitHub: {REPO} PR #{g.pr.number}")
        assert "alice" in json.dumps(root.args["blocks"])
        thread = root.response["ts"]
        final = await g.w.final_update(thread, "AssertionError", timeout=30)
        assert final.ok
        answer = await _answer_to(g, payload["comment"]["id"])
        assert answer.body.splitlines()[1].startswith("@alice [asked](")
        assert "AssertionError: expected status 200, got 503" in answer.body

        follow_up = g.gh.issue_comment_event(
            REPO, g.pr.number, "thanks @incidentfox, is it flaky?", author="sam"
        )
        assert (await g.send("issue_comment", follow_up)).status == 202
        queued = (await g.runs())[-1]
        assert queued.thread_ts == thread, "the follow-up is queued in the PR's thread, behind any run there"
        await _answer_to(g, follow_up["comment"]["id"])
        first, second = await g.wait_runs(2)
        assert (first.kind, second.kind) == ("mention", "mention")
        assert second.thread_key == first.thread_key and second.thread_ts == thread, (
            "the PR's thread is the session"
        )
        assert "is it flaky?" in second.question and "sam asked" in second.question
        assert len(g.roots()) == 1


async def test_a_mention_after_a_ci_failure_joins_the_failures_thread(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        assert (await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run()))).status == 202
        thread = (await g.root_message("CI failed")).response["ts"]
        await g.wait_runs(1)
        question = g.gh.issue_comment_event(
            REPO, g.pr.number, "@incidentfox can we just retry?", author="alice"
        )
        assert (await g.send("issue_comment", question)).status == 202
        await _answer_to(g, question["comment"]["id"])
        ci, asked = await g.wait_runs(2)
        assert asked.thread_key == ci.thread_key and asked.thread_ts == thread
        assert len(g.roots()) == 1, "the root message keeps showing the failure"


async def test_a_review_comment_mention_is_answered_in_its_review_thread(tmp_path: Path) -> None:
    async with github_world(tmp_path, kubernetes=False) as g:
        payload = g.gh.review_comment_event(
            REPO, g.pr.number, "@incidentfox is a 1 s timeout safe here?", path="deploy/values.yaml", line=2
        )
        assert (await g.send("pull_request_review_comment", payload)).status == 202
        repo = g.gh.repo(REPO)
        assert repo is not None

        async def replied() -> ReviewComment | None:
            return next(
                (c for c in repo.review_comments.values() if c.in_reply_to == payload["comment"]["id"]), None
            )

        reply = await eventually(replied, "the reply in the review thread")
        assert reply.user.login == g.gh.viewer.login and reply.path == "deploy/values.yaml"
        assert "has no failed CI run" in reply.body, "no-LLM mode says what it can answer"
        [run] = await g.wait_runs(1)
        assert "deploy/values.yaml line 2" in run.question
        assert g.comments() == [], "nothing in the conversation: the answer is where the question was"


async def test_the_bots_own_comments_and_other_bots_are_ignored(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        own = g.gh.issue_comment_event(
            REPO, g.pr.number, "@incidentfox answered above", author=g.gh.viewer.login
        )
        quoting = g.gh.issue_comment_event(
            REPO,
            g.pr.number,
            "<!-- incidentfox:answer:1 -->\n@alice asked @incidentfox:",
            author="ops-account",
        )
        g.gh.user("dependabot[bot]", type_="Bot")
        other_bot = g.gh.issue_comment_event(
            REPO, g.pr.number, "@incidentfox rebase", author="dependabot[bot]"
        )
        for payload in (own, quoting, other_bot):
            answer = await g.send("issue_comment", payload)
            assert answer.status == 204
        await asyncio.sleep(0.3)
        assert await g.stored() == (0, 0, 0)
