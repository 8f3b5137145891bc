"""``python -m bench.fuzz_config_api [EXAMPLES_PER_OPERATION]``: schemathesis against
``/api/v1/openapi.json`` of a live IncidentFox on loopback, with the global admin token. Counts every
answer on the server side (``/metrics``); exits non-zero on any 5xx or traceback in the server's log."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections import Counter

import aiohttp

from bench.fuzz_target import ADMIN_TOKEN, fuzz_target

_SAMPLE = re.compile(r"^incidentfox_http_requests_total\{(?P<labels>.*)\} (?P<value>[0-9.e+]+)$", re.M)
_STATUS = re.compile(r'status="(\d+)"')


async def answers_by_status(port: int) -> Counter[int]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    counts: Counter[int] = Counter()
    for match in _SAMPLE.finditer(text):
        labels = match["labels"]
        status = _STATUS.search(labels)
        if status and 'route="/metrics"' not in labels:
            counts[int(status[1])] += int(float(match["value"]))
    return counts


async def main(examples: int, random_seed: int) -> int:
    async with fuzz_target() as target:
        started = time.monotonic()
        command = [
            sys.executable, "-m", "schemathesis.cli", "run",
            f"http://127.0.0.1:{target.port}/api/v1/openapi.json",
            "--url", f"http://127.0.0.1:{target.port}",
            "-H", f"Authorization: Bearer {ADMIN_TOKEN}",
            "--checks", "not_a_server_error",
            "--max-examples", str(examples),
            "--seed", str(random_seed),
            "--workers", "1",
            "--continue-on-failure",
            "--no-shrink",
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        elapsed = time.monotonic() - started
        counts = await answers_by_status(target.port)
    total, five_xx = sum(counts.values()), sum(n for status, n in counts.items() if status >= 500)
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(counts.items()))
    print(output.decode(errors="replace")[-1500:])
    print(
        f"fuzz /api/v1 (schemathesis): "
        f"{total} requests in {elapsed:.0f} s (seed {random_seed}); by status {{{statuses}}}"
    )
    print(
        f"fuzz /api/v1 (schemathesis): 5xx answers: {five_xx}; tracebacks in the log: {target.log.tracebacks}"
    )
    for example in target.log.examples:
        print(f"  traceback: {example}")
    failed = five_xx or target.log.tracebacks or process.returncode != 0 or total < 10_000
    return 1 if failed else 0


if __name__ == "__main__":
    per_operation = int(sys.argv[1]) if len(sys.argv) > 1 else 700
    chosen_seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20_260_701
    sys.exit(asyncio.run(main(per_operation, chosen_seed)))
