"""Runs on ``/metrics``: a mention counts one run started and one finished, by source and tenancy."""

from __future__ import annotations

from pathlib import Path

from tests.metric_samples import sample
from tests.slack_world import world


async def test_a_mention_counts_one_run_started_and_one_succeeded(tmp_path: Path) -> None:
    labels = {"source": "slack", "tenancy": "shared"}
    started = sample("incidentfox_runs_started_total", **labels)
    succeeded = sample("incidentfox_runs_total", status="succeeded", **labels)
    async with world(tmp_path) as w:
        mention = w.mention("why is checkout crashlooping?")
        assert (await w.post_event(w.slack.make_event_callback(mention, event_id="EvR1"))).status == 200
        await w.final_update(mention["ts"], "DEPLOY_ENV is undefined")
        [run] = await w.wait_runs_finished(1)
    assert run.status == "succeeded"
    assert sample("incidentfox_runs_started_total", **labels) - started == 1
    assert sample("incidentfox_runs_total", status="succeeded", **labels) - succeeded == 1
