"""Issue 10's "done when", end to end through Slack: in a claimed channel, ``/incidentfox debug why does
the checkout build fail on main?`` clones the team's repo (over real git HTTP from the GitHub
emulator, with the team's token) into a bubblewrap sandbox; the agent (the real bundled CLI against
the Anthropic emulator) runs commands there, uses a team tool that runs outside the sandbox, and
answers in the thread, attaching a file it wrote; a host canary is out of its reach; no credential is
anywhere in the sandbox; a message after expiry continues the conversation in a fresh sandbox, with
the repo cloned again and the thread told the files were reset."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from incidentfox.db.base import utcnow
from incidentfox.emulators.anthropic_api import AnthropicEmulator, RoutedScript, ScriptStep
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.slack.store import RecordedCall
from incidentfox.sandboxes.reaper import SandboxReaper
from incidentfox.sandboxes.store import SandboxStore
from tests.slack_world import ADMIN, CHANNEL, USER, World, world
from tests.test_sandbox_agent_cli import _require_bubblewrap

MAKEFILE = "build:\n\tgo build ./cmd/checkout  # needs CHECKOUT_API_VERSION=2\n"
TASK = "why does the checkout build fail on main?"
CANARY = "host-canary-7f3a91"
REPORT = "build needs CHECKOUT_API_VERSION=2"
ANSWER = "The build needs CHECKOUT_API_VERSION=2, which main's CI does not set."


def _said(call: RecordedCall) -> str:
    return json.dumps(call.args, ensure_ascii=False)


async def _final(w: World, starting: str) -> RecordedCall:
    return await w.slack.wait_for(
        "chat.update",
        lambda c: c.ok and str(c.args.get("text")).startswith(f"🛠️ SRE agent: {starting}"),
        timeout=180,
    )


def _holding(root: Path, secrets: list[str]) -> list[Path]:
    """The regular files under ``root`` that contain any of ``secrets``."""
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [path] if any(s.encode() in data for s in secrets) else []
    return found


def _exists(path: Path) -> bool:
    return path.exists()


async def test_debug_clones_the_repo_answers_and_continues_after_expiry(tmp_path: Path) -> None:
    _require_bubblewrap()
    canary = tmp_path / "host-canary.txt"
    canary.write_text(CANARY)
    async with GitHubEmulator() as gh, AnthropicEmulator() as emu:
        gh.seed_git_repo("acme/checkout", {"Makefile": MAKEFILE, "README.md": "# checkout\n"})
        emu.responder = (
            RoutedScript()
            .when_tool_result(
                [
                    ScriptStep.tool_use("mcp__incidentfox__list_pods", {"namespace": "prod"}),
                    ScriptStep.tool_use("Bash", {"command": f"cat {canary}"}),
                    ScriptStep.tool_use("Bash", {"command": f"printf '{REPORT}' > report.md"}),
                    ScriptStep.tool_use(
                        "mcp__incidentfox__share_file", {"path": "report.md", "comment": "The build notes."}
                    ),
                ]
            )
            .when_user_says("and now?", [ScriptStep.text("Still the missing CHECKOUT_API_VERSION.")])
            .when(
                "the file is attached", lambda r: "Attached report.md" in r.text(), [ScriptStep.text(ANSWER)]
            )
            .when_user_says(TASK, [ScriptStep.tool_use("Bash", {"command": "cat checkout/Makefile"})])
        )
        async with world(tmp_path, anthropic=emu) as w:
            assert w.fox.runtime is not None
            document = {
                "integrations": {
                    "kubernetes": {"api_url": w.k8s.api_url, "token": w.k8s.token, "namespace": "prod"},
                    "github": {"api_url": gh.api_url, "token": gh.token},
                },
                "routing": {"slack_channel_ids": [CHANNEL], "github_repos": ["acme/checkout"]},
            }
            await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", document, operation="put")

            await w.command(f"debug {TASK}")
            root = await w.slack.wait_for("chat.postMessage", lambda c: "asked:" in str(c.args.get("text")))
            thread_ts = root.response["ts"]
            final = await _final(w, "The build needs")

            assert final.args["text"] == f"🛠️ SRE agent: {ANSWER}"
            progress = [c for c in w.slack.calls("chat.update") if c.args.get("ts") == final.args["ts"]]
            assert any("git clone" in _said(c) and "acme/checkout" in _said(c) for c in progress), (
                "shown live"
            )
            [first] = [r for r in emu.requests if r.last_user_text.endswith(TASK)][:1]
            assert "checked out the repository acme/checkout for you in ./checkout" in first.text()
            make, pods, peek = [r.tool_results[0] for r in emu.requests if r.has_tool_result][:3]
            assert "CHECKOUT_API_VERSION=2" in make.text, "the agent read the clone inside the sandbox"
            assert "checkout-" in pods.text and not pods.is_error, "the team's Kubernetes tool ran outside"
            assert CANARY not in peek.text and peek.is_error, "the host canary is out of reach"

            [shared] = w.slack.files_in(CHANNEL, thread_ts=thread_ts)
            assert (shared.name, shared.content) == ("report.md", REPORT.encode())
            upload = w.slack.calls("files.completeUploadExternal")[-1]
            assert "The build notes." in _said(upload), "the agent's comment came with the file"

            store = SandboxStore(w.fox.runtime.sessions)
            runs = await w.wait_runs_finished(1, timeout=30)
            row = await store.for_thread(runs[0].thread_key or "")
            assert row is not None and row.sandbox_details is not None
            workdir = Path(row.sandbox_details["ifx_workdir"])
            assert _exists(workdir / "checkout" / "Makefile")
            secrets = [gh.token, w.k8s.token, emu.api_key]
            assert _holding(workdir, secrets) == [], "no credential is written into the sandbox"
            everything_sent = " ".join(r.text() for r in emu.requests)
            assert not any(s in everything_sent for s in secrets), "no credential reached the model"

            assert w.fox.sre_agent is not None
            reaper = SandboxReaper(store, w.fox.sre_agent.sessions.destroy_row)
            assert await reaper.reap_once(utcnow() + timedelta(hours=2)) == 1
            assert not _exists(workdir), "the expired sandbox's files are gone"

            later = w.slack.make_message(CHANNEL, USER, "and now?", thread_ts=thread_ts)
            await w.post_event(w.slack.make_event_callback(later, event_id="EvLater1"))
            again = await _final(w, "_The sandbox's files were reset")

            assert "Still the missing CHECKOUT_API_VERSION." in again.args["text"]
            rehydrated = emu.requests[-1].last_user_text
            assert TASK in rehydrated and "and now?" in rehydrated, "the conversation was rehydrated"
            assert "checked out the repository acme/checkout" in emu.requests[-1].text(), "cloned again"
            fresh = await store.for_thread(runs[0].thread_key or "")
            assert fresh is not None and fresh.sandbox_details is not None
            assert _exists(Path(fresh.sandbox_details["ifx_workdir"], "checkout", "Makefile"))
