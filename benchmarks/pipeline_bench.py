"""End-to-end throughput: simulator at full speed -> Kafka -> streaming job -> MongoDB, against
the ancestor's per-region sink on the same data.

What it does (all servers on their own ports and run directory, stopped at the end):
1. starts Kafka and FerretDB (stack.servers, ports + 30000, run dir .run/bench) and the real
   forecasting API (`python -m forecasting_api`, Prophet);
2. starts the streaming job in this process (streaming.job.StreamingJob, 1 s trigger) on an
   empty topic, then publishes REGIONS x HOURS simulator observations as fast as the simulator
   and the producer's KafkaPublisher go (produced_at = wall clock at publication);
3. waits until every record is stored, and until every micro-batch (forecasts included) is done;
   prints sustained records/s and p50/p95 of stored_at - produced_at per record;
4. on the same topic, runs the ancestor's sink (benchmarks/ancestor_sink.py) from the beginning
   with the same maxOffsetsPerTrigger, for at most --ancestor-budget seconds, and prints its
   measured rate, the extrapolated time for the whole data set and the ratio.
Asserts nothing about speed; the figures go in BENCHMARKS.md.

    .venv/bin/python benchmarks/pipeline_bench.py            # 200 regions x 168 h = 33,600 records
    .venv/bin/python benchmarks/pipeline_bench.py --quick    # 20 regions x 48 h = 960 records
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the harness lives with the fault suite (tests/faults/harness.py)

from ancestor_sink import run_ancestor  # noqa: E402
from meteoflow.contracts import FORECASTS, OBSERVATIONS  # noqa: E402
from meteoflow.mongo import database, make_mongo_client  # noqa: E402
from producer.run import Batch, KafkaPublisher  # noqa: E402
from producer.sources.simulator import simulate_history  # noqa: E402
from tests.faults.harness import Pipeline, grid_regions, machine, percentile, pipeline_settings, wait_until  # noqa: E402

QUIET_SPARK = {"spark.ui.showConsoleProgress": "false", "spark.sql.adaptive.enabled": "false"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=int, default=200)
    p.add_argument("--hours", type=int, default=168, help="simulated hours, one observation per region per hour")
    p.add_argument("--quick", action="store_true", help="20 regions x 48 hours, 60 s ancestor budget")
    p.add_argument("--ancestor-budget", type=float, default=240.0,
                   help="seconds the ancestor sink may run before it is stopped and extrapolated")
    p.add_argument("--chunk", type=int, default=2000, help="records per publish (one flush each)")
    p.add_argument("--port-offset", type=int, default=30000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.regions, args.hours, args.ancestor_budget = 20, 48, 60.0
    return args


def publish_history(settings, regions, hours: int, seed: int, chunk: int) -> tuple[int, float, float]:
    """Simulate and publish everything at full speed. Returns (records, first send, last ack) as perf_counter."""
    publisher = KafkaPublisher(settings)
    start = (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    sent, pending, first = 0, [], None

    def flush():
        nonlocal sent, first
        now = datetime.now(timezone.utc)
        if first is None:
            first = time.perf_counter()
        batch = [o.model_copy(update={"produced_at": now}) for o in pending]
        errors = publisher.publish(Batch(batch_id="bench", source="simulator", observations=batch))
        if errors:
            raise RuntimeError(f"Kafka did not take {len(errors)} records: {next(iter(errors.values()))}")
        sent += len(batch)
        pending.clear()

    for obs in simulate_history(regions, start, hours, seed=seed, step_minutes=60):
        pending.append(obs)
        if len(pending) >= chunk:
            flush()
    if pending:
        flush()
    done = time.perf_counter()
    publisher.close()
    return sent, first, done


def run_pipeline(settings, spark, regions, args) -> dict:
    from streaming.job import StreamingJob

    job = StreamingJob(settings, spark, keep_progress_lines=None)
    query = job.start()
    wait_until(lambda: query.lastProgress is not None, 300, "the streaming query's first (idle) trigger")
    db = database(settings, make_mongo_client(settings))
    total, t_first, t_published = publish_history(settings, regions, args.hours, args.seed, args.chunk)
    wait_until(lambda: db[OBSERVATIONS].count_documents({}) >= total, 3600, f"{total} observations stored", every=0.25)
    t_stored = time.perf_counter()
    wait_until(lambda: sum(b.input_rows or 0 for b in job.reporter.logged) >= total, 3600,
               "every micro-batch (forecasts included) done", every=0.25)
    t_batches = time.perf_counter()
    job.stop()
    stored = db[OBSERVATIONS].count_documents({})
    latencies = [(d["stored_at"] - d["produced_at"]).total_seconds()
                 for d in db[OBSERVATIONS].find({}, {"stored_at": 1, "produced_at": 1})]
    batches = job.reporter.logged
    forecast_regions = len(db[FORECASTS].distinct("region_id"))
    db.client.close()
    return {
        "records": total,
        "stored": stored,
        "publish_seconds": round(t_published - t_first, 2),
        "publish_records_per_s": round(total / (t_published - t_first), 1),
        "all_stored_seconds": round(t_stored - t_first, 2),
        "sustained_records_per_s": round(total / (t_stored - t_first), 1),
        "all_batches_done_seconds": round(t_batches - t_first, 2),
        "records_per_s_with_forecasts": round(total / (t_batches - t_first), 1),
        "produce_to_stored_p50_s": round(percentile(latencies, 50), 2),
        "produce_to_stored_p95_s": round(percentile(latencies, 95), 2),
        "micro_batches": len(batches),
        "batch_rows": [b.input_rows for b in batches],
        "batch_ms": [b.durations_ms.get("total") for b in batches],
        "forecast_ms": [b.durations_ms.get("forecasts") for b in batches],
        "regions_with_forecasts": forecast_regions,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = pipeline_settings(
        args.run_dir, args.port_offset,
        streaming_trigger_seconds=1.0, streaming_max_offsets_per_trigger=20000,
        # One batch call forecasts every region of a micro-batch (200 Prophet fits); give it time.
        forecast_timeout_seconds=1800.0, forecast_horizon_hours=24, forecast_history_days=7,
        log_level="WARNING",
    )
    regions = grid_regions(args.regions)
    pipeline = Pipeline(settings, ["kafka", "ferretdb"], ["forecasting_api"])
    before = machine()
    print(f"machine: {json.dumps(before)}", flush=True)
    print(f"data: {len(regions)} regions x {args.hours} h hourly = {len(regions) * args.hours} records", flush=True)
    spark = None
    try:
        pipeline.start_servers()
        pipeline.start("forecasting_api", supervise=False)
        from stack.spark import spark_session

        spark = spark_session(settings, app_name="meteoflow-bench", extra_conf=QUIET_SPARK)
        ours = run_pipeline(settings, spark, regions, args)
        print(f"meteoflow: {json.dumps(ours)}", flush=True)

        ancestor = run_ancestor(spark, settings, settings.mongo_db + "_ancestor",
                                str(settings.run_dir / "checkpoints" / "ancestor"), args.ancestor_budget)
        rate = ancestor.rows_stored / ancestor.seconds if ancestor.seconds > 0 else 0.0
        complete = not ancestor.exhausted and ancestor.rows_stored == ours["records"]
        theirs = {
            "measured_seconds": round(ancestor.seconds, 2),
            "budget_seconds": args.ancestor_budget,
            "finished_all_records": complete,
            "micro_batches_started": ancestor.batches,
            "regions_processed": ancestor.regions_done,
            "rows_stored": ancestor.rows_stored,
            "forecast_calls": ancestor.forecast_calls,
            "forecast_failures": ancestor.forecast_failures,
            "predictions_written": ancestor.predictions_written,
            "records_per_s": round(rate, 1),
            "extrapolated_seconds_for_all": round(ours["records"] / rate, 1) if rate else None,
            "errors_sample": ancestor.errors[:3],
        }
        print(f"ancestor: {json.dumps(theirs)}", flush=True)
        ratio = ours["records_per_s_with_forecasts"] / rate if rate else float("inf")
        after = machine()
        print("\n=== pipeline benchmark ===")
        print(f"machine      {before['cpu']}, {before['cores']} cores, {before['memory_gib']} GiB; load avg "
              f"{before['load_avg_1_5_15']} before, {after['load_avg_1_5_15']} after")
        print(f"data         {len(regions)} regions x {args.hours} h = {ours['records']} records "
              f"(maxOffsetsPerTrigger {settings.streaming_max_offsets_per_trigger}, trigger 1 s)")
        print(f"publish      {ours['publish_records_per_s']} records/s (simulator + KafkaPublisher, acks=all)")
        print(f"meteoflow    {ours['sustained_records_per_s']} records/s until all stored "
              f"({ours['all_stored_seconds']} s); {ours['records_per_s_with_forecasts']} records/s until every "
              f"batch incl. forecasts was done ({ours['all_batches_done_seconds']} s)")
        print(f"latency      produce -> stored p50 {ours['produce_to_stored_p50_s']} s, "
              f"p95 {ours['produce_to_stored_p95_s']} s")
        scope = "all records" if complete else (
            f"{ancestor.rows_stored} records / {ancestor.regions_done} region-batches in {ancestor.seconds:.0f} s "
            f"(budget {args.ancestor_budget:.0f} s), extrapolated")
        print(f"ancestor     {theirs['records_per_s']} records/s ({scope})")
        print(f"ratio        {ratio:.1f}x (meteoflow incl. forecasts / ancestor)")
        if args.json:
            args.json.write_text(json.dumps({"machine_before": before, "machine_after": after, "meteoflow": ours,
                                             "ancestor": theirs, "ratio": round(ratio, 2)}, indent=2))
        return 0
    finally:
        if spark is not None:
            spark.stop()
        pipeline.stop_all()


if __name__ == "__main__":
    sys.exit(main())
