"""``python -m bench.fuzz_slack_events [EXAMPLES] [SEED]``: fuzz ``POST /slack/events`` of a live
IncidentFox on loopback; exits non-zero on any 5xx or any traceback in the server's log."""

from __future__ import annotations

import asyncio
import sys
import time

from bench.fuzz_slack_bodies import fuzz_slack_events
from bench.fuzz_target import SIGNING_SECRET, fuzz_target


async def main(examples: int, random_seed: int) -> int:
    async with fuzz_target() as target:
        started = time.monotonic()
        tally = await asyncio.to_thread(
            fuzz_slack_events, target.port, SIGNING_SECRET, examples=examples, random_seed=random_seed
        )
        elapsed = time.monotonic() - started
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(tally.statuses.items()))
    print(
        f"fuzz /slack/events: "
        f"{tally.total} requests in {elapsed:.0f} s (seed {random_seed}); by status {{{statuses}}}"
    )
    print(f"fuzz /slack/events: 5xx answers: {tally.five_xx}; tracebacks in the log: {target.log.tracebacks}")
    for request in tally.server_errors:
        print(f"  5xx for {request.content_type} {request.signature} {request.body[:200]!r}")
    for example in target.log.examples:
        print(f"  traceback: {example}")
    return 1 if tally.five_xx or target.log.tracebacks or tally.total < examples else 0


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    chosen_seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20_260_701
    sys.exit(asyncio.run(main(count, chosen_seed)))
