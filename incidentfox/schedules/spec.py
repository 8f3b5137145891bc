"""What a team's ``schedules.{id}`` config means, and why a value is refused.

A schedule is ``{cron, timezone, channel_id, prompt, enabled}``: a five-field cron expression (or a
macro such as ``@weekly``) read in an IANA time zone (default UTC), the channel the report opens its
thread in (default: the team's first claimed channel), the question the investigation answers
(default: a health check) and an on/off switch. Values are checked on every config write that
changes them (``require_valid_schedules``), so a bad cron or time zone never reaches the scheduler;
a schedule that is still incomplete in a team's effective config (a unit set the cron, no channel
is known) is reported with its reason instead of being run (``schedules_of``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from incidentfox.errors import BadRequest

DEFAULT_TIMEZONE = "UTC"
DEFAULT_PROMPT = (
    "Scheduled health check: review this team's namespaces and workloads, its firing alerts and open "
    "incidents, and its error budgets. Report what is unhealthy or trending the wrong way, with the "
    "evidence for each, and say plainly when everything looks healthy."
)
MIN_INTERVAL = timedelta(minutes=10)
"""A scheduled report is a whole investigation: firing more often than this is refused."""
PROMPT_MAX = 2000
SCHEDULE_KEYS = ("cron", "timezone", "channel_id", "prompt", "enabled")
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_SCHEDULE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,30}")
_INTERVAL_SAMPLES = 100
_CRON_HELP = (
    'five fields (minute hour day-of-month month day-of-week), e.g. "0 9 * * 1" for Mondays at 09:00, '
    "or a macro such as @daily or @weekly"
)


class ScheduleError(ValueError):
    """Why one schedule value cannot be used, in words that name the key."""


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """One complete schedule of a team, ready to compute its slots."""

    schedule_id: str
    cron: str
    """Normalised: five fields, macros expanded."""
    timezone: str
    channel_id: str
    prompt: str
    enabled: bool = True

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def fingerprint(self) -> str:
        """Changes when the times change (cron or zone): a changed schedule starts afresh."""
        return hashlib.sha256(f"{self.cron}|{self.timezone}".encode()).hexdigest()[:12]

    def latest_slot(self, now: datetime) -> datetime:
        """The newest time (UTC) at or before ``now`` that the schedule fires."""
        local = now.astimezone(self.zone).replace(microsecond=0) + timedelta(microseconds=999_999)
        return next(CronSim(self.cron, local, reverse=True)).astimezone(UTC)

    def next_slot(self, now: datetime) -> datetime:
        """The first time after ``now`` that the schedule fires, in the schedule's own time zone."""
        return next(CronSim(self.cron, now.astimezone(self.zone)))

    def describe(self) -> str:
        """``At 09:00 on Monday`` (cronsim's own wording)."""
        return CronSim(self.cron, datetime.now(self.zone)).explain()


@dataclass(frozen=True, slots=True)
class ScheduleProblem:
    """A schedule in the effective config that cannot run, and why."""

    schedule_id: str
    reason: str


def parse_cron(value: Any, *, key: str) -> str:
    """The normalised expression, or ``ScheduleError`` with the reason."""
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError(f"`{key}` must be a cron expression: {_CRON_HELP}")
    expression = " ".join(value.split())
    expression = MACROS.get(expression.lower(), expression)
    if expression.startswith("@"):
        raise ScheduleError(f"`{key}` uses an unknown macro {str(value)[:100]!r}; use {', '.join(MACROS)}")
    if len(expression.split()) != 5:
        raise ScheduleError(
            f"`{key}` {str(value)[:100]!r} has {len(expression.split())} fields; use {_CRON_HELP}"
        )
    problem = _cron_problem(expression)
    if problem is not None:
        raise ScheduleError(f"`{key}` {str(value)[:100]!r} {problem}")
    return expression


