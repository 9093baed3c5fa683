"""The fault suite's sizes and its report: what each scenario sent, what SageMaker ended up with, what held.

Used by ``tests/faults`` (``make faults`` runs them at ``FAULTS_SCALE=full``; the ordinary ``pytest``
run uses ``small``). Each scenario builds a :class:`FaultCounts` and calls :func:`report`, which prints
one line and writes ``bench/results/faults-<scenario>.json``, so a run shows what held even under
``pytest -q`` without ``-s``. ``python -m bench.faults`` prints the last results as a table.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Scale:
    name: str
    kill_submissions: int
    kills: int
    error_submissions: int
    error_rate: float
    pause_submissions: int
    pause_seconds: float
    hostile_bad: int
    hostile_valid: int
    poison_valid: int  # valid submissions of one client among the poison records (one of each kind)
    credentials_submissions: int
    timeout_s: float  # per scenario, start to finish


# The broker pause lasts at least two session timeouts (the tests use 6 s) and 2 s more: /readyz must
# turn false within it.
SCALES = {
    "small": Scale("small", 30, 3, 30, 0.1, 30, 14.0, 100, 30, 20, 10, timeout_s=150),
    "full": Scale("full", 200, 8, 200, 0.1, 200, 20.0, 1000, 200, 200, 100, timeout_s=900),
}


def scale_from_env() -> Scale:
    name = os.environ.get("FAULTS_SCALE", "small")
    if name not in SCALES:
        raise ValueError(f"FAULTS_SCALE must be one of {sorted(SCALES)}, got {name!r}")
    return SCALES[name]


@dataclass
class FaultCounts:
    """What one scenario observed. ``duplicates`` and ``lost`` count actions; ``errors`` counts ERROR
    statuses plus dead-letter records."""

    scenario: str
    scale: str
    seed: int
    sent: int
    jobs_created: int
    duplicates: int
    lost: int
    errors: int
    elapsed_s: float
    held: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"[faults:{self.scenario}:{self.scale}] seed={self.seed} sent={self.sent} "
            f"jobs_created={self.jobs_created} duplicates={self.duplicates} lost={self.lost} "
            f"errors={self.errors} elapsed={self.elapsed_s:.1f}s held={self.held} "
            + " ".join(f"{k}={v}" for k, v in self.details.items() if not isinstance(v, list | dict))
        )


def report(counts: FaultCounts) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"faults-{counts.scenario}.json"
    path.write_text(json.dumps(asdict(counts), indent=2, sort_keys=True) + "\n")
    print("\n" + counts.line(), flush=True)
    return path


def main() -> int:
    rows = sorted(RESULTS.glob("faults-*.json"))
    if not rows:
        print("no results yet: run `make faults`")
        return 1
    for path in rows:
        data = json.loads(path.read_text())
        print(FaultCounts(**data).line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
