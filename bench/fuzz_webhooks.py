"""``python -m bench.fuzz_webhooks [EXAMPLES] [SEED]``: fuzz the webhook routes of a live IncidentFox on
loopback, EXAMPLES deliveries per route (default 10,000): ``POST /webhooks/pagerduty``,
``POST /webhooks/incidentio/{org}/{team}`` and ``POST /webhooks/github``.

The target (``bench/fuzz_target.py``) runs with a worker and a Kubernetes emulator, so the pages and
incidents that get through start real investigations whose root messages and thread lines render
the fuzzed fields. A route that answers a signed ``ping`` with 404 has not landed yet: it is
reported as skipped and the others are still fuzzed. After the last route, the runs and the owed
thread updates are given time to finish, so that what they log is counted too. Exits non-zero on any
5xx, any traceback in the server's log, or fewer answers than deliveries.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

from bench.fuzz_target import (
    GITHUB_REPO,
    GITHUB_SECRET,
    INCIDENTIO_SECRET,
    ORG,
    PAGERDUTY_SECRET,
    PAGERDUTY_SERVICE,
    TEAM,
    FuzzTarget,
    fuzz_target,
)
from bench.fuzz_webhook_bodies import ROUTES, Claims, Route
from bench.fuzz_webhook_sending import (
    WebhookSecrets,
    WebhookTally,
    describe,
    fuzz_webhook_route,
    github_route_exists,
)

SECRETS = WebhookSecrets(pagerduty=PAGERDUTY_SECRET, github=GITHUB_SECRET, incidentio=INCIDENTIO_SECRET)
CLAIMS = Claims(service=PAGERDUTY_SERVICE, repo=GITHUB_REPO, org=ORG, team=TEAM)
LABELS: dict[Route, str] = {
    "pagerduty": "POST /webhooks/pagerduty",
    "incidentio": "POST /webhooks/incidentio/{org}/{team}",
    "github": "POST /webhooks/github",
}
SETTLE_TIMEOUT_S = 600.0


@dataclass
class RouteResult:
    route: Route
    tally: WebhookTally | None
    """``None``: the route is not served (skipped)."""
    wall_s: float = 0.0
    tracebacks: int = 0


async def fuzz_routes(
    target: FuzzTarget, examples: int, random_seed: int, routes: tuple[Route, ...] = ROUTES
) -> list[RouteResult]:
    """Fuzz each of ``routes`` in turn (GitHub only if served); tracebacks are counted per route."""
    results: list[RouteResult] = []
    github_served = await asyncio.to_thread(github_route_exists, target.port, SECRETS, GITHUB_REPO)
    for route in routes:
        if route == "github" and not github_served:
            results.append(RouteResult(route, None))
            continue
        before = target.log.tracebacks
        started = time.monotonic()
        tally = await asyncio.to_thread(
            fuzz_webhook_route,
            target.port,
            route,
            SECRETS,
            CLAIMS,
            examples=examples,
            random_seed=random_seed,
        )
        results.append(RouteResult(route, tally, time.monotonic() - started, target.log.tracebacks - before))
    return results


def _counts(counter: dict[int, int] | dict[str, int]) -> str:
    return ", ".join(f"{key}: {count}" for key, count in sorted(counter.items(), key=lambda kv: str(kv[0])))


def report(results: list[RouteResult], random_seed: int) -> int:
    """Print the figures; the number of failed checks (5xx, tracebacks, missing answers)."""
    failures = 0
    for result in results:
        label = LABELS[result.route]
        tally = result.tally
        if tally is None:
            print(f"fuzz {label}: skipped (the route answers 404: not served by this build)")
            continue
        print(
            f"fuzz {label}: {tally.total} requests in {result.wall_s:.0f} s (seed {random_seed}); "
            f"by status {{{_counts(tally.statuses)}}}"
        )
        print(f"fuzz {label}: by answer {{{_counts(tally.answers)}}}")
        print(
            f"fuzz {label}: past the signature check: {tally.past_signature}; 5xx answers: {tally.five_xx}; "
            f"tracebacks in the log while fuzzing it: {result.tracebacks}"
        )
        for request in tally.server_errors:
            print(f"  5xx for {describe(request)}")
        failures += tally.five_xx + result.tracebacks
    return failures


async def main(examples: int, random_seed: int) -> int:
    started = time.monotonic()
    async with fuzz_target(investigate=True) as target:
        results = await fuzz_routes(target, examples, random_seed)
        before = target.log.tracebacks
        settled = await target.settle(SETTLE_TIMEOUT_S)
        runs = await target.runs_by_status()
        after_settling = target.log.tracebacks - before
    failures = report(results, random_seed)
    print(
        f"fuzz webhooks: runs started by the fuzzed deliveries, by status {{{_counts(dict(runs))}}}; "
        f"{'all finished' if settled else f'not all finished within {SETTLE_TIMEOUT_S:.0f} s'}; "
        f"tracebacks in the log while they finished: {after_settling}"
    )
    print(
        f"fuzz webhooks: total tracebacks in the log: {target.log.tracebacks} "
        f"(of {target.log.records} records); wall {time.monotonic() - started:.0f} s"
    )
    for kind, count in target.log.kinds.most_common():
        print(f"  {count} traceback(s): {kind}")
    for example in target.log.examples:
        print(f"  traceback: {example}")
    short = any(r.tally is not None and r.tally.total < examples for r in results)
    return 1 if failures or after_settling or target.log.tracebacks or short or not settled else 0


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    chosen_seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20_260_701
    sys.exit(asyncio.run(main(count, chosen_seed)))
