"""What GitHub deliveries turn into, as pure functions: the thread's root message (golden), the PR
comment's Markdown (golden, and safe against what a pull request's author can put in a log line),
the no-LLM RCA of a failed run, and when a comment counts as asking the bot."""

from __future__ import annotations

import re

import pytest

from incidentfox.agents.analyzers.ci_rca import diagnosis_rca
from incidentfox.agents.rca import Confidence, Evidence, RootCauseAnalysis
from incidentfox.agents.toolsets.github_logs import FailedJob, FirstError, RunDiagnosis
from incidentfox.blocks.github_markdown import ci_comment, md_code, md_text
from incidentfox.blocks.thread_root import render_thread_root, thread_root_text
from incidentfox.handlers.webhooks.github_events import asks, bot_handle
from tests.goldens import assert_matches_golden

HOSTILE_STATE = {
    "source": "github",
    "kind": "ci_failure",
    "repo": "acme/shop",
    "number": 12,
    "is_pull": True,
    "subject": "Lower the timeout <!channel> *now*",
    "workflow": "CI <@U0ADMIN>",
    "conclusion": "timed_out",
    "branch": "fix`branch",
    "sha": "a4a65fb",
    "actor": "sam",
    "url": "https://github.com/acme/shop/actions/runs/9100000001",
}


def test_the_ci_failure_root_message_matches_its_golden_and_escapes_the_payload() -> None:
    rendered = {"blocks": render_thread_root(HOSTILE_STATE), "text": thread_root_text(HOSTILE_STATE)}
    assert_matches_golden("blocks", "github_ci_failure_root", rendered)
    mrkdwn = str(rendered["blocks"][1:]) + str(rendered["text"])
    assert "<!channel>" not in mrkdwn and "<@U0ADMIN>" not in mrkdwn, "plain text only in the header"
    assert rendered["text"] == "CI failed: CI &lt;@U0ADMIN&gt; on acme/shop PR #12"


def test_a_conversation_root_message_matches_its_golden_and_links_only_http() -> None:
    state = {
        "source": "github",
        "kind": "conversation",
        "repo": "acme/shop",
        "number": 7,
        "is_pull": False,
        "subject": "Checkout returns 503",
        "author": "alice",
        "url": "javascript:alert(1)",
    }
    rendered = {"blocks": render_thread_root(state), "text": thread_root_text(state)}
    assert_matches_golden("blocks", "github_conversation_root", rendered)
    assert "javascript" not in str(rendered["blocks"])
    assert rendered["text"] == "GitHub: acme/shop issue #7"


def _diagnosis(job: FailedJob) -> RunDiagnosis:
    return RunDiagnosis(
        repo="acme/shop",
        run_id=9100000001,
        name="CI",
        url="https://github.com/acme/shop/actions/runs/9100000001",
        status="completed",
        conclusion="failure",
        head_branch="lower-timeout",
        head_sha="a4a65fba10ee0000000000000000000000000000",
        event="pull_request",
        pull_requests=[12],
        failed_jobs=[job],
    )


def _job(line: str | None, *, note: str = "") -> FailedJob:
    error = (
        FirstError(
            line_number=212,
            line=line,
            decisive_lines=[line],
            excerpt=[line],
            excerpt_start=212,
            step="Run tests",
            step_number=3,
        )
        if line is not None
        else None
    )
    return FailedJob(
        job_id=1,
        name="test (3.11)",
        url="https://github.com/acme/shop/actions/runs/9100000001/job/1",
        conclusion="failure",
        step="Run tests",
        step_number=3,
        error=error,
        note=note,
    )


@pytest.mark.parametrize(
    ("line", "note", "level"),
    [
        ("requests.exceptions.ReadTimeout: Read timed out. (read timeout=1)", "", "high"),
        ("##[error]Process completed with exit code 2.", "", "medium"),
        (None, "GitHub answered 410 Gone for the log.", "low"),
    ],
)
def test_the_no_llm_rca_names_the_step_quotes_the_line_and_says_how_sure_it_is(
    line: str | None, note: str, level: str
) -> None:
    rca = diagnosis_rca(_diagnosis(_job(line, note=note)))
    assert rca.confidence.level == level
    assert "job 'test (3.11)', step 'Run tests'" in rca.summary
    if line is not None:
        [evidence] = rca.evidence
        assert evidence.quote == line and "log line 212" in evidence.source
        assert evidence.url is not None and evidence.url.endswith("/job/1")
    else:
        assert rca.evidence == () and note in rca.confidence.why
    if line and "timed out" in line:
        assert any("re-run the failed job" in action for action in rca.immediate_actions), "transient"


def test_the_pr_comment_matches_its_golden() -> None:
    rca = diagnosis_rca(_diagnosis(_job("E       AssertionError: expected status 200, got 503")))
    body = ci_comment(
        workflow="CI",
        run_url="https://github.com/acme/shop/actions/runs/9100000001",
        sha="a4a65fba10ee",
        rca=rca,
        error=None,
    )
    assert_matches_golden("github", "ci_comment", {"body": body})


def test_what_a_log_line_or_a_model_says_cannot_ping_inject_html_or_escape_its_quote() -> None:
    hostile = "@acme/oncall see <img src=x> [click](https://evil.example) <!-- incidentfox:ci-analysis -->"
    text = md_text(hostile)
    assert not re.search(r"@acme", text), "no mention survives"
    assert re.search(r"(?<!\\)[<>\[\]]", text) is None, "every bracket is escaped: no HTML, link or marker"
    fenced = md_code("before ``` after ```` end")
    fence = fenced.split("\n", 1)[0].removesuffix("text")
    assert fence == "`" * 5 and fenced.endswith("\n" + fence)
    rca = RootCauseAnalysis(
        summary=hostile,
        root_cause="x",
        evidence=(Evidence(quote="ok", source="s", url="javascript:alert(1)"),),
        confidence=Confidence("high", "y"),
    )
    body = ci_comment(workflow="CI", run_url="https://ci.example/run", sha="abc", rca=rca, error=None)
    assert body.count("<!-- incidentfox:ci-analysis -->") == 1 and "javascript:" not in body


@pytest.mark.parametrize(
    ("body", "asked"),
    [
        ("@incidentfox why did this fail?", True),
        ("Hey @IncidentFox, thoughts?", True),
        ("@incidentfox.", True),
        ("cc @incidentfoxes", False),
        ("mail me at ops@incidentfox.example", False),
        ("> @incidentfox why?\nI agree", False),
        ("```\n@incidentfox in code\n```", False),
        ("@incidentfox-bot", False),
    ],
)
def test_a_comment_asks_the_bot_when_it_names_the_handle_as_a_whole_word(body: str, asked: bool) -> None:
    assert asks(body, bot_handle(None)) is asked


def test_the_handle_comes_from_config_with_or_without_its_at() -> None:
    assert bot_handle("sre-fox") == "@sre-fox" and bot_handle("@sre-fox") == "@sre-fox"
    assert bot_handle("  ") == "@incidentfox" and bot_handle(None) == "@incidentfox"
    assert asks("@SRE-Fox please look", bot_handle("sre-fox"))
