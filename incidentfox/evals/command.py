"""``incidentfox eval DIR [--model NAME] [--json out.json]``: run a suite, print the table, write JSON.

Every scenario runs without a model (the no-LLM analyzers). When a model is configured (``--model``
with ``OPENAI_API_KEY`` and, for another endpoint, ``OPENAI_BASE_URL``; or ``INCIDENTFOX_MODEL`` with a
key in the environment), every scenario runs again with it, and the same model judges every RCA.
With ``--scripted``, every scenario also runs in LLM mode against the OpenAI emulator on loopback,
answered by one generic scripted investigator (``scripted_model``), scored by the fact checks alone:
the ``scripted-model`` column.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from openai import AsyncOpenAI

from incidentfox.bot.settings import Settings
from incidentfox.emulators.openai_api import OpenAIEmulator
from incidentfox.evals.files import ScenarioError
from incidentfox.evals.harness import EvalHarness, ModelConfig
from incidentfox.evals.report import failures, json_report, pass_rate_table
from incidentfox.evals.scenario import Scenario
from incidentfox.evals.scoring import CaseResult, Judge
from incidentfox.evals.scripted_model import SCRIPTED_MODE, ScriptedInvestigator
from incidentfox.evals.suite import load_suite


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="a directory of scenarios (or HolmesGPT fixtures)")
    parser.add_argument("--model", help="run with this model too (OPENAI_API_KEY / OPENAI_BASE_URL)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the results as JSON here")
    parser.add_argument("--concurrency", type=int, default=8, help="scenarios at once (default 8)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run (default 120)")
    parser.add_argument("--no-llm-only", action="store_true", help="skip the model run and the judge")
    parser.add_argument(
        "--scripted", action="store_true", help="also run against the scripted investigator (emulated model)"
    )


def configured_model(name: str | None, settings: Settings) -> ModelConfig | None:
    """The model from ``--model`` or the environment; ``None`` without an API key."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if not key:
        if name:
            raise SystemExit("--model needs OPENAI_API_KEY (and OPENAI_BASE_URL for another endpoint)")
        return None
    return ModelConfig(
        name=name or settings.incidentfox_model, api_key=key, base_url=settings.openai_base_url
    )


async def run_suite(
    root: Path,
    *,
    model: ModelConfig | None,
    concurrency: int = 8,
    timeout_s: float = 120.0,
    on_result: Callable[[CaseResult], None] | None = None,
    scripted: OpenAIEmulator | None = None,
) -> list[CaseResult]:
    """Every scenario under ``root`` without a model, then with ``model`` when given (judged by it),
    then, given a started ``scripted`` emulator, in LLM mode against it (its responder is set to the
    ``ScriptedInvestigator``; no judge)."""
    scenarios = load_suite(root)
    judge = None
    if model is not None:
        judge = Judge(AsyncOpenAI(api_key=model.api_key, base_url=model.base_url), model.name)
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="incidentfox-eval-") as scratch:
        modes: list[ModelConfig | None] = [None] if model is None else [None, model]
        for i, mode in enumerate(modes):
            harness = EvalHarness(
                Path(scratch) / f"mode-{i}",
                model=mode,
                judge=judge,
                concurrency=concurrency,
                timeout_s=timeout_s,
                on_result=on_result,
            )
            results += await harness.run(scenarios)
        if scripted is not None:
            results += await run_scripted(
                scenarios,
                scripted,
                Path(scratch) / "mode-scripted",
                concurrency=concurrency,
                timeout_s=timeout_s,
                on_result=on_result,
            )
    return results


async def run_scripted(
    scenarios: Sequence[Scenario],
    emulator: OpenAIEmulator,
    workdir: Path,
    *,
    concurrency: int = 8,
    timeout_s: float = 120.0,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """``scenarios`` in LLM mode against the started ``emulator``, answered by the scripted
    investigator and scored by the fact checks alone (the ``scripted-model`` column)."""
    emulator.responder = ScriptedInvestigator()
    emulated = ModelConfig(name=emulator.models[0], api_key=emulator.api_key, base_url=emulator.base_url)
    harness = EvalHarness(
        workdir,
        model=emulated,
        concurrency=concurrency,
        timeout_s=timeout_s,
        on_result=on_result,
        mode=SCRIPTED_MODE,
    )
    return await harness.run(scenarios)


async def _run(args: argparse.Namespace, model: ModelConfig | None) -> list[CaseResult]:
    if not args.scripted:
        return await run_suite(
            args.dir, model=model, concurrency=args.concurrency, timeout_s=args.timeout, on_result=progress
        )
    async with OpenAIEmulator() as emulator:
        return await run_suite(
            args.dir,
            model=model,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
            on_result=progress,
            scripted=emulator,
        )


def progress(result: CaseResult) -> None:
    """One line on stderr per finished scenario, so a long run with a model shows it is moving."""
    line = f"[{result.mode}] {result.score.status:8} {result.scenario.name} ({result.duration_s:.1f} s)"
    print(line, file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    try:
        model = None if args.no_llm_only else configured_model(args.model, Settings())
        started = time.monotonic()
        results = asyncio.run(_run(args, model))
    except ScenarioError as exc:
        print(f"error: {exc}")
        return 2
    duration = time.monotonic() - started
    print(pass_rate_table(results))
    listed = failures(results)
    if listed:
        print("\n" + listed)
    print(f"\n{len({r.scenario.name for r in results})} scenarios in {duration:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(json_report(results, duration_s=duration), indent=2) + "\n")
    return 0
