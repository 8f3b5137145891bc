"""A realistic GitHub Actions job log (timestamps, ``##[group]`` headers, an echoed script that prints
"Error:" itself) shared by the toolset's tests and the first-error tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

RUN_START = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)


def log_time(seconds: float) -> str:
    at = RUN_START + timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond:06d}0Z"


def actions_log() -> str:
    """A job log as GitHub serves it: the runner preamble, then each step's ##[group] header with the
    echoed script (which prints "Error:" itself), then its output. The job starts 5 s after the run;
    steps: Set up job 5-7 s, Checkout 7-9 s, Run tests 9-19 s, Complete job 19-20 s."""
    lines = [
        (5.1, "Current runner version: '2.321.0'"),
        (5.2, "##[group]Operating System"),
        (5.2, "Ubuntu"),
        (5.3, "##[endgroup]"),
        (7.1, "##[group]Run actions/checkout@v4"),
        (7.1, "with:"),
        (7.2, "##[endgroup]"),
        (7.5, "Syncing repository: acme/shop"),
        (9.1, "##[group]Run python -m pytest -q"),
        (9.1, 'python -m pytest -q || { echo "Error: tests failed"; exit 1; }'),
        (9.1, "shell: /usr/bin/bash -e {0}"),
        (9.2, "##[endgroup]"),
        (10.0, "============================= test session starts =============================="),
        (10.1, "collected 42 items"),
        (12.0, "tests/test_checkout.py ..........F"),
        (12.1, "=================================== FAILURES ==================================="),
        (12.1, "____________________________ test_charge_times_out _____________________________"),
        (12.2, "Traceback (most recent call last):"),
        (12.2, '  File "shop/payments.py", line 88, in charge'),
        (12.2, "    response = client.post(url, timeout=settings.payment.timeout_s)"),
        (
            12.3,
            "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='psp.example.com'): Read timed out.",
        ),
        (12.4, "FAILED tests/test_checkout.py::test_charge_times_out - requests.exceptions.ReadTimeout"),
        (12.5, "\x1b[31m1 failed\x1b[0m, 41 passed in 2.51s"),
        (12.6, "Error: tests failed"),
        (12.7, "##[error]Process completed with exit code 1."),
        (19.1, "Cleaning up orphan processes"),
    ]
    return "".join(f"{log_time(at)} {text}\n" for at, text in lines)
