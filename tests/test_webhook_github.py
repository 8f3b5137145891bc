"""``POST /webhooks/github`` end to end over HTTP, with the payloads GitHub documents (built by the
GitHub emulator): signatures, dedupe of redeliveries, routing by repository, ping, the events and
actions that are not acted on, and bodies that are not GitHub's. None of these may leave a trace."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from incidentfox.config.models import AuditEvent
from incidentfox.emulators.github_webhooks import signature_256
from tests.github_world import REPO, SECRET, GitHubWorld, github_world, team_config
from tests.slack_world import ADMIN


async def test_a_forged_or_missing_signature_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        payload = g.gh.workflow_run_event(g.failing_run())
        forged = await g.send("workflow_run", payload, secret="not-the-secret")
        unsigned = await g.send("workflow_run", payload, secret=None)
        assert (forged.status, unsigned.status) == (401, 401)
        assert "signature" in forged.response_text and SECRET not in forged.response_text
        assert await g.stored() == (0, 0, 0)

        valid = await g.send("workflow_run", payload)
        assert valid.status == 202, valid.response_text
        assert json.loads(valid.response_text) == {"outcome": "accepted"}
        [run] = await g.runs()
        assert (run.source, run.kind) == ("github", "ci_failure")


async def test_the_same_delivery_five_times_at_once_makes_exactly_one_run(
    tmp_path: Path, database_url: str
) -> None:
    async with github_world(tmp_path, database_url=database_url, post_comments=False) as g:
        payload = g.gh.workflow_run_event(g.failing_run())
        answers = await asyncio.gather(
            *(
                g.send("workflow_run", payload, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
                for _ in range(5)
            )
        )
        assert sorted(a.status for a in answers) == [200, 200, 200, 200, 202]
        again = await g.send("workflow_run", payload, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
        assert again.status == 200 and json.loads(again.response_text) == {"outcome": "duplicate"}
        await g.root_message("CI failed")
        runs, deliveries, threads = await g.stored()
        assert (runs, deliveries, threads) == (1, 1, 1)
        assert len(g.roots()) == 1


async def test_ping_answers_200_once_the_signature_holds(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        ping = g.gh.ping_event(REPO, g.url)
        answer = await g.send("ping", ping)
        assert answer.status == 200 and json.loads(answer.response_text) == {
            "outcome": "pong",
            "routed": True,
        }
        assert (await g.send("ping", ping, secret="wrong")).status == 401
        assert await g.stored() == (0, 0, 0)


async def test_an_unclaimed_repository_gets_202_and_an_unrouted_audit_event(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        g.gh.add_repo("other/payments")
        stranger = g.gh.add_workflow_run(
            "other/payments",
            jobs=[],
            conclusion="failure",
            head_branch="main",
            event="push",
        )
        payload = g.gh.workflow_run_event(stranger)
        nobody_can_verify = await g.send("workflow_run", payload)
        assert nobody_can_verify.status == 401, "without an installation secret nothing verifies it"
        assert await _unrouted(g) == []

        installation = "installation-wide-github-secret"
        g.w.fox.settings = g.w.fox.settings.model_copy(
            update={"github_webhook_secret": SecretStr(installation)}
        )
        await g.w.restart()
        assert (await g.send("workflow_run", payload)).status == 401, (
            "the team's secret is not the installation's"
        )
        unrouted = await g.send("workflow_run", payload, secret=installation)
        assert unrouted.status == 202 and json.loads(unrouted.response_text) == {"outcome": "unrouted"}
        [audited] = await _unrouted(g)
        assert audited.actor == "webhook:github" and "other/payments" in audited.target
        runs, _, threads = await g.stored()
        assert (runs, threads) == (0, 0)
        pong = await g.send("ping", g.gh.ping_event("other/payments", g.url), secret=installation)
        assert json.loads(pong.response_text) == {"outcome": "pong", "routed": False}


async def _unrouted(g: GitHubWorld) -> list[AuditEvent]:
    assert g.w.fox.runtime is not None
    async with g.w.fox.runtime.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == "webhook.unrouted")
        return list((await session.scalars(query)).all())


async def test_events_and_actions_not_acted_on_get_204_and_store_nothing(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        green = g.gh.add_workflow_run(REPO, jobs=[], pull_requests=[g.pr.number])
        red = g.failing_run()
        cancelled = g.gh.add_workflow_run(REPO, jobs=[], pull_requests=[g.pr.number], conclusion="cancelled")
        ignored = [
            ("workflow_run", g.gh.workflow_run_event(green)),
            ("workflow_run", g.gh.workflow_run_event(cancelled)),
            ("workflow_run", g.gh.workflow_run_event(red, action="requested")),
            ("check_suite", g.gh.check_suite_event(red)),
            ("issue_comment", g.gh.issue_comment_event(REPO, g.pr.number, "LGTM, ship it")),
            ("issue_comment", g.gh.issue_comment_event(REPO, g.pr.number, "cc @incidentfoxes please")),
            ("issue_comment", g.gh.issue_comment_event(REPO, g.pr.number, "> @incidentfox why?\nagreed")),
            ("pull_request", {"action": "opened", "number": g.pr.number}),
            ("push", {"ref": "refs/heads/main"}),
        ]
        for event, payload in ignored:
            answer = await g.send(event, payload)
            assert (event, answer.status, answer.response_text) == (event, 204, "")
        assert await g.stored() == (0, 0, 0)


@pytest.mark.parametrize(
    ("event", "body", "status"),
    [
        ("workflow_run", b"{not json", 400),
        ("workflow_run", b"[]", 400),
        ("workflow_run", b'{"action": "completed", "repository": {"full_name": "acme/shop"}}', 400),
        ("issue_comment", b'{"action": "created", "comment": {"id": 1}}', 400),
        ("push", b"{not json", 400),
    ],
)
async def test_bodies_that_are_not_github_payloads_get_400(
    tmp_path: Path, event: str, body: bytes, status: int
) -> None:
    async with github_world(tmp_path) as g:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "d0c3b6a0-0000-4000-8000-000000000001",
            "X-Hub-Signature-256": signature_256(SECRET, body),
        }
        async with g.w.http.post(g.url, data=body, headers=headers) as answer:
            assert answer.status == status
            assert "Traceback" not in await answer.text()
        assert await g.stored() == (0, 0, 0)


async def test_a_missing_delivery_id_is_400_and_an_oversized_body_413(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        body = json.dumps(g.gh.workflow_run_event(g.failing_run())).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_run",
            "X-Hub-Signature-256": signature_256(SECRET, body),
        }
        async with g.w.http.post(g.url, data=body, headers=headers) as answer:
            assert answer.status == 400
        async with g.w.http.post(g.url, data=b"x" * (1024 * 1024 + 1), headers=headers) as too_big:
            assert too_big.status == 413
        assert await g.stored() == (0, 0, 0)


async def test_a_team_without_a_channel_gets_202_misconfigured_naming_the_keys(tmp_path: Path) -> None:
    async with github_world(tmp_path) as g:
        assert g.w.fox.runtime is not None
        document = team_config(g.gh, g.w)
        document["routing"] = {"github_repos": [REPO]}
        await g.w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", document, operation="put")
        answer = await g.send("workflow_run", g.gh.workflow_run_event(g.failing_run()))
        assert answer.status == 202
        body = json.loads(answer.response_text)
        assert body["outcome"] == "misconfigured" and "integrations.github.channel_id" in body["problems"][0]
        assert await g.stored() == (0, 0, 0)
