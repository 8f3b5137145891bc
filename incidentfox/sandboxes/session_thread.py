"""One Slack thread's SRE agent while this process runs: its sandbox, its live ``ClaudeSDKClient``
(the bundled CLI confined in that sandbox), and the turn that is running, if any.

The client is connected lazily and reused for follow-ups. When it is gone (idle close, a fault, a
restart) but the sandbox lives, the next connect passes ``resume`` so the CLI continues its own
conversation from the transcript under its home in the workdir. Every connect gets a fresh session
token; every disconnect revokes it, so a CLI that is not ours any more cannot reach the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_agent_sdk import ClaudeSDKClient
from claude_agent_sdk.types import SystemPromptPreset

from incidentfox.agents.events import Interrupted, ProgressEvent
from incidentfox.agents.redaction import secret_values
from incidentfox.sandboxes.agent_cli import launcher_path, sandboxed_cli_options
from incidentfox.sandboxes.backends.base import Sandbox, SandboxBackend, SandboxError
from incidentfox.sandboxes.session_sandbox import SessionLimits
from incidentfox.sandboxes.session_stream import TurnReader
from incidentfox.sandboxes.session_tokens import SessionTokens
from incidentfox.sandboxes.store import SandboxStore
from incidentfox.sandboxes.team_tools import (
    McpOptions,
    ShareFile,
    TeamTools,
    build_team_tools,
    team_mcp_options,
)

log = logging.getLogger(__name__)

Emit = Callable[[ProgressEvent], None]

CONTROL_TIMEOUT_S = 10.0
"""How long an interrupt may take to reach the CLI before we stop waiting and disconnect it."""

CLI_FAILED = (
    "The SRE agent could not start in its sandbox ({detail}). Nothing is left running. Try again, and "
    "ask your IncidentFox admin to check the host if it keeps happening."
)
CLI_ENDED = (
    "The SRE agent stopped unexpectedly before it answered. Nothing is left running; send your message "
    "again to continue the same session."
)
TOKEN_REFUSED = (
    "The model proxy refused this session's credentials, so the agent could not reach the model. "
    "Nothing is left running; send your message again to continue with fresh credentials."
)
MODEL_FAILED = (
    "The model API failed while the agent was working ({detail}). Nothing is left running; send your "
    "message again to retry."
)
WALL_TIME = (
    "The agent worked on this message for more than {duration}, so it was stopped. The "
    "session and its files are kept; send a narrower follow-up to continue."
)
MAX_STEPS = (
    "The agent used all {steps} of its steps on this message without finishing. Send a follow-up to "
    "let it continue where it stopped."
)


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """How one message to the agent ended. ``error`` is plain words for the thread."""

    text: str
    error: str | None = None
    interrupted: bool = False
    interrupted_by: str = ""
    cli_failed: bool = False
    """The CLI could not start or died: retrying with a fresh CLI may help."""
    heard_back: bool = False
    """The CLI sent at least one message for this turn."""


SYSTEM_APPEND = (
    "You are IncidentFox's SRE agent, working with an engineer in a Slack thread. You run in an isolated "
    "sandbox: your working directory is yours for this thread, and nothing else of the host is reachable. "
    "The team's integrations (Kubernetes, logs, metrics, GitHub, PagerDuty, as configured) are the "
    "read-only tools named mcp__incidentfox__*; they run outside the sandbox with the team's credentials, "
    "which you never see. When the engineer asks for a file you wrote, attach it with "
    "mcp__incidentfox__share_file. Answer in Markdown, briefly, with the evidence you found."
)


@dataclass(frozen=True, slots=True)
class Equipment:
    """What a session's CLI is given besides its sandbox: the team's config (for its tools, in this
    process) and how to attach a file to the thread."""

    config: Mapping[str, Any]
    share: ShareFile | None = None

    @property
    def key(self) -> str:
        """Changes when the config does: the CLI is restarted (resuming) to get the new tools."""
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class SessionDeps:
    """What every thread's session shares with ``SreSessions``."""

    store: SandboxStore
    tokens: SessionTokens
    limits: SessionLimits
    launcher_dir: Path


