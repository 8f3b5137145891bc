"""The report of ``bench/worker.py``: per-stage timings, the edit rate, memory, goals met or not."""

from __future__ import annotations

import itertools
import os
import platform
import re
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.harness import ServerProcess
    from bench.worker import Outcome, Results, ScriptedModel


def steps() -> tuple[str, ...]:
    """The scripted conversation's model calls, in order (defined beside the script in bench.worker)."""
    from bench.worker import STEPS

    return STEPS


WALL_RATIO_GOAL = 1.3
PEAK_RSS_GOAL_MB = 400.0
EDIT_WINDOW_S = 1.0
EDIT_JITTER_S = 0.05

EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Exhausted)\b.*")
LOG_LINE_PREFIX = re.compile(r"^\S+ \S+ (ERROR|WARNING) (\S+) (.*?)(run_id=\S+.*)?$")


def log_notes(fox: ServerProcess) -> list[str]:
    """IncidentFox's ERROR/WARNING log lines and exception messages, counted by kind (ids dropped)."""
    kinds: Counter[str] = Counter()
    for line in fox.log_lines():
        logged = LOG_LINE_PREFIX.match(line)
        if logged is not None:
            kinds[f"{logged.group(1)} {logged.group(2)}: {logged.group(3).strip()[:120]}"] += 1
        elif EXCEPTION_LINE.match(line):
            kinds[f"exception {line[:160]}"] += 1
    return [f"IncidentFox log: {count}× {kind}" for kind, count in kinds.most_common(10)]


# -- report ------------------------------------------------------------------------------------------