@functools.lru_cache(maxsize=4096)
def _cron_problem(expression: str) -> str | None:
    """What is wrong with a five-field expression, if anything (cached: the scheduler asks each tick)."""
    try:
        fires = CronSim(expression, datetime.now(UTC))
        times = [next(fires) for _ in range(_INTERVAL_SAMPLES)]
    except (CronSimError, ValueError, StopIteration) as exc:
        return f"is not a valid cron expression ({exc}); use {_CRON_HELP}"
    shortest = min(b - a for a, b in itertools.pairwise(times))
    if shortest >= MIN_INTERVAL:
        return None
    minutes = int(shortest.total_seconds() // 60) or 1
    return (
        f"fires every {minutes} minute{'s' if minutes > 1 else ''}; a scheduled report runs a whole "
        f"investigation, so it may fire at most every {int(MIN_INTERVAL.total_seconds() // 60)} minutes"
    )


def parse_timezone(value: Any, *, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ScheduleError(f'`{key}` must be an IANA time zone name such as "Europe/Berlin" or "UTC"')
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(
            f'`{key}` {value[:60]!r} is not a known time zone; use an IANA name such as "Europe/Berlin", '
            '"America/New_York" or "UTC"'
        ) from exc
    return value


def _check_field(schedule_id: str, name: str, value: Any) -> None:
    key = f"schedules.{schedule_id}.{name}"
    if value is None:
        return
    if name == "cron":
        parse_cron(value, key=key)
    elif name == "timezone":
        parse_timezone(value, key=key)
    elif name == "channel_id":
        if not isinstance(value, str) or not _CHANNEL_ID.fullmatch(value):
            raise ScheduleError(f"`{key}` must be a Slack channel id such as C0123ABCD")
    elif name == "prompt":
        if not isinstance(value, str) or not value.strip() or len(value) > PROMPT_MAX:
            raise ScheduleError(f"`{key}` must be a non-empty question of at most {PROMPT_MAX} characters")
    elif name == "enabled":
        if not isinstance(value, bool):
            raise ScheduleError(f"`{key}` must be true or false")
    else:
        raise ScheduleError(f"`{key}` is not a schedule setting; use {', '.join(SCHEDULE_KEYS)}")


def check_schedule(schedule_id: str, entry: Any) -> None:
    """``ScheduleError`` when one entry of a node's own ``schedules`` cannot be stored.

    Only the fields present are checked: a unit may set the cron and its teams the channel. ``None``
    (in a PUT: delete the inherited schedule) is always allowed."""
    if not _SCHEDULE_ID.fullmatch(schedule_id):
        raise ScheduleError(
            f"schedule id {schedule_id[:70]!r} must be 1-63 lowercase letters, digits, '-' or '_', starting "
            "with a letter or digit"
        )
    if entry is None:
        return
    if not isinstance(entry, Mapping):
        raise ScheduleError(f"`schedules.{schedule_id}` must be an object with {', '.join(SCHEDULE_KEYS)}")
    for name, value in entry.items():
        _check_field(schedule_id, str(name), value)


def require_valid_schedules(proposed: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Refuse (``BadRequest``, code ``invalid_schedule``) a config write whose new or changed schedules
    are invalid. Schedules sent back unchanged are not checked again."""
    schedules = proposed.get("schedules")
    if schedules is None:
        return
    if not isinstance(schedules, Mapping):
        raise BadRequest("`schedules` must be an object of schedules by id", code="invalid_schedule")
    before = current.get("schedules")
    before = before if isinstance(before, Mapping) else {}
    for schedule_id, entry in schedules.items():
        if schedule_id in before and before[schedule_id] == entry:
            continue
        try:
            check_schedule(str(schedule_id), entry)
        except ScheduleError as exc:
            raise BadRequest(
                str(exc), code="invalid_schedule", details={"schedule": str(schedule_id)}
            ) from exc


def default_channel(config: Mapping[str, Any]) -> str | None:
    routing = config.get("routing")
    claimed = routing.get("slack_channel_ids") if isinstance(routing, Mapping) else None
    if isinstance(claimed, list) and claimed and isinstance(claimed[0], str):
        return claimed[0]
    return None


def spec_of(schedule_id: str, entry: Any, config: Mapping[str, Any]) -> ScheduleSpec:
    """The complete schedule from a team's effective config, or ``ScheduleError`` with the reason."""
    check_schedule(schedule_id, entry)
    if not isinstance(entry, Mapping):
        raise ScheduleError(f"`schedules.{schedule_id}` is empty")
    key = f"schedules.{schedule_id}"
    if entry.get("cron") is None:
        raise ScheduleError(f"`{key}.cron` is not set")
    channel = entry.get("channel_id") or default_channel(config)
    if not channel:
        raise ScheduleError(
            f"no channel for `{key}`: set `{key}.channel_id` or claim a channel in "
            "`routing.slack_channel_ids`"
        )
    return ScheduleSpec(
        schedule_id=schedule_id,
        cron=parse_cron(entry["cron"], key=f"{key}.cron"),
        timezone=parse_timezone(entry.get("timezone") or DEFAULT_TIMEZONE, key=f"{key}.timezone"),
        channel_id=str(channel),
        prompt=str(entry.get("prompt") or DEFAULT_PROMPT),
        enabled=entry.get("enabled") is not False,
    )


def schedules_of(config: Mapping[str, Any]) -> list[ScheduleSpec | ScheduleProblem]:
    """Every schedule of a team's effective config, by id: complete ones and those that cannot run."""
    schedules = config.get("schedules")
    if not isinstance(schedules, Mapping):
        return []
    found: list[ScheduleSpec | ScheduleProblem] = []
    for schedule_id in sorted(schedules):
        try:
            found.append(spec_of(str(schedule_id), schedules[schedule_id], config))
        except ScheduleError as exc:
            found.append(ScheduleProblem(str(schedule_id), str(exc)))
    return found