class SreSession:
    """The live agent of one thread. ``SreSessions`` serialises turns; ``interrupt`` may come anytime."""

    def __init__(
        self,
        deps: SessionDeps,
        *,
        session_id: str,
        thread_key: str,
        team: tuple[str, str],
        backend: SandboxBackend,
        sandbox: Sandbox,
        agent_session_id: str | None,
    ) -> None:
        self.deps = deps
        self.session_id = session_id
        self.thread_key = thread_key
        self.team = team
        self.backend = backend
        self.sandbox = sandbox
        self.agent_session_id = agent_session_id
        self.client: ClaudeSDKClient | None = None
        self.resumed_cli = False
        """The live client was started with ``resume`` (continuing the CLI's own session)."""
        self.running = False
        self.last_interrupted = False
        self.last_used = time.monotonic()
        self._token = ""
        self._token_issued = 0.0
        self._emit: Emit | None = None
        self._interrupted_by: str | None = None
        self._equipment: Equipment | None = None
        self._tools: TeamTools | None = None
        self._tools_key = ""

    def equip(self, equipment: Equipment | None) -> None:
        """The team's tools for the next turn (a changed config restarts the CLI, which resumes)."""
        self._equipment = equipment

    def _equipment_changed(self) -> bool:
        return self._equipment is not None and self._equipment.key != self._tools_key

    @property
    def confined(self) -> bool:
        return self.sandbox.confined

    async def turn(self, prompt: str, emit: Emit) -> TurnOutcome:
        """Send ``prompt`` and stream the turn into ``emit`` until the CLI's result.

        Cancelled mid-turn (the run was stopped), the CLI is disconnected: its half-read answer would
        otherwise be read by the next turn. The next message resumes the CLI's session."""
        self.running, self._emit, self._interrupted_by = True, emit, None
        try:
            return await self._turn(prompt, emit)
        except asyncio.CancelledError:
            await asyncio.shield(self.disconnect())
            raise
        finally:
            self.last_interrupted = self._interrupted_by is not None
            self.running, self._emit, self._interrupted_by = False, None, None
            self.last_used = time.monotonic()

    async def _turn(self, prompt: str, emit: Emit) -> TurnOutcome:
        if self.client is None or self._token_ageing() or self._equipment_changed():
            await self.disconnect()
            failure = await self._connect()
            if failure is not None:
                return failure
        if self._interrupted_by is not None:
            return TurnOutcome("", interrupted=True, interrupted_by=self._interrupted_by)
        assert self.client is not None
        config = self._equipment.config if self._equipment is not None else {}
        reader = TurnReader(known_values=(self._token, *secret_values(config)))
        heard = False
        limit = self.deps.limits.wall_time_s
        try:
            async with asyncio.timeout(limit) as deadline:
                await self.client.query(prompt)
                async for message in self.client.receive_response():
                    heard = True
                    await self._touch()
                    read = reader.read(message)
                    for event in read.events:
                        emit(event)
                    for line in read.tool_lines:
                        await self.deps.store.record_turn(self.session_id, "tool", line)
                    await self._note_agent_session(reader.agent_session_id)
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("sandbox session: turn over wall time session=%s limit_s=%s", self.session_id, limit)
            await self._stop_hung()
            return TurnOutcome(
                reader.last_text, WALL_TIME.format(duration=_duration(limit)), heard_back=heard
            )
        except Exception as exc:
            log.warning(
                "sandbox session: CLI failed session=%s error=%s", self.session_id, type(exc).__name__
            )
            await self.disconnect()
            return TurnOutcome(reader.last_text, CLI_ENDED, cli_failed=True, heard_back=heard)
        return await self._outcome(reader, heard)

    async def _outcome(self, reader: TurnReader, heard: bool) -> TurnOutcome:
        result = reader.result
        if self._interrupted_by is not None:
            by = self._interrupted_by
            return TurnOutcome(reader.last_text, interrupted=True, interrupted_by=by, heard_back=heard)
        if result is None:
            await self.disconnect()
            return TurnOutcome(reader.last_text, CLI_ENDED, cli_failed=True, heard_back=heard)
        if not result.is_error:
            return TurnOutcome(reader.final_text, heard_back=True)
        if result.subtype == "error_max_turns":
            steps = self.deps.limits.max_agent_steps
            return TurnOutcome(reader.last_text, MAX_STEPS.format(steps=steps), heard_back=True)
        said = " ".join([result.result or "", *(result.errors or [])]).lower()
        await self.disconnect()
        if result.api_error_status in (401, 403) or "authentication" in said or "not authorised" in said:
            return TurnOutcome("", TOKEN_REFUSED, heard_back=True)
        detail = f"HTTP {result.api_error_status}" if result.api_error_status else result.subtype
        return TurnOutcome(reader.last_text, MODEL_FAILED.format(detail=detail), heard_back=True)

    async def interrupt(self, by: str) -> bool:
        """Stop the running turn; ``False`` when nothing runs or it was already interrupted."""
        if not self.running or self._interrupted_by is not None:
            return False
        self._interrupted_by = by
        if self._emit is not None:
            self._emit(Interrupted(by))
        if self.client is not None:
            try:
                async with asyncio.timeout(CONTROL_TIMEOUT_S):
                    await self.client.interrupt()
            except Exception as exc:
                log.warning(
                    "sandbox session: interrupt failed session=%s error=%s",
                    self.session_id,
                    type(exc).__name__,
                )
                await self.disconnect()
        return True

    async def disconnect(self) -> None:
        """Stop the CLI (it ends with its launcher) and revoke its token; the sandbox stays."""
        client, self.client = self.client, None
        self.deps.tokens.revoke(self.session_id)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()
        await self._close_tools()
        launcher_path(self.deps.launcher_dir, self.sandbox).unlink(missing_ok=True)

    async def _close_tools(self) -> None:
        tools, self._tools, self._tools_key = self._tools, None, ""
        if tools is not None:
            with contextlib.suppress(Exception):
                await tools.close()

    def _build_tools(self) -> TeamTools | None:
        equipment = self._equipment
        if equipment is None:
            return None
        return build_team_tools(
            equipment.config,
            org_id=self.team[0],
            team_node_id=self.team[1],
            session_id=self.session_id,
            sandbox=self.sandbox,
            share=equipment.share,
        )

    def forget_agent_session(self) -> None:
        self.agent_session_id = None

    async def _connect(self) -> TurnOutcome | None:
        token = self.deps.tokens.issue(self.session_id)
        tools = self._build_tools()
        mcp = team_mcp_options(tools) if tools is not None else McpOptions(mcp_servers={}, allowed_tools=[])
        try:
            options = await sandboxed_cli_options(
                self.backend,
                self.sandbox,
                session_token=token,
                launcher_dir=self.deps.launcher_dir,
                resume=self.agent_session_id,
                system_prompt=SystemPromptPreset(type="preset", preset="claude_code", append=SYSTEM_APPEND),
                max_turns=self.deps.limits.max_agent_steps,
                mcp_servers=mcp["mcp_servers"],
                allowed_tools=mcp["allowed_tools"],
            )
            client = ClaudeSDKClient(options=options)
            await client.connect()
        except SandboxError as exc:
            self.deps.tokens.revoke(self.session_id)
            if tools is not None:
                await tools.close()
            return TurnOutcome("", CLI_FAILED.format(detail=exc.message.rstrip(".")), cli_failed=True)
        except Exception as exc:
            self.deps.tokens.revoke(self.session_id)
            if tools is not None:
                await tools.close()
            log.warning(
                "sandbox session: CLI did not start session=%s error=%s", self.session_id, type(exc).__name__
            )
            return TurnOutcome("", CLI_FAILED.format(detail="the CLI exited as it started"), cli_failed=True)
        self.client, self._token, self._token_issued = client, token, time.monotonic()
        self._tools, self._tools_key = tools, self._equipment.key if self._equipment is not None else ""
        self.resumed_cli = self.agent_session_id is not None
        return None

    def _token_ageing(self) -> bool:
        """A token that could expire during the next turn: start the CLI again (resuming) with a new one."""
        age = time.monotonic() - self._token_issued
        return age + self.deps.limits.wall_time_s >= self.deps.tokens.ttl_s

    async def _touch(self) -> None:
        await self.deps.store.touch(self.session_id)
        try:
            await self.backend.touch(self.sandbox)
        except (SandboxError, OSError) as exc:
            log.info("sandbox session: touch failed session=%s error=%s", self.session_id, type(exc).__name__)

    async def _note_agent_session(self, agent_session_id: str | None) -> None:
        if agent_session_id and agent_session_id != self.agent_session_id:
            self.agent_session_id = agent_session_id
            await self.deps.store.set_agent_session(self.session_id, agent_session_id)

    async def _stop_hung(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CONTROL_TIMEOUT_S):
                    await self.client.interrupt()
        await self.disconnect()


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"