def _pct(samples: Sequence[float], pct: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def _s(value: float) -> str:
    return f"{value:.2f} s"


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _stage_gaps(outcome: Outcome, model: ScriptedModel) -> dict[str, float]:
    """Seconds spent in each stage of one run, from what the emulators recorded."""
    mention = outcome.mention
    points: list[tuple[str, float | None]] = [("sent", mention.sent), ("ack", mention.acked)]
    points.append(('"Investigating…" posted', outcome.posted.at if outcome.posted else None))
    arrivals = model.arrivals.get(mention.run, {})
    points.extend((f"model: {step} request", arrivals.get(step)) for step in steps())
    points.append(("final RCA chat.update", outcome.final.at if outcome.final else None))
    gaps: dict[str, float] = {}
    previous_name, previous_at = points[0]
    for name, at in points[1:]:
        if at is None or previous_at is None:
            return {}
        gaps[f"{previous_name} → {name}"] = at - previous_at
        previous_name, previous_at = name, at
    return gaps


def _max_edits_per_window(edits: Sequence[float], window: float) -> int:
    ordered = sorted(edits)
    most, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def _machine() -> tuple[str, str]:
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
        with open("/proc/meminfo", encoding="utf-8") as info:
            memory = next(
                (f"{int(line.split()[1]) / 1024**2:.1f} GB" for line in info if "MemTotal" in line), ""
            )
    except OSError:
        pass
    return cpu, memory


def report(r: Results) -> None:
    args = r.args
    print(f"# Worker benchmark (`bench/worker.py`), {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print()
    cpu, memory = _machine()
    print("| date | machine | CPU | nproc | RAM | Python | OS |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {time.strftime('%Y-%m-%d')} | {platform.machine()} | {cpu} | {os.cpu_count()} | {memory} | "
        f"{platform.python_version()} | {platform.platform(terse=True)} |"
    )
    print()
    print(
        f"Setup: loopback; load client and the Slack, Kubernetes (crashloop) and OpenAI emulators in one "
        f'process, IncidentFox (`role="all"`, SQLite, `worker_concurrency={args.runs}`, '
        f"`update_interval=1.0`) in its own. Every run: analyzers, then 4 model calls "
        f"({', '.join(steps())}), each answered after {args.model_delay:g} s, one `pod_logs` call to the "
        f"Kubernetes emulator, live `chat.update`s, final RCA. Ideal = median of {len(r.ideal)} single "
        f"runs alone (after 1 warm-up run); burst = {args.runs} mentions on distinct threads sent at once "
        f"over {args.send_concurrency} connections."
    )
    print()
    ideal_times = [o.final.at - o.mention.sent for o in r.ideal if o.final is not None]
    ideal_s = statistics.median(ideal_times) if ideal_times else float("nan")
    done = [o for o in r.burst if o.final is not None]
    wall_s = max(o.final.at for o in done if o.final) - r.burst_started if done else float("nan")
    ratio = wall_s / ideal_s
    peak_kb = r.rss_after_kb["VmHWM"]
    per_run = [o.final.at - o.mention.sent for o in done if o.final]
    send_s = max(o.mention.sent for o in r.burst) - r.burst_started
    acked = [o.mention.acked - o.mention.sent for o in r.burst if o.mention.acked is not None]
    print(f"### Burst of {args.runs} runs")
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| runs (N) | {args.runs} |")
    print(
        f"| ideal wall time (single run alone; {len(ideal_times)} runs: "
        f"{', '.join(f'{t:.2f}' for t in ideal_times)} s) | {_s(ideal_s)} |"
    )
    print(f"| wall time, first send → last final RCA | {_s(wall_s)} |")
    print(f"| ratio wall / ideal | {ratio:.2f}× |")
    print(
        f"| per-run send → final RCA p50 / p95 / max | {_s(_pct(per_run, 50))} / {_s(_pct(per_run, 95))} / "
        f"{_s(max(per_run, default=float('nan')))} |"
    )
    print(f"| time to send all {args.runs} mentions (last send started) | {_s(send_s)} |")
    print(
        f"| ack p50 / max | {_s(_pct(acked, 50))} / {_s(max(acked, default=float('nan')))} "
        f"({len(r.burst) - len(acked)} not acked 200) |"
    )
    burst_runs = {state: n - r.runs_before.get(state, 0) for state, n in r.runs.items()}
    print(f"| runs with final RCA in Slack | {len(done)} of {args.runs} |")
    print(f"| burst run rows by final state (IncidentFox's DB) | {burst_runs} |")
    print(
        f"| model requests served during burst | {r.model_requests_burst} (expected {4 * args.runs}; "
        f"{r.model_failures} failed, {r.model.unexpected} unexpected) |"
    )
    k8s_total = sum(r.kubernetes_requests_burst.values())
    k8s_kinds = ", ".join(f"{kind} {n}" for kind, n in r.kubernetes_requests_burst.most_common(6))
    print(
        f"| Kubernetes API requests during burst | {k8s_total} "
        f"({k8s_total / max(1, args.runs):.1f} per run: {k8s_kinds}) |"
    )
    print(
        f"| IncidentFox RSS before burst (VmRSS / VmHWM) | {_mb(r.rss_before_kb['VmRSS'])} / "
        f"{_mb(r.rss_before_kb['VmHWM'])} |"
    )
    peak_at = max(r.rss_samples, key=lambda s: s[1]) if r.rss_samples else (r.burst_started, 0)
    print(
        f"| IncidentFox peak RSS (VmHWM) | {_mb(peak_kb)} (sampled VmRSS peaked at "
        f"{_mb(peak_at[1])}, {peak_at[0] - r.burst_started:.1f} s into the burst) |"
    )
    print(f"| IncidentFox RSS after burst (VmRSS) | {_mb(r.rss_after_kb['VmRSS'])} |")
    print(
        f"| CPU during burst: IncidentFox / benchmark process (emulators + client) | "
        f"{r.child_cpu_s:.1f} s ({r.child_cpu_s / r.burst_s:.0%}) / {r.bench_cpu_s:.1f} s "
        f"({r.bench_cpu_s / r.burst_s:.0%}) of {r.burst_s:.1f} s |"
    )
    edits = [o.edits for o in r.burst if o.edits]
    strict = max((_max_edits_per_window(e, EDIT_WINDOW_S) for e in edits), default=0)
    tolerant = max((_max_edits_per_window(e, EDIT_WINDOW_S - EDIT_JITTER_S) for e in edits), default=0)
    gaps = [b - a for e in edits for a, b in itertools.pairwise(sorted(e))]
    print(
        f"| chat.update calls during burst | {r.updates_total} ({r.updates_total / max(len(edits), 1):.1f} "
        f"per message) |"
    )
    print(
        f"| max chat.update per message in any 1 s window (arrival; with {EDIT_JITTER_S * 1000:.0f} ms "
        f"jitter tolerance) | {strict} ({tolerant}); min gap {_s(min(gaps, default=float('nan')))} |"
    )
    print()
    print("### Where a run's time goes (seconds per stage)")
    print()
    print("| stage | ideal (median) | burst p50 | burst p95 | burst max |")
    print("|---|---|---|---|---|")
    ideal_gaps = [g for g in (_stage_gaps(o, r.model) for o in r.ideal) if g]
    burst_gaps = [g for g in (_stage_gaps(o, r.model) for o in r.burst) if g]
    for stage in ideal_gaps[0] if ideal_gaps else ():
        ideal_values = [g[stage] for g in ideal_gaps]
        values = [g[stage] for g in burst_gaps]
        print(
            f"| {stage} | {statistics.median(ideal_values):.3f} | {_pct(values, 50):.3f} | "
            f"{_pct(values, 95):.3f} | {max(values, default=float('nan')):.3f} |"
        )
    print()
    print("### Goals (design §10)")
    print()
    print("| goal | measured | met |")
    print("|---|---|---|")
    all_done = len(done) == args.runs
    print(
        f"| wall ≤ {WALL_RATIO_GOAL}× ideal | {ratio:.2f}× ({_s(wall_s)} / {_s(ideal_s)}) | "
        f"{_met(ratio <= WALL_RATIO_GOAL and all_done)} |"
    )
    print(
        f"| peak RSS ≤ {PEAK_RSS_GOAL_MB:.0f} MB | {_mb(peak_kb)} | "
        f"{_met(peak_kb / 1024 <= PEAK_RSS_GOAL_MB)} |"
    )
    print(f"| every run ends with its RCA | {len(done)} of {args.runs} | {_met(all_done)} |")
    print(
        f"| ≤ 1 chat.update per second per message | {tolerant} (strict {strict}) | {_met(tolerant <= 1)} |"
    )
    print()
    for note in r.notes:
        print(f"note: {note}")
    print(f"total time {r.total_s:.0f} s")
