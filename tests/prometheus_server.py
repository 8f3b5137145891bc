"""A real Prometheus (Debian's ``prometheus`` package) on a free loopback port, for the prometheus
toolset's tests.

Its data dir holds two hours of a checkout incident up to the moment it starts, backfilled with
``promtool tsdb create-blocks-from openmetrics``: ``http_requests_total`` whose 500s jump from 0.1/s
to 6/s forty minutes ago, a checkout pod's ``container_memory_working_set_bytes`` climbing towards its
limit, and ``up`` for checkout (up) and payments (down for the last ten minutes). Backfilling the most
recent hours is safe here because the server starts after the blocks are written (promtool's warning
about overlapping the head block is about a server that is already running). Its rules fire on that
data at once (``evaluation_interval: 1s``), it scrapes itself (so it has metric metadata) and a
``billing-api`` target on a port where nothing listens (so one target is down).

Without the binaries the tests are skipped, or fail with ``INCIDENTFOX_REQUIRE_PROMETHEUS=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
HISTORY_S = 2 * 3600
SAMPLE_EVERY_S = 15
INCIDENT_STARTS_S = 40 * 60
"""How long before the end of the data the checkout 500s jump."""
PAYMENTS_DOWN_S = 10 * 60
CHECKOUT_POD = "checkout-7d9c5b-x2k4p"
MEMORY_LIMIT_BYTES = 512 * 2**20
LEAKED_LABEL = "ghp_PromCanary0Qz7Lw9Hn2Xc4Vb6Nm8As1Df3G"
"""A GitHub token someone put in a label of ``app_build_info``: it must never reach a model."""

RULES = """groups:
  - name: checkout
    rules:
      - alert: CheckoutHighErrorRate
        expr: >-
          sum by (service) (rate(http_requests_total{code="500"}[5m]))
          / sum by (service) (rate(http_requests_total[5m])) > 0.05
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.service }} is failing {{ $value | humanizePercentage }} of requests"
          runbook_url: https://runbooks.example.com/checkout-5xx
      - alert: PaymentsTargetDown
        expr: up{job="payments"} == 0
        for: 1h
        labels:
          severity: ticket
        annotations:
          summary: "payments target {{ $labels.instance }} is not scraped"
      - record: job:up:sum
        expr: sum by (job) (up)
      - record: broken:same_labelset
        expr: label_replace(label_replace(up, "job", "x", "", ""), "instance", "x", "", "")
"""


def require_prometheus() -> None:
    """Skip when Prometheus is missing, unless CI says it must be there (``.ci/run`` installs it)."""
    if Path(PROMETHEUS).exists() and Path(PROMTOOL).exists():
        return
    reason = "Debian's prometheus package (prometheus and promtool) is not installed"
    if os.environ.get("INCIDENTFOX_REQUIRE_PROMETHEUS") == "1":
        pytest.fail(reason + " (INCIDENTFOX_REQUIRE_PROMETHEUS=1)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _series(name: str, labels: str, values: Sequence[tuple[float, float]]) -> list[str]:
    return [f"{name}{{{labels}}} {value:.6g} {at:.3f}" for at, value in values]


def openmetrics(end: float) -> str:
    """Two hours of samples every 15 s up to ``end`` (unix seconds), as OpenMetrics text."""
    times = [end - HISTORY_S + i * SAMPLE_EVERY_S for i in range(HISTORY_S // SAMPLE_EVERY_S + 1)]
    incident = end - INCIDENT_STARTS_S

    def counter(rate_before: float, rate_after: float) -> list[tuple[float, float]]:
        total, out = 0.0, []
        for at in times:
            total += SAMPLE_EVERY_S * (rate_after if at > incident else rate_before)
            out.append((at, total))
        return out

    memory = [(at, 200 * 2**20 + 280 * 2**20 * (at - times[0]) / HISTORY_S) for at in times]
    lines = ["# HELP http_requests Requests served.", "# TYPE http_requests counter"]
    lines += _series("http_requests_total", 'code="200",service="checkout"', counter(50, 48))
    lines += _series("http_requests_total", 'code="500",service="checkout"', counter(0.1, 6))
    lines += _series("http_requests_total", 'code="200",service="payments"', counter(20, 20))
    lines += [
        "# HELP container_memory_working_set_bytes Working set.",
        "# TYPE container_memory_working_set_bytes gauge",
    ]
    labels = f'container="checkout",namespace="prod",pod="{CHECKOUT_POD}"'
    lines += _series("container_memory_working_set_bytes", labels, memory)
    lines += ["# HELP app_build_info The running build.", "# TYPE app_build_info gauge"]
    build = f'deploy_token="{LEAKED_LABEL}",service="checkout",version="2.3.1"'
    lines += _series("app_build_info", build, [(at, 1) for at in times])
    lines += ["# HELP up Whether the target was scraped.", "# TYPE up gauge"]
    lines += _series("up", 'instance="10.0.3.7:8080",job="checkout"', [(at, 1) for at in times])
    payments = [(at, 0 if at > end - PAYMENTS_DOWN_S else 1) for at in times]
    lines += _series("up", 'instance="10.0.4.2:8080",job="payments"', payments)
    return "\n".join([*lines, "# EOF", ""])


def _config(port: int, dead_port: int) -> str:
    return f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: billing-api
    static_configs: [{{targets: ["127.0.0.1:{dead_port}"], labels: {{team: billing}}}}]
"""


@dataclass
class PrometheusServer:
    url: str
    data_ends_at: float
    """Unix time of the last backfilled sample."""
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"Prometheus did not become ready at {url}:\n{log_path.read_text(errors='replace')[-4000:]}")


@contextmanager
def running_prometheus(workdir: Path) -> Iterator[PrometheusServer]:
    """Backfill, configure and start Prometheus in ``workdir``; stop it afterwards."""
    require_prometheus()
    data_dir, log_path = workdir / "data", workdir / "prometheus.log"
    end = time.time() - 1
    (workdir / "history.om").write_text(openmetrics(end))
    backfill = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(workdir / "history.om"), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if backfill.returncode != 0:
        pytest.fail(f"promtool could not backfill:\n{backfill.stdout}\n{backfill.stderr}")
    port = free_port()
    (workdir / "rules.yml").write_text(RULES)
    (workdir / "prometheus.yml").write_text(_config(port, free_port()))
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        _wait_ready(url, process, log_path)
        yield PrometheusServer(url=url, data_ends_at=end, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
