"""Rain model benchmark: training time and hold-out AUC/accuracy of the two MLlib classifiers
(batch/rain.py), next to the persistence baseline ("rain in the next 3 h if it rains now")
measured on the same hold-out in the same run.

Simulated hourly history with the simulator's wet season (producer/sources/simulator.py) is
written to a temporary Parquet archive in the streaming sink's layout, then `fit_and_evaluate`
trains a decision tree and gradient-boosted trees on the first 75 % of the hours and evaluates
them on the rest. Spark runs in local mode; no other server is needed. Asserts nothing.

    .venv/bin/python benchmarks/rain_model_bench.py [--regions 3] [--days 365] [--iterations 30] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from batch.rain import LEAD_HOURS, features, fit_and_evaluate, hourly  # noqa: E402
from meteoflow.settings import load_settings  # noqa: E402
from producer.regions import load_regions  # noqa: E402
from producer.sources.simulator import simulate_history  # noqa: E402
from streaming.archive import read_archive  # noqa: E402
from streaming.spark import spark_session  # noqa: E402
from tests.fakes.archive import write_archive  # noqa: E402
from tests.faults.harness import machine  # noqa: E402


def persistence_baseline(spark, location: str, cutoff: datetime) -> dict[str, float]:
    """Accuracy of "it will rain within LEAD_HOURS iff it rains now" on the same hold-out."""
    from pyspark.sql import functions as F

    rows = features(hourly(read_archive(spark, location))).dropna(subset=["label"])
    hold_out = rows.where(F.col("hour_no") >= int(cutoff.timestamp() // 3600))
    agg = hold_out.agg(F.count("*"), F.sum((F.col("raining") == F.col("label")).cast("int"))).first()
    return {"rows": agg[0], "accuracy": round(agg[1] / agg[0], 4)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--regions", type=int, default=3)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="2 regions x 120 days, 10 iterations")
    args = parser.parse_args()
    if args.quick:
        args.regions, args.days, args.iterations = 2, 120, 10
    print("machine before:", json.dumps(machine()))
    with tempfile.TemporaryDirectory(prefix="meteoflow-rain-bench-") as tmp:
        settings = load_settings(run_dir=Path(tmp) / "run")
        spark = spark_session(settings, app_name="meteoflow-rain-bench",
                              extra_conf={"spark.ui.showConsoleProgress": "false"})
        try:
            # The hold-out is the last quarter of the hours: start so that it falls in the wet season
            # (Aug-Oct in the Sahel); a hold-out in the dry season has next to no rainy hour to score.
            start = datetime(2025, 11, 1, tzinfo=timezone.utc) - timedelta(days=args.days)
            observations = list(simulate_history(load_regions()[: args.regions], start, 24 * args.days))
            location = (Path(tmp) / "archive").as_uri()
            started = time.perf_counter()
            write_archive(spark, observations, location)
            print(f"{len(observations)} hourly observations ({args.regions} regions x {args.days} days from "
                  f"{start:%Y-%m-%d}) archived in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            report = fit_and_evaluate(spark, location, (Path(tmp) / "models").as_uri(), datetime.now(timezone.utc),
                                      iterations=args.iterations)
            total = time.perf_counter() - started
            baseline = persistence_baseline(spark, location, report.selected.train_until)
        finally:
            spark.stop()
    print(f"\nlead {LEAD_HOURS} h; hold-out from {report.selected.train_until:%Y-%m-%d %H:00}; "
          f"features + both fits + evaluation {total:.1f} s wall")
    print(f"{'model':<16}{'train s':>9}{'AUC':>8}{'accuracy':>10}{'rain share':>12}  confusion [[tn, fp], [fn, tp]]")
    for e in report.evaluations:
        auc = f"{e.auc:.3f}" if e.auc is not None else "-"
        print(f"{e.model + (' *' if e.selected else ''):<16}{e.training_seconds:>9.1f}{auc:>8}{e.accuracy:>10.3f}"
              f"{e.rain_share:>12.3f}  [[{e.true_negatives}, {e.false_positives}], "
              f"[{e.false_negatives}, {e.true_positives}]]")
    print(f"{'persistence':<16}{'-':>9}{'-':>8}{baseline['accuracy']:>10.3f}{'':>12}  ({baseline['rows']} hold-out hours)")
    print("machine after:", json.dumps(machine()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
