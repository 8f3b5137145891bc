"""The eval harness: scoring RCAs against a scenario's facts and an LLM judge, reading HolmesGPT's
fixture format, refusing malformed scenarios by file and field, and running scenarios end to end
through the real pipeline (Slack mention, PagerDuty page, GitHub CI run) with and without a model."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai import AsyncOpenAI

from incidentfox.agents.rca import Confidence, Evidence, RootCauseAnalysis
from incidentfox.bot.cli import main as cli_main
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from incidentfox.evals.command import run_scripted, run_suite
from incidentfox.evals.files import ScenarioError
from incidentfox.evals.harness import ModelConfig
from incidentfox.evals.holmes import load_holmes_case
from incidentfox.evals.holmes_tools import build_server, tool_names
from incidentfox.evals.report import json_report, pass_rate_table
from incidentfox.evals.scenario import load_scenario
from incidentfox.evals.scoring import Judge, Score, fact_checks, parse_verdict
from incidentfox.evals.scripted_model import SCRIPTED_MODE, arguments_for, metric_of_monitor
from incidentfox.evals.suite import load_suite

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
HOLMES = Path(__file__).parent / "eval_fixtures" / "holmes"
CRASHLOOP = SCENARIOS / "kubernetes" / "checkout-restarts-after-release"
PAGE = SCENARIOS / "pages" / "checkout-5xx-payments-down"
CI_RUN = SCENARIOS / "ci" / "cart-test-assertion"
POISON = SCENARIOS / "logs" / "fulfilment-poison-message"
NO_LLM_FLOOR = 32
"""Scenarios of ``scenarios/`` the no-LLM analyzers passed when this floor was set (of 50)."""
SCRIPTED_FLOOR = 36
"""Scenarios of ``scenarios/`` the scripted investigator passed when this floor was set (of 50)."""

GOOD = RootCauseAnalysis(
    summary="checkout 3.8.0 crash-loops at start-up: PAYMENT_GATEWAY_URL is not set.",
    root_cause="Deployment shop/checkout's new pods exit: required key PAYMENT_GATEWAY_URL missing value.",
    evidence=(
        Evidence(
            quote='"level":"fatal","msg":"config: required key PAYMENT_GATEWAY_URL missing value"',
            source="pod shop/checkout-5f8d9c7b6-qx2lp (previous logs)",
        ),
        Evidence(quote="CrashLoopBackOff", source="pod shop/checkout-5f8d9c7b6-qx2lp (container status)"),
    ),
    confidence=Confidence(level="high", why="the fatal log line names the key"),
    immediate_actions=("Roll back checkout to 3.7.2.",),
)
BAD = RootCauseAnalysis(
    summary="The cart service is OOMKilled.",
    root_cause="cart exceeds its memory limit.",
    evidence=(Evidence(quote="memory usage high", source="metrics dashboard"),),
    confidence=Confidence(level="medium", why="a guess"),
)


def rca_json(rca: RootCauseAnalysis) -> dict[str, Any]:
    return rca.to_dict()


def test_a_right_rca_passes_every_fact_check() -> None:
    scenario = load_scenario(CRASHLOOP)
    checks = fact_checks(scenario.expect, GOOD)
    assert [c.name for c in checks if not c.ok] == []
    assert {c.name for c in checks} >= {
        "root cause names Deployment shop/checkout",
        "mentions 'PAYMENT_GATEWAY_URL'",
        "cites kubernetes",
        "cites logs",
        "does not claim 'OOMKilled'",
    }
    assert Score(checks=checks).status == "pass"


def test_a_wrong_rca_fails_on_cause_phrase_citation_and_forbidden_claim() -> None:
    scenario = load_scenario(CRASHLOOP)
    score = Score(checks=fact_checks(scenario.expect, BAD))
    failed = {c.name for c in score.failed}
    assert failed == {
        "root cause names Deployment shop/checkout",
        "mentions 'PAYMENT_GATEWAY_URL'",
        "cites kubernetes",
        "cites logs",
        "does not claim 'OOMKilled'",
    }
    assert score.status == "fail"
    assert "cart exceeds" in next(c.detail for c in score.failed if c.name.startswith("root cause"))


def test_a_resource_named_only_inside_a_longer_name_does_not_count() -> None:
    scenario = load_scenario(SCENARIOS / "kubernetes" / "kafka-headless-service")
    rca = RootCauseAnalysis(
        summary="Broker kafka-0 cannot resolve kafka-1.kafka-headless.streaming.svc.cluster.local.",
        root_cause="UnknownHostException: kafka-1.kafka-headless.streaming.svc.cluster.local",
        evidence=(Evidence(quote="UnknownHostException", source="pod streaming/kafka-0 (logs)"),),
        confidence=Confidence(level="low", why=""),
    )
    [root, *_] = fact_checks(scenario.expect, rca)
    assert not root.ok
    fixed = RootCauseAnalysis(
        summary="The governing Service kafka-headless of StatefulSet kafka is missing.",
        root_cause="Service kafka-headless does not exist, so broker names do not resolve.",
        evidence=rca.evidence,
        confidence=rca.confidence,
    )
    assert all(c.ok for c in fact_checks(scenario.expect, fixed))


def test_a_run_without_an_rca_fails_with_its_error() -> None:
    scenario = load_scenario(CRASHLOOP)
    [check] = fact_checks(scenario.expect, None, "Kubernetes is not configured")
    assert (check.name, check.ok, check.detail) == ("answered", False, "Kubernetes is not configured")


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


async def test_the_judge_asks_the_model_with_the_criteria_and_reads_its_verdict(
    model: OpenAIEmulator,
) -> None:
    model.enqueue(
        ScriptStep.text('```json\n{"verdict": "fail", "reason": "blames cart, not checkout"}\n```'),
        ScriptStep.text("I think it is fine"),
    )
    judge = Judge(AsyncOpenAI(api_key=model.api_key, base_url=model.base_url), "judge-model")
    scenario = load_scenario(CRASHLOOP)
    verdict = await judge.grade(scenario, BAD, "why is checkout flapping?")
    assert (verdict.verdict, verdict.reason) == ("fail", "blames cart, not checkout")
    [request] = model.requests
    assert request.model == "judge-model"
    assert "Identifies Deployment shop/checkout as where the root cause lies." in request.text()
    assert "Does not claim: OOMKilled" in request.text()
    assert "The cart service is OOMKilled." in request.text()
    unreadable = await judge.grade(scenario, GOOD, "why is checkout flapping?")
    assert unreadable.verdict is None
    assert Score(checks=fact_checks(scenario.expect, GOOD), judge=unreadable).status == "pass"
    assert Score(checks=fact_checks(scenario.expect, GOOD), judge=verdict).status == "fail"


async def test_a_judge_whose_model_fails_gives_no_verdict(model: OpenAIEmulator) -> None:
    model.enqueue(*[ScriptStep.http_error(500)] * 4)
    client = AsyncOpenAI(api_key=model.api_key, base_url=model.base_url, max_retries=0)
    verdict = await Judge(client, "judge-model").grade(load_scenario(CRASHLOOP), GOOD, "q")
    assert verdict.verdict is None
    assert "could not answer" in verdict.reason


def test_parse_verdict_accepts_only_pass_or_fail() -> None:
    assert parse_verdict('{"verdict": "pass", "reason": "ok"}').verdict == "pass"
    assert parse_verdict('{"verdict": "maybe"}').verdict is None
    assert parse_verdict("no json here").verdict is None


def test_holmes_fixtures_read_as_judged_cases_with_their_recorded_tool_outputs() -> None:
    case = load_holmes_case(HOLMES / "01_worker_oom")
    assert case.name == "holmes/01_worker_oom"
    assert case.source_format == "holmesgpt"
    assert case.trigger.text == "Why does the thumbnailer pod in namespace media keep restarting?"
    assert case.expect.judge == (
        "The thumbnailer container is OOMKilled because it exceeds its 256Mi memory limit",
        "Suggests raising the memory limit or reducing the image batch size",
    )
    assert not case.expect.has_facts
    describe, logs = case.mocks
    assert describe["tool"] == "kubectl_describe"
    assert describe["params"] == {"kind": "pod", "name": "thumbnailer-7d9c6b5f4-2xkqp", "namespace": "media"}
    assert "Reason:       OOMKilled" in describe["output"]
    assert logs["tool"] == "kubectl_previous_logs"
    single = load_holmes_case(HOLMES / "02_pending_quota")
    assert single.expect.judge[0].startswith("The namespace ResourceQuota compute-quota is exhausted")
    assert tool_names(single.mocks) == ["kubectl_events", "kubectl_events_2"]


async def test_the_fixture_mcp_server_answers_each_recorded_call() -> None:
    server = build_server(HOLMES / "02_pending_quota")
    tools = {t.name: t for t in await server.list_tools()}
    assert set(tools) == {"kubectl_events", "kubectl_events_2"}
    assert '"namespace": "tenants"' in (tools["kubectl_events"].description or "")
    result = await server.call_tool("kubectl_events", {})
    assert "exceeded quota: compute-quota" in json.dumps(result, default=str)


def test_a_holmes_mock_without_its_call_line_is_named(tmp_path: Path) -> None:
    case = tmp_path / "03_broken"
    shutil.copytree(HOLMES / "02_pending_quota", case)
    (case / "kubectl_events.txt").write_text("LAST SEEN   TYPE\n42s Warning\n")
    with pytest.raises(ScenarioError) as raised:
        load_holmes_case(case)
    assert raised.value.path == case / "kubectl_events.txt"
    assert raised.value.field == "(first line)"


def _broken_copy(tmp_path: Path, file_name: str, change: Any) -> Path:
    copy = tmp_path / "scenario"
    shutil.copytree(CRASHLOOP, copy)
    path = copy / file_name
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc))
    return copy


@pytest.mark.parametrize(
    ("file_name", "change", "field", "words"),
    [
        (
            "scenario.yaml",
            lambda d: d["expect"].update(root_cause={"kind": "Deployment"}),
            "expect.root_cause.name",
            "required",
        ),
        ("scenario.yaml", lambda d: d["trigger"].update(kind="sms"), "trigger.kind", "mention, page, ci"),
        (
            "scenario.yaml",
            lambda d: d["expect"].update(must_match=["(unclosed"]),
            "expect.must_match[0]",
            "regex",
        ),
        ("scenario.yaml", lambda d: d["expect"].update(cites=["logs"]), "expect.cites", "unknown field"),
        ("scenario.yaml", lambda d: d["backends"].update(kubernetes="missing.yaml"), "(file)", "not found"),
        ("scenario.yaml", lambda d: d.pop("category"), "category", "is required"),
        (
            "cluster.yaml",
            lambda d: d["pods"][0]["containers"][0].pop("image"),
            "pods[0].containers[0].image",
            "required",
        ),
        ("cluster.yaml", lambda d: d["events"][1].pop("reason"), "events[1].reason", "required"),
    ],
)
def test_a_malformed_scenario_names_the_file_and_the_field(
    tmp_path: Path, file_name: str, change: Any, field: str, words: str
) -> None:
    directory = _broken_copy(tmp_path, file_name, change)
    with pytest.raises(ScenarioError) as raised:
        load_scenario(directory)
    error = raised.value
    expected_file = directory / ("missing.yaml" if field == "(file)" else file_name)
    assert (error.path, error.field) == (expected_file, field)
    assert words in error.problem
    assert str(error).startswith(f"{expected_file}: {field}: ")


def test_state_files_of_other_backends_are_checked_field_by_field(tmp_path: Path) -> None:
    directory = tmp_path / "logs-case"
    directory.mkdir()
    (directory / "scenario.yaml").write_text(
        yaml.safe_dump(
            {
                "category": "logs",
                "trigger": {"kind": "page"},
                "backends": {"loki": "logs.yaml"},
                "expect": {"must_include": ["timeout"]},
            }
        )
    )
    (directory / "logs.yaml").write_text(
        yaml.safe_dump({"streams": [{"labels": {"app": "x"}, "lines": ["5m ok", "no age here"]}]})
    )
    with pytest.raises(ScenarioError) as raised:
        load_scenario(directory)
    assert (raised.value.path.name, raised.value.field) == ("logs.yaml", "streams[0].lines[1]")
    (directory / "logs.yaml").write_text(yaml.safe_dump({"streams": []}))
    with pytest.raises(ScenarioError) as raised:
        load_scenario(directory)
    assert (raised.value.path.name, raised.value.field) == ("scenario.yaml", "backends.pagerduty")


def test_two_scenarios_claiming_one_repository_are_refused(tmp_path: Path) -> None:
    root = _suite(tmp_path, CI_RUN)
    twin = root / "ci" / "twin"
    shutil.copytree(root / "ci" / CI_RUN.name, twin)
    doc = yaml.safe_load((twin / "scenario.yaml").read_text())
    (twin / "scenario.yaml").write_text(yaml.safe_dump({**doc, "name": "twin"}))
    with pytest.raises(ScenarioError) as raised:
        load_suite(root)
    assert raised.value.field == "repository"
    assert "acme/cart" in raised.value.problem


def test_the_shipped_suite_loads_with_at_least_forty_scenarios_in_five_categories() -> None:
    suite = load_suite(SCENARIOS)
    assert len(suite) >= 40
    categories = {s.category for s in suite}
    assert categories == {"kubernetes", "metrics", "logs", "ci", "pages"}
    assert sum(1 for s in suite if s.category == "kubernetes") >= 25
    assert all(s.expect.has_facts for s in suite)


def _suite(tmp_path: Path, *cases: Path) -> Path:
    root = tmp_path / "suite"
    for case in cases:
        shutil.copytree(case, root / case.parent.name / case.name)
    return root


async def test_a_small_suite_runs_through_mention_page_and_ci_triggers_without_a_model(
    tmp_path: Path,
) -> None:
    root = _suite(tmp_path, CRASHLOOP, PAGE, CI_RUN)
    wrong = root / "kubernetes" / CRASHLOOP.name / "scenario.yaml"
    doc = yaml.safe_load(wrong.read_text())
    doc["name"] = "checkout-but-expecting-oom"
    doc["expect"]["must_include"] = ["OOMKilled"]
    shutil.copytree(wrong.parent, root / "kubernetes" / "expects-oom")
    (root / "kubernetes" / "expects-oom" / "scenario.yaml").write_text(yaml.safe_dump(doc))
    results = {r.scenario.name: r for r in await run_suite(root, model=None, timeout_s=60)}
    crash = results[CRASHLOOP.name]
    assert crash.score.status == "pass", crash.score.to_dict()
    assert crash.rca is not None and "PAYMENT_GATEWAY_URL" in crash.rca.root_cause
    assert results["checkout-but-expecting-oom"].score.status == "fail"
    assert [c.name for c in results["checkout-but-expecting-oom"].score.failed] == ["mentions 'OOMKilled'"]
    page = results[PAGE.name]
    assert page.score.status == "pass", page.score.to_dict()
    assert page.rca is not None and "password authentication failed" in json.dumps(page.rca.to_dict())
    ci = results[CI_RUN.name]
    assert ci.rca is not None, ci.error
    assert "19.98 == 19.99" in json.dumps(ci.rca.to_dict()), "the CI analysis read the failed step's log"
    table = pass_rate_table(list(results.values()))
    assert "kubernetes  2          1/2 (50%)" in table
    assert "pages       1          1/1 (100%)" in table
    report = json_report(list(results.values()), duration_s=1.0)
    assert report["summary"]["no-llm"]["all"] == {"passed": 2, "failed": 2, "unscored": 0}


async def test_with_a_model_every_case_runs_twice_and_the_model_judges(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    root = _suite(tmp_path, CRASHLOOP)
    shutil.copytree(HOLMES / "01_worker_oom", root / "holmes" / "01_worker_oom")
    planner_rca = {
        "summary": "checkout pods exit on a missing PAYMENT_GATEWAY_URL.",
        "root_cause": "Deployment shop/checkout 3.8.0 lacks PAYMENT_GATEWAY_URL.",
        "evidence": [
            {
                "quote": "required key PAYMENT_GATEWAY_URL missing value",
                "source": "pod shop/checkout-5f8d9c7b6-qx2lp (previous logs)",
                "url": None,
            }
        ],
        "confidence": {"level": "high", "why": "fatal log line"},
        "immediate_actions": ["Roll back"],
        "follow_up_actions": [],
        "caveats": [],
    }
    verdicts = [ScriptStep.json({"verdict": "pass", "reason": "names the cause"})] * 4
    model.responder = (
        RoutedScript()
        .when_system_contains("You grade", verdicts)
        .when_system_contains("You are IncidentFox", [ScriptStep.json(planner_rca)] * 2)
    )
    config = ModelConfig(name="emulator-model", api_key=model.api_key, base_url=model.base_url)
    results = await run_suite(root, model=config, timeout_s=60)
    by_mode = {(r.mode, r.scenario.name): r for r in results}
    assert set(by_mode) == {
        ("no-llm", CRASHLOOP.name),
        ("no-llm", "holmes/01_worker_oom"),
        ("model", CRASHLOOP.name),
        ("model", "holmes/01_worker_oom"),
    }
    assert by_mode[("model", CRASHLOOP.name)].score.status == "pass"
    holmes = by_mode[("model", "holmes/01_worker_oom")]
    assert holmes.score.status == "pass" and holmes.score.judge is not None
    assert by_mode[("no-llm", "holmes/01_worker_oom")].score.status == "fail", "no RCA without a model"
    planner_tools = [r.tool_names for r in model.requests if "You are IncidentFox" in r.system_prompt]
    assert any(
        {"mcp_fixture_kubectl_describe", "mcp_fixture_kubectl_previous_logs"} <= set(t) for t in planner_tools
    ), "the fixture's recorded outputs are offered to the planner"
    judged = [r for r in model.requests if "You grade" in r.system_prompt]
    assert any("OOMKilled because it exceeds its 256Mi" in r.text() for r in judged)


def test_the_cli_prints_the_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _suite(tmp_path, CRASHLOOP)
    shutil.copytree(HOLMES / "02_pending_quota", root / "holmes" / "02_pending_quota")
    out = tmp_path / "out.json"
    assert cli_main(["eval", str(root), "--json", str(out), "--no-llm-only"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert f"[no-llm] pass     {CRASHLOOP.name} (" in captured.err
    assert "holmes      1          - +1 unscored" in printed
    assert "kubernetes  1          1/1 (100%)" in printed
    report = json.loads(out.read_text())
    assert {r["scenario"]: r["status"] for r in report["results"]} == {
        CRASHLOOP.name: "pass",
        "holmes/02_pending_quota": "unscored",
    }


def test_the_cli_reports_a_malformed_scenario_by_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _broken_copy(tmp_path, "scenario.yaml", lambda d: d["trigger"].update(kind="sms"))
    assert cli_main(["eval", str(directory), "--no-llm-only"]) == 2
    assert f"error: {directory / 'scenario.yaml'}: trigger.kind:" in capsys.readouterr().out


async def test_the_no_llm_pass_count_of_the_shipped_suite_does_not_regress(tmp_path: Path) -> None:
    started = time.monotonic()
    results = await run_suite(SCENARIOS, model=None, concurrency=12, timeout_s=60)
    passed = sorted(r.scenario.name for r in results if r.score.status == "pass")
    unfinished = [r.scenario.name for r in results if r.error and "did not finish" in r.error]
    assert unfinished == []
    assert len(passed) >= NO_LLM_FLOOR, f"{len(passed)} passed: {passed}"
    assert time.monotonic() - started < 60


async def test_the_scripted_model_pass_count_of_the_shipped_suite_does_not_regress(tmp_path: Path) -> None:
    started = time.monotonic()
    async with OpenAIEmulator() as emulator:
        results = await run_scripted(load_suite(SCENARIOS), emulator, tmp_path, concurrency=12, timeout_s=60)
    passed = sorted(r.scenario.name for r in results if r.score.status == "pass")
    assert {r.mode for r in results} == {SCRIPTED_MODE}
    unfinished = [r.scenario.name for r in results if r.error and "did not finish" in r.error]
    assert unfinished == []
    assert emulator.failures == []
    assert len(passed) >= SCRIPTED_FLOOR, f"{len(passed)} passed: {passed}"
    assert time.monotonic() - started < 60


def test_the_scripted_investigator_fills_a_strict_schema_or_does_not_call() -> None:
    schema = {
        "properties": {
            "name": {"type": "string"},
            "namespace": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "previous": {"type": "boolean", "default": False},
        }
    }
    assert arguments_for(schema, {"name": "web-1"}) == {"name": "web-1", "namespace": None, "previous": False}
    assert arguments_for(schema, {}) is None, "a required name it does not know is not made up"
    monitor = "avg(last_10m):avg:redis.keys.evicted{service:cart} by {host} >= 100"
    assert metric_of_monitor(monitor) == "avg:redis.keys.evicted{service:cart} by {host}"


async def test_the_scripted_model_investigates_through_the_planner_and_its_specialists(
    tmp_path: Path,
) -> None:
    root = _suite(tmp_path, CRASHLOOP, POISON)
    async with OpenAIEmulator() as emulator:
        results = await run_suite(root, model=None, timeout_s=60, scripted=emulator)
    by_mode = {(r.mode, r.scenario.name): r for r in results}
    assert {mode for mode, _ in by_mode} == {"no-llm", SCRIPTED_MODE}
    assert emulator.failures == []
    planner = [r for r in emulator.requests if "ask_kubernetes" in r.tool_names]
    assert planner and all(r.system_prompt.startswith("You are IncidentFox") for r in planner)
    assert any("ask_logs" in r.tool_names for r in planner)
    asked = [
        r for r in emulator.requests if "list_pods" in r.tool_names and "ask_kubernetes" not in r.tool_names
    ]
    assert any("role" in m and m["role"] == "tool" for r in asked for m in r.messages), "the pods were listed"
    assert any("fetch_logs" in r.tool_names for r in emulator.requests)
    crash = by_mode[(SCRIPTED_MODE, CRASHLOOP.name)]
    assert crash.score.status == "pass", crash.score.to_dict()
    # The answer is only in the logs: the no-LLM analyzers miss it, the scripted investigator finds it
    # by asking the logs specialist, which looks further back when the last hour shows no error.
    poison = by_mode[(SCRIPTED_MODE, POISON.name)]
    assert by_mode[("no-llm", POISON.name)].score.status == "fail"
    assert poison.score.status == "pass", poison.score.to_dict()
    assert poison.rca is not None and "fulfilment-worker" in poison.rca.root_cause
    seen = "\n".join(r.text() for r in emulator.requests if "fetch_logs" in r.tool_names)
    for evidence in poison.rca.evidence:
        assert json.dumps(evidence.quote)[1:-1] in seen, f"{evidence.quote!r} was not in a tool output"
        assert evidence.source.startswith("logs fetch_logs: loki: LogQL")
    table = pass_rate_table(results)
    assert table.splitlines()[0].split() == ["category", "scenarios", "no-llm", SCRIPTED_MODE]
    assert "logs        1          0/1 (0%)    1/1 (100%)" in table
    report = json_report(results, duration_s=1.0)
    assert report["summary"][SCRIPTED_MODE]["all"] == {"passed": 2, "failed": 0, "unscored": 0}


def test_the_cli_runs_the_scripted_column_and_leaves_judge_only_cases_unscored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _suite(tmp_path, CRASHLOOP)
    shutil.copytree(HOLMES / "02_pending_quota", root / "holmes" / "02_pending_quota")
    out = tmp_path / "out.json"
    assert cli_main(["eval", str(root), "--json", str(out), "--no-llm-only", "--scripted"]) == 0
    captured = capsys.readouterr()
    assert f"[{SCRIPTED_MODE}] pass     {CRASHLOOP.name} (" in captured.err
    rows = {row[0]: row[1:] for row in (re.split(r"\s{2,}", line) for line in captured.out.splitlines())}
    assert rows["category"] == ["scenarios", "no-llm", SCRIPTED_MODE]
    assert rows["holmes"] == ["1", "- +1 unscored", "- +1 unscored"]
    assert rows["kubernetes"] == ["1", "1/1 (100%)", "1/1 (100%)"]
    report = json.loads(out.read_text())
    assert {(r["mode"], r["scenario"]): r["status"] for r in report["results"]} == {
        ("no-llm", CRASHLOOP.name): "pass",
        ("no-llm", "holmes/02_pending_quota"): "unscored",
        (SCRIPTED_MODE, CRASHLOOP.name): "pass",
        (SCRIPTED_MODE, "holmes/02_pending_quota"): "unscored",
    }


async def test_the_cli_takes_the_model_from_the_environment_and_refuses_a_model_without_a_key(
    tmp_path: Path, model: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from incidentfox.bot.settings import Settings
    from incidentfox.evals.command import configured_model

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SystemExit, match="--model needs OPENAI_API_KEY"):
        configured_model("gpt-x", Settings(_env_file=None))  # type: ignore[call-arg]
    assert configured_model(None, Settings(_env_file=None)) is None  # type: ignore[call-arg]
    monkeypatch.setenv("OPENAI_API_KEY", model.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
    chosen = configured_model("gpt-x", Settings(_env_file=None))  # type: ignore[call-arg]
    assert chosen == ModelConfig(name="gpt-x", api_key=model.api_key, base_url=model.base_url)
