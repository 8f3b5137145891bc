"""A seeded few hundred of the ``make fuzz`` deliveries on each webhook route: no 5xx, no traceback in
the log (the investigations they start included), and a good share of them past the signature check,
so the parsers and the handlers are exercised and not only the 401 path."""

from __future__ import annotations

import asyncio

import pytest

from bench.fuzz_target import GITHUB_REPO, fuzz_target
from bench.fuzz_webhook_bodies import ROUTES, Route
from bench.fuzz_webhook_sending import describe, fuzz_webhook_route, github_route_exists
from bench.fuzz_webhooks import CLAIMS, SECRETS

EXAMPLES = 250
SEED = 2
"""Generation depends on the seed alone (``bench/fuzz_seeding.py``); this seed's 250 deliveries reach
past the signature check on every route often enough to exercise the handlers."""


@pytest.mark.parametrize("route", ROUTES)
async def test_fuzzed_webhook_deliveries_never_get_a_5xx_or_log_a_traceback(route: Route) -> None:
    async with fuzz_target(investigate=True) as target:
        if route == "github" and not await asyncio.to_thread(
            github_route_exists, target.port, SECRETS, GITHUB_REPO
        ):
            pytest.skip("POST /webhooks/github is not served by this build")
        tally = await asyncio.to_thread(
            fuzz_webhook_route,
            target.port,
            route,
            SECRETS,
            CLAIMS,
            examples=EXAMPLES,
            random_seed=SEED,
        )
        settled = await target.settle(60)
        runs = await target.runs_by_status()
    assert tally.total == EXAMPLES
    assert tally.five_xx == 0, [describe(request) for request in tally.server_errors]
    assert target.log.tracebacks == 0, target.log.examples
    assert settled, f"the runs the deliveries started did not finish: {runs}"
    assert tally.past_signature >= EXAMPLES // 10, tally.answers
    assert tally.statuses[401] >= EXAMPLES // 100, tally.statuses
    assert tally.answers["400 malformed_json"] >= EXAMPLES // 10, tally.answers
    assert tally.answers["400 bad_payload"] >= EXAMPLES // 20, tally.answers
