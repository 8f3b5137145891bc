"""Finding a failed job's decisive log line: the failed step's specific error first, then test-failure
markers, then the exit code; an echoed script that prints "Error:" itself does not count."""

from __future__ import annotations

from datetime import timedelta

from incidentfox.agents.toolsets.github_logs import StepTiming, first_error
from tests.github_actions_log import RUN_START, actions_log


def test_first_error_prefers_the_failed_steps_specific_error() -> None:
    steps = [
        StepTiming(
            "Set up job", 1, "success", RUN_START + timedelta(seconds=5), RUN_START + timedelta(seconds=7)
        ),
        StepTiming(
            "Checkout", 2, "success", RUN_START + timedelta(seconds=7), RUN_START + timedelta(seconds=9)
        ),
        StepTiming(
            "Run tests", 3, "failure", RUN_START + timedelta(seconds=9), RUN_START + timedelta(seconds=19)
        ),
    ]
    found = first_error(actions_log(), steps)
    assert found is not None
    assert (found.step, found.step_number, found.line_number) == ("Run tests", 3, 18)
    assert found.excerpt[found.line_number - found.excerpt_start] == "Traceback (most recent call last):"


def test_first_error_without_step_times_uses_the_group_header() -> None:
    log = "\n".join(
        [
            "##[group]Run go test ./...",
            "go test ./...",
            "##[endgroup]",
            "ok  \tshop/cart\t0.012s",
            "panic: runtime error: invalid memory address or nil pointer dereference",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]",
            "FAIL\tshop/payments\t0.031s",
            "##[error]Process completed with exit code 1.",
        ]
    )
    found = first_error(log)
    assert found is not None
    assert (found.step, found.line) == (
        "Run go test ./...",
        "panic: runtime error: invalid memory address or nil pointer dereference",
    )


def test_first_error_falls_back_to_the_exit_code_and_to_nothing() -> None:
    only_exit = (
        "##[group]Run ./deploy.sh\n./deploy.sh\n##[endgroup]\ndeploying\n"
        "##[error]Process completed with exit code 3.\n"
    )
    found = first_error(only_exit)
    assert found is not None and found.line == "##[error]Process completed with exit code 3."
    assert (
        first_error(
            "##[group]Run echo 'Error: not really'\necho 'Error: not really'\n##[endgroup]\nall good\n"
        )
        is None
    )
