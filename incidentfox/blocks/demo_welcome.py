"""The pinned first-run message of the demo channel: what this workspace is and what to try."""

from __future__ import annotations

from incidentfox.blocks.components import Block, context, divider, header, section
from incidentfox.blocks.limits import fit_message

WELCOME_HEADER = "Welcome to the IncidentFox demo"
FIRST_QUESTION = "@IncidentFox why is checkout failing?"
DEBUG_TASK = "/incidentfox debug why does payments-api fail to deploy?"


def _mode(model_configured: bool) -> str:
    """How investigations run, and so what leaves the machine."""
    if model_configured:
        return (
            "*Mode:* a model is configured, so an agent investigates with the team's tools, grounded "
            "by the deterministic analyzers' findings. Questions and the evidence it gathers go to that "
            "model; nothing else leaves your machine."
        )
    return (
        "*Mode:* no model is configured, so the deterministic analyzers investigate and write the "
        "root-cause analysis (no-LLM mode), and no data leaves your machine. Set `OPENAI_API_KEY` "
        "and restart to add a model."
    )


def _sre_agent(on: bool) -> str:
    if on:
        return (
            f"• `{DEBUG_TASK}` starts the SRE agent: it works in a sandbox with the demo repo checked "
            "out, and you can reply in its thread."
        )
    return "• With `ANTHROPIC_API_KEY` set, `/incidentfox debug <task>` starts the SRE agent in a sandbox."


def welcome_blocks(*, model_configured: bool, sre_agent: bool = False) -> list[Block]:
    """The message's blocks; ``model_configured`` says which investigation mode the user will see,
    ``sre_agent`` whether ``/incidentfox debug`` works here."""
    tries = "\n".join(
        [
            "*Try this*",
            f"• `{FIRST_QUESTION}` here, and watch the investigation update live in its thread.",
            _sre_agent(sre_agent),
            "• `/incidentfox help` for the commands; `/incidentfox setup` to see how a channel "
            "gets its team.",
            "• The *Home* tab: your teams, their effective config and recent runs.",
            "• The *Demo* buttons: play a PagerDuty page or a failing CI run, sent to IncidentFox "
            "exactly as PagerDuty and GitHub send them.",
            "• The *Console* tab: the org → unit → team tree, each node's config, tokens and the audit log.",
        ]
    )
    blocks = [
        header(WELCOME_HEADER),
        section(
            "This is a local Slack-like workspace running on your machine, and IncidentFox talks to "
            "it exactly as it talks to Slack. This channel belongs to the *Payments (demo)* team of "
            "the *Demo (sample data)* org, whose Kubernetes cluster, PagerDuty account and GitHub "
            "repositories are sample data served inside this process."
        ),
        section(_mode(model_configured)),
        divider(),
        section(tries),
        context(
            "To turn the demo off, start IncidentFox with `INCIDENTFOX_DEMO=0`. To use your own "
            "cluster, point the team's `integrations.kubernetes` at it from the Console."
        ),
    ]
    return fit_message(blocks)


def welcome_text() -> str:
    """The message's plain text (notifications, screen readers)."""
    return f"{WELCOME_HEADER}: sample data, running locally. Try `{FIRST_QUESTION}` here."
