"""The ``incidentfox`` command: ``serve``, ``migrate``, ``tools`` and ``eval``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from typing import Any

from incidentfox.agents.redis_queue import QueueUnavailable
from incidentfox.agents.specialists import all_toolsets
from incidentfox.agents.toolsets.outputs import OUTPUTS
from incidentfox.bot.assembly import IncidentFox, Role
from incidentfox.bot.settings import Settings, redacted_url
from incidentfox.config.secrets import SecretsUnreadable
from incidentfox.db.engine import create_engine
from incidentfox.db.migrate import current_revision, upgrade_to_head
from incidentfox.evals import command as evals

log = logging.getLogger("incidentfox")
MAX_DEFAULT_WORKERS = 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="incidentfox", description="Self-hosted, Slack-first AI SRE bot")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server (and Socket Mode and workers)")
    serve.add_argument(
        "--role",
        choices=["all", "bot", "worker"],
        default="all",
        help="all (default): one process; bot (acks and queues) and worker (investigates) share REDIS_URL",
    )
    serve.add_argument(
        "--team", metavar="ORG/TEAM", help="with --role worker: a dedicated worker for that team's runs only"
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="with role all: N worker processes beside the bot (WORKER_PROCESSES); 0 = all in one process",
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    commands.add_parser("migrate", help="apply database migrations")
    tools = commands.add_parser("tools", help="list every tool of every toolset")
    tools.add_argument("--json", action="store_true", help="machine-readable output")
    evals.add_arguments(commands.add_parser("eval", help="run eval scenarios and score the RCAs"))
    args = parser.parse_args(argv)
    if args.command == "tools":
        print(tools_listing(as_json=args.json))
        return 0
    if args.command == "eval":
        return evals.main(args)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
    )
    settings = Settings()
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        return 0
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    if args.workers is not None:
        if args.workers < 0 or args.role != "all":
            parser.error("--workers takes a number of processes (0 or more), and only with role all")
        settings.worker_processes = args.workers
    team = None
    if args.team:
        org, sep, node = args.team.partition("/")
        if not (sep and org and node) or args.role != "worker":
            parser.error("--team takes ORG/TEAM, and only with --role worker")
        team = (org, node)
    asyncio.run(_serve(settings, args.role, team))
    return 0


def tools_listing(*, as_json: bool) -> str:
    """``[{"toolset", "tools": [{"name", "description", "writes"}]}]`` as JSON, or a readable list."""
    listing: list[dict[str, Any]] = [
        {
            "toolset": toolset.name,
            "tools": [
                {"name": tool.name, "description": tool.description, "writes": tool.writes}
                for tool in toolset.tools
            ],
        }
        for toolset in (*all_toolsets(), OUTPUTS)
    ]
    if as_json:
        return json.dumps(listing, indent=2)
    lines = []
    for entry in listing:
        lines.append(f"{entry['toolset']}:")
        for tool in entry["tools"]:
            marker = " (write, needs approval)" if tool["writes"] else ""
            lines.append(f"  {tool['name']}{marker}: {_first_sentence(str(tool['description']))}")
    count = sum(len(entry["tools"]) for entry in listing)
    lines.append(f"{count} tools in {len(listing)} toolsets")
    return "\n".join(lines)


_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)\.(?:\s|$)")


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not the one in "e.g.")."""
    return _SENTENCE_END.split(text, maxsplit=1)[0].strip()


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await upgrade_to_head(engine)
        log.info("database is at migration %s", await current_revision(engine))
    finally:
        await engine.dispose()


async def _serve(settings: Settings, role: Role, team: tuple[str, str] | None = None) -> None:
    if role != "all" and not settings.redis_url:
        log.error(
            "--role %s needs REDIS_URL: bot and worker processes share their run queue through Redis. "
            "Set REDIS_URL, or run `incidentfox serve` (role all) for one process without Redis.",
            role,
        )
        sys.exit(2)
    if role == "all":
        settings.worker_processes = chosen_worker_processes(settings)
        if settings.worker_processes and not settings.redis_url:
            log.error(
                "WORKER_PROCESSES=%d needs REDIS_URL: worker processes take their runs from a Redis run "
                "queue. Set REDIS_URL, or WORKER_PROCESSES=0 to investigate in this process.",
                settings.worker_processes,
            )
            sys.exit(2)
    app = IncidentFox(settings, role=role, team=team)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await app.start()
    except QueueUnavailable as exc:
        log.error("cannot start --role %s: %s (REDIS_URL is %s)", role, exc, redacted_url(settings.redis_url))
        await app.stop()
        sys.exit(1)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc.strerror)
        await app.stop()
        sys.exit(1)
    except SecretsUnreadable as exc:
        log.error(
            "cannot start: %s. Set INCIDENTFOX_SECRET_KEY to the key this database was written with "
            "(or restore %s), or point DATABASE_URL at another database.",
            exc,
            settings.data_dir / "secret.key",
        )
        await app.stop()
        sys.exit(1)
    try:
        await stopping.wait()
        log.info("SIGTERM: stopping (running investigations get %.0f s to finish)", app.shutdown_grace_s)
    finally:
        await app.stop()


def chosen_worker_processes(settings: Settings) -> int:
    """``WORKER_PROCESSES``, else one per CPU core when there is a Redis run queue to share, else 0."""
    if settings.worker_processes is not None:
        return settings.worker_processes
    if not settings.redis_url:
        return 0
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


if __name__ == "__main__":
    sys.exit(main())
