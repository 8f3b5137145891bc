"""Routing lookup and effective-config reads at 10 and at 10,000 teams, with 100,000 claimed identifiers.

    .venv/bin/python -m bench.routing [--database-url URL] [--lookups N]

Both worlds hold 100,000 claims (10 teams x 10,000 channels, or 10,000 teams x 10 channels) so that
the comparison isolates the number of teams. Uncached lookups hit the indexed table; cached lookups
are answered in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert

from incidentfox.config.cache import EffectiveConfigCache
from incidentfox.config.models import Node, NodeConfig, RoutingClaim
from incidentfox.config.routing import SLACK_CHANNEL, RoutingIndex
from incidentfox.config.secrets import SecretBox
from incidentfox.config.service import ConfigService
from incidentfox.db.engine import create_engine, create_session_factory
from incidentfox.db.migrate import upgrade_to_head

TOTAL_CLAIMS = 100_000
ORG = "bench"


@dataclass
class WorldResult:
    teams: int
    lookup_uncached_us: float
    lookup_cached_per_s: float
    effective_uncached_us: float
    effective_cached_per_s: float


def _channel(i: int) -> str:
    return f"C{i:09d}"


async def _populate(database_url: str, teams: int) -> None:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    per_team = TOTAL_CLAIMS // teams
    units = max(1, teams // 100)
    nodes = [{"org_id": ORG, "node_id": ORG, "parent_id": None, "kind": "org", "name": ORG, "path": ORG}]
    nodes += [
        {
            "org_id": ORG,
            "node_id": f"u{u}",
            "parent_id": ORG,
            "kind": "unit",
            "name": f"u{u}",
            "path": f"{ORG}/u{u}",
        }
        for u in range(units)
    ]
    nodes += [
        {
            "org_id": ORG,
            "node_id": f"t{t}",
            "parent_id": f"u{t % units}",
            "kind": "team",
            "name": f"t{t}",
            "path": f"{ORG}/u{t % units}/t{t}",
        }
        for t in range(teams)
    ]
    configs = [
        {
            "org_id": n["org_id"],
            "node_id": n["node_id"],
            "version": 1,
            "updated_by": "bench",
            "document": {
                "agent": {"timeout_s": 300},
                "labels": {"node": n["node_id"]},
                "integrations": {"kubernetes": {"namespace": n["node_id"]}},
            },
        }
        for n in nodes
    ]
    claims = [
        {
            "kind": SLACK_CHANNEL,
            "identifier": _channel(t * per_team + i),
            "org_id": ORG,
            "team_node_id": f"t{t}",
        }
        for t in range(teams)
        for i in range(per_team)
    ]
    async with engine.begin() as connection:
        for table, rows in ((Node, nodes), (NodeConfig, configs), (RoutingClaim, claims)):
            for start in range(0, len(rows), 5000):
                await connection.execute(insert(table), rows[start : start + 5000])
    await engine.dispose()


async def _median_us(operation: Callable[[], Awaitable[object]], samples: int) -> float:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        await operation()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


async def _rate(operation: Callable[[], Awaitable[object]], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await operation()
    return count / (time.perf_counter() - started)


async def _measure(database_url: str, teams: int, lookups: int) -> WorldResult:
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    routing = RoutingIndex(sessions)
    service = ConfigService(sessions, SecretBox(b"bench-key"), routing, EffectiveConfigCache())
    rng = random.Random(7)
    identifiers = [_channel(rng.randrange(TOTAL_CLAIMS)) for _ in range(lookups)]
    team_ids = [f"t{rng.randrange(teams)}" for _ in range(lookups)]
    it = iter(range(10**9))

    async def uncached_lookup() -> object:
        routing.invalidate_all()
        return await routing.lookup_one(SLACK_CHANNEL, identifiers[next(it) % lookups])

    async def cached_lookup() -> object:
        return await routing.lookup(slack_channel_id=identifiers[next(it) % 1000])

    async def uncached_effective() -> object:
        service.cache.clear()
        return await service.effective_config(ORG, team_ids[next(it) % lookups])

    async def cached_effective() -> object:
        return await service.effective_config(ORG, team_ids[next(it) % 100])

    for operation in (uncached_lookup, uncached_effective):
        await _median_us(operation, 50)
    lookup_uncached = await _median_us(uncached_lookup, lookups)
    effective_uncached = await _median_us(uncached_effective, lookups)
    for i in range(1000):
        await routing.lookup(slack_channel_id=identifiers[i])
    for i in range(100):
        await service.effective_config(ORG, team_ids[i])
    lookup_cached = await _rate(cached_lookup, 200_000)
    effective_cached = await _rate(cached_effective, 50_000)
    await engine.dispose()
    return WorldResult(teams, lookup_uncached, lookup_cached, effective_uncached, effective_cached)


async def _run(database_url: str | None, lookups: int) -> list[WorldResult]:
    results = []
    for teams in (10, 10_000):
        with tempfile.TemporaryDirectory() as tmp:
            url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            if database_url:
                await _reset_postgres(database_url)
            await _populate(url, teams)
            results.append(await _measure(url, teams, lookups))
    return results


async def _reset_postgres(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        await connection.exec_driver_sql("CREATE SCHEMA public")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", help="a scratch database (its public schema is dropped); default SQLite"
    )
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    results = asyncio.run(_run(args.database_url, args.lookups))
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"# routing benchmark: {backend}, {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(
        "| teams | lookup uncached (median) | cached lookups/s | effective config uncached (median) "
        "| cached effective reads/s |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.teams:,} | {r.lookup_uncached_us:.0f} µs | {r.lookup_cached_per_s:,.0f} | "
            f"{r.effective_uncached_us:.0f} µs | {r.effective_cached_per_s:,.0f} |"
        )
    small, large = results
    print(
        "\nratio 10,000 / 10 teams: "
        f"uncached lookup {large.lookup_uncached_us / small.lookup_uncached_us:.2f}x, "
        f"cached lookup {small.lookup_cached_per_s / large.lookup_cached_per_s:.2f}x, "
        f"uncached effective config {large.effective_uncached_us / small.effective_uncached_us:.2f}x"
    )


if __name__ == "__main__":
    main()
