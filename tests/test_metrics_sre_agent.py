"""The SRE agent's metrics end to end: ``/incidentfox debug`` runs the real bundled CLI in a bubblewrap
sandbox, through the model proxy, against the Anthropic emulator. ``/metrics`` then shows the sandbox
the session holds and every model call the CLI made, once each; shutting down releases the sandbox."""

from __future__ import annotations

from pathlib import Path

from incidentfox.emulators.anthropic_api import AnthropicEmulator, RoutedScript, ScriptStep
from tests.metric_samples import sample, scraped_families
from tests.slack_world import world
from tests.test_sandbox_agent_cli import _require_bubblewrap

ANSWER = "The build fails because the module checkout-api is missing."
ACTIVE = "incidentfox_sandboxes_active"
MODEL_CALLS = "incidentfox_model_seconds_count"


async def test_a_debug_session_shows_its_sandbox_and_its_model_calls_on_metrics(tmp_path: Path) -> None:
    _require_bubblewrap()
    async with AnthropicEmulator() as emu:
        emu.responder = RoutedScript().when_user_says("why does the build fail?", [ScriptStep.text(ANSWER)])
        held, calls = sample(ACTIVE, backend="local"), sample(MODEL_CALLS, provider="anthropic")
        tokens_in = sample("incidentfox_model_tokens_total", provider="anthropic", kind="input")
        tokens_out = sample("incidentfox_model_tokens_total", provider="anthropic", kind="output")
        async with world(tmp_path, anthropic=emu) as w:
            assert (await w.command("debug why does the build fail?"))[0] == 200
            root = await w.slack.wait_for("chat.postMessage", lambda c: "asked:" in str(c.args.get("text")))
            await w.final_update(root.response["ts"], ANSWER, timeout=120)
            async with w.http.get(f"http://127.0.0.1:{w.fox.port}/metrics") as scraped:
                families = scraped_families(await scraped.text())

            active = {labels["backend"]: value for labels, value in families[ACTIVE]}
            assert active["local"] == held + 1, "the thread's session holds its sandbox"
            assert active["kubernetes"] == active["unsafe-local"] == 0
            assert emu.requests, "the CLI asked the model"
            assert sample(MODEL_CALLS, provider="anthropic") - calls == len(emu.requests)
            assert sample("incidentfox_model_tokens_total", provider="anthropic", kind="input") > tokens_in
            assert sample("incidentfox_model_tokens_total", provider="anthropic", kind="output") > tokens_out

        assert sample(ACTIVE, backend="local") == held, "stopping the agent releases the session"
