"""The performance goals' scoreboard: each benchmark records its figures here, and
`./run.sh bench` (or `python benchmarks/goals.py`) prints every goal's figure next to the
current design's, measured in the same run.

A benchmark calls `record("pipeline", [Figure(...), ...])` once it has measured; the figures of
one run are JSON files under .run/bench-results/ (ignored by git), one per benchmark, with the
machine they were measured on. Nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("METEOFLOW_BENCH_RESULTS", REPO / ".run" / "bench-results"))


@dataclass(frozen=True)
class Figure:
    goal: str  # e.g. "1. backlog"
    measure: str  # what was measured, e.g. "records/s until stored (200 x 168 h)"
    value: float | None  # the new design's figure (None: not measured in this run)
    baseline: float | None  # the current (previous) design's figure, same run, same data
    target: str  # the goal as written, e.g. ">= 3,000"
    unit: str = ""
    met: bool | None = None  # did `value` reach the target (None: cannot be judged)


def record(bench: str, figures: list[Figure], machine: str = "") -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{bench}.json"
    path.write_text(json.dumps({"bench": bench, "machine": machine, "figures": [asdict(f) for f in figures]},
                               indent=2))
    return path


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".strip()


def table(results_dir: Path = RESULTS_DIR) -> str:
    rows = ["| goal | measure | now | previous design | target | met |", "|---|---|---|---|---|---|"]
    machines = []
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("machine"):
            machines.append(f"{data['bench']}: {data['machine']}")
        for f in data["figures"]:
            met = {True: "yes", False: "**no**", None: "-"}[f["met"]]
            rows.append(f"| {f['goal']} | {f['measure']} | {_fmt(f['value'], f['unit'])} | "
                        f"{_fmt(f['baseline'], f['unit'])} | {f['target']} | {met} |")
    return "\n".join(rows + [""] + machines)


if __name__ == "__main__":
    if not RESULTS_DIR.is_dir():
        sys.exit(f"no benchmark results in {RESULTS_DIR}: run ./run.sh bench first")
    print(table())
