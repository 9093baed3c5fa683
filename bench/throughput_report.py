"""Goals, the printed table, the JSON document and the PNG plot of ``bench.throughput``.

Pure presentation: takes the measured cases (plain dicts, as saved) and judges them against the
issue's goals; ``bench.throughput`` calls it after the runs. The goals:

* at L ms per AWS call (L > 0), throughput >= 0.8 x concurrency / (AWS calls per submission x L),
  for every workload: a sweep from one client as much as a burst from many (issue 8);
* executor CPU at most 5 ms per submission (host-calibrated: read it beside the host speed);
* executor peak RSS (VmHWM) at most 100 MiB during the burst;
* consuming within 1.5 s of the process start (the consumer group's join, which depends on the
  broker's session timeouts, excluded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOAL_EFFICIENCY = 0.8
GOAL_CPU_MS = 5.0
GOAL_RSS_MIB = 100.0
GOAL_START_S = 1.5
# FACTS.md, "The original service, run here": sequential, 4 AWS calls per submission.
ORIGINAL_THROUGHPUT = {0: 9.8, 200: 1.07}
ORIGINAL_CALLS_PER_SUBMISSION = 4
ORIGINAL_CPU_MS = 70.0
ORIGINAL_RSS_MIB = 86.0


def throughput_goal(concurrency: int, calls_per_submission: float, latency_ms: float) -> float | None:
    """Submissions/s the case must reach; None when no AWS latency is injected (no goal)."""
    if latency_ms <= 0 or calls_per_submission <= 0:
        return None
    return GOAL_EFFICIENCY * concurrency / (calls_per_submission * latency_ms / 1000)


def verdicts(case: dict[str, Any]) -> dict[str, bool | None]:
    """PASS (True) / FAIL (False) / no goal or not measured (None) for each goal of one case."""
    if case.get("error"):
        return {"throughput": False, "cpu": None, "rss": None, "ready": None}
    goal = case.get("throughput_goal")
    cpu, rss = case.get("cpu_ms_per_submission"), case.get("peak_rss_mib")
    start = case.get("consuming_log_s")
    return {
        "throughput": None if goal is None else case["throughput"] >= goal,
        "cpu": None if cpu is None else cpu <= GOAL_CPU_MS,
        "rss": None if rss is None else rss <= GOAL_RSS_MIB,
        "ready": None if start is None else start <= GOAL_START_S,
    }


def _mark(verdict: bool | None) -> str:
    return "-" if verdict is None else ("PASS" if verdict else "FAIL")


def _num(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0] or 0)
    return "-".rjust(width) if value is None else format(value, spec)


def table(cases: list[dict[str, Any]]) -> str:
    header = (
        f"{'workload':<18} {'L ms':>5} {'c':>3} {'N':>5} {'subm/s':>8} {'goal':>7} {'':>4} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'calls':>5} {'CPU ms':>7} {'':>4} "
        f"{'RSS MiB':>7} {'':>4} {'start s':>7} {'':>4} {'ready s':>7} "
        f"{'busy %':>6} {'host':>5} {'orig/s':>6}"
    )
    rows = [header, "-" * len(header)]
    for case in cases:
        v = verdicts(case)
        original = ORIGINAL_THROUGHPUT.get(int(case["latency_ms"]))
        rows.append(
            f"{case.get('workload', 'many-clients'):<18} "
            f"{case['latency_ms']:>5g} {case['concurrency']:>3} {case['submissions']:>5} "
            f"{_num(case.get('throughput'), '8.2f')} {_num(case.get('throughput_goal'), '7.2f')} "
            f"{_mark(v['throughput']):>4} {_num(case.get('p50_ms'), '8.0f')} "
            f"{_num(case.get('p95_ms'), '8.0f')} {_num(case.get('p99_ms'), '8.0f')} "
            f"{_num(case.get('calls_per_submission'), '5.2f')} "
            f"{_num(case.get('cpu_ms_per_submission'), '7.1f')} {_mark(v['cpu']):>4} "
            f"{_num(case.get('peak_rss_mib'), '7.0f')} {_mark(v['rss']):>4} "
            f"{_num(case.get('consuming_log_s'), '7.2f')} {_mark(v['ready']):>4} "
            f"{_num(case.get('ready_s'), '7.2f')} "
            f"{_num(case.get('machine_busy_pct'), '6.0f')} {_num(case.get('host_speed_ms'), '5.0f')} "
            f"{_num(original, '6.2f')}"
        )
        if case.get("error"):
            rows.append(f"      ^ case did not complete: {case['error']}")
    rows.append(
        f"goal: subm/s >= {GOAL_EFFICIENCY} x c / (calls x L) when L > 0; "
        f"CPU <= {GOAL_CPU_MS:g} ms/submission; RSS <= {GOAL_RSS_MIB:g} MiB; "
        f"start (to consuming, the group join excluded) <= {GOAL_START_S:g} s; ready: to /readyz 200"
    )
    rows.append(
        "busy %: the whole machine (all cores) during the burst; near 100 the rig sets the ceiling. "
        "host: CPU ms of a fixed Python workload before the burst (lower is a faster host)"
    )
    rows.append(
        f"orig/s: the original sm-executor (FACTS.md; sequential, {ORIGINAL_CALLS_PER_SUBMISSION} AWS calls "
        f"per submission, ~{ORIGINAL_CPU_MS:g} ms CPU per submission, {ORIGINAL_RSS_MIB:g} MiB peak RSS)"
    )
    return "\n".join(rows)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_plot(path: Path, cases: list[dict[str, Any]], title: str) -> None:
    """Throughput against latency per concurrency (with goals and the original), and latency bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [c for c in cases if c.get("throughput") is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    for concurrency in sorted({c["concurrency"] for c in done}):
        mine = sorted((c for c in done if c["concurrency"] == concurrency), key=lambda c: c["latency_ms"])
        line = left.plot(
            [c["latency_ms"] for c in mine],
            [c["throughput"] for c in mine],
            marker="o",
            label=f"MAX_IN_FLIGHT={concurrency}",
        )[0]
        goals = [(c["latency_ms"], c["throughput_goal"]) for c in mine if c.get("throughput_goal")]
        if goals:
            left.plot(
                [g[0] for g in goals],
                [g[1] for g in goals],
                linestyle="--",
                marker="_",
                markersize=14,
                color=line.get_color(),
                label=f"goal, MAX_IN_FLIGHT={concurrency}",
            )
    left.plot(
        list(ORIGINAL_THROUGHPUT),
        list(ORIGINAL_THROUGHPUT.values()),
        "kx",
        markersize=9,
        label="original sm-executor",
    )
    left.set_xlabel("added latency per AWS call (ms)")
    left.set_ylabel("submissions / s")
    left.set_yscale("log")
    left.set_title("Burst throughput")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)

    labels = [f"L={c['latency_ms']:g}\nc={c['concurrency']}" for c in done]
    width = 0.27
    for offset, (key, name) in enumerate((("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))):
        right.bar(
            [i + (offset - 1) * width for i in range(len(done))],
            [c[key] for c in done],
            width=width,
            label=name,
        )
    right.set_xticks(list(range(len(done))), labels, fontsize=8)
    right.set_ylabel("produce → executor event (ms)")
    right.set_yscale("log")
    right.set_title("Latency during the burst")
    right.grid(True, axis="y", which="both", alpha=0.3)
    right.legend(fontsize=8)

    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
