"""A seeded few hundred of the ``make fuzz`` bodies on ``POST /slack/events``: no 5xx, no traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bench.fuzz_slack_bodies import fuzz_slack_events
from tests.slack_world import SIGNING_SECRET, world


async def test_fuzzed_slack_bodies_never_get_a_5xx_or_log_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with world(tmp_path) as fox:
        assert fox.fox.port is not None
        with caplog.at_level(logging.INFO):
            tally = await asyncio.to_thread(
                fuzz_slack_events, fox.fox.port, SIGNING_SECRET, examples=300, random_seed=20260701
            )
    assert tally.total == 300
    assert tally.five_xx == 0, tally.server_errors
    assert tally.statuses[400] > 50 and tally.statuses[401] > 50, tally.statuses
    assert not [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
