"""Catching up a backlog: simulator -> Kafka, then the streaming job -> MongoDB, for the current
design, the previous one (benchmarks/previous_design.py) and the ancestor's per-region sink, all on
the same topic, servers and machine, in one run.

What it does (all servers on their own ports and run directory, stopped at the end):
1. starts Kafka and FerretDB (stack.servers, ports + 30000, run dir .run/bench) and the real
   forecasting API (`python -m forecasting_api`, Prophet);
2. publishes REGIONS x HOURS simulator observations (one per region and hour) as fast as the
   simulator and the producer's KafkaPublisher go;
3. measures the store's own bulk insert rate on the same documents (insert_many into a scratch
   collection): the limit any sink approaches;
4. runs the streaming job (streaming.job.StreamingJob, 1 s trigger) over the whole topic, timed
   from its first micro-batch until the batch that wrote the last record ended (the job's own
   batches: polling a count loads the store being measured), and until every region was forecast,
   then checked with one count of the stored observations; then the previous design the same way
   (its own database and checkpoint);
5. runs the ancestor's sink (benchmarks/ancestor_sink.py) from the beginning with the same
   maxOffsetsPerTrigger, for at most --ancestor-budget seconds, and extrapolates its rate.
Prints the figures and records them on the goals' scoreboard (benchmarks/goals.py); asserts
nothing about speed.

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
from goals import Figure, record  # noqa: E402
from previous_design import use_previous_batch  # noqa: E402
from meteoflow.contracts import FORECAST_STATE, FORECASTS, OBSERVATIONS  # noqa: E402
from meteoflow.mongo import database, make_mongo_client  # noqa: E402
from producer.run import Batch, KafkaPublisher  # noqa: E402
from producer.sources.simulator import simulate_history  # noqa: E402
from streaming.spark import STREAMING_CONF  # noqa: E402
from tests.faults.harness import Pipeline, grid_regions, machine, pipeline_settings, wait_until  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=int, default=200)
    p.add_argument("--hours", type=int, default=168, help="simulated hours, one observation per region per hour")
    p.add_argument("--quick", action="store_true", help="20 regions x 48 hours, 60 s ancestor budget")
    p.add_argument("--ancestor-budget", type=float, default=240.0,
                   help="seconds the ancestor sink may run before it is stopped and extrapolated")
    p.add_argument("--chunk", type=int, default=2000, help="records per publish (one flush each)")
    p.add_argument("--max-offsets", type=int, default=20000, help="maxOffsetsPerTrigger")
    p.add_argument("--skip-previous", action="store_true", help="do not measure the previous design")
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


def store_bulk_insert_rate(settings, regions, hours: int, seed: int) -> dict:
    """The store's own rate on this data: the same observation documents, `insert_many` of 2,000
    at a time into a scratch collection (what no sink can beat), then dropped."""
    from streaming.records import observation_documents

    start = (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    now = datetime.now(timezone.utc)
    docs = [d.to_document() for d in observation_documents(
        simulate_history(regions, start, hours, seed=seed, step_minutes=60), stored_at=now)]
    db = database(settings, make_mongo_client(settings))
    scratch = db["bench_bulk_insert"]
    scratch.drop()
    began = time.perf_counter()
    for i in range(0, len(docs), 2000):
        scratch.insert_many(docs[i:i + 2000], ordered=False)
    seconds = time.perf_counter() - began
    scratch.drop()
    db.client.close()
    return {"documents": len(docs), "seconds": round(seconds, 2), "docs_per_s": round(len(docs) / seconds, 1)}


class FirstCall:
    """foreachBatch wrapper noting when the first batch began (the catch-up starts there) and when
    each batch ended with how many records: "all stored" is read from the job's own batches, so the
    benchmark does not load the store it measures with a count every 0.25 s."""

    def __init__(self, processor):
        self.processor = processor
        self.first: float | None = None
        self.ended: list[tuple[float, int]] = []  # (perf_counter when a batch was written, its input rows)
        report_batch = processor.reporter.batch_done  # called by foreachBatch once every sink has written

        def noting_the_end(report):
            self.ended.append((time.perf_counter(), report.input_rows))
            return report_batch(report)

        processor.reporter.batch_done = noting_the_end

    def __call__(self, batch, batch_id):
        if self.first is None:
            self.first = time.perf_counter()
        return self.processor(batch, batch_id)

    def stored_at(self, total: int) -> float | None:
        """When the batch that brought the total to `total` records ended (None: not yet)."""
        seen = 0
        for ended, rows in list(self.ended):
            seen += rows
            if seen >= total:
                return ended
        return None


def start_timed_job(settings, spark, design: str = "current"):
    """The streaming job (one design) started on the topic, its batches timed (FirstCall)."""
    from streaming.job import StreamingJob

    job = StreamingJob(settings, spark, keep_progress_lines=None)
    if design == "previous":
        use_previous_batch(job)
    timed = job.processor = FirstCall(job.processor)
    job.start()
    return job, timed


def wait_stored(timed: FirstCall, total: int) -> float:
    """When the batch that wrote the `total`-th record ended (perf_counter)."""
    wait_until(lambda: timed.stored_at(total) is not None, 3600, f"{total} records through the batches", every=0.05)
    return timed.stored_at(total)


def run_design(settings, spark, regions, total: int, design: str) -> dict:
    """Catch up the whole topic (already published) with one design; time from its first batch."""
    job, timed = start_timed_job(settings, spark, design)
    db = database(settings, make_mongo_client(settings))
    t_stored = wait_stored(timed, total)
    # Forecasts included: every region forecast from its complete history (the previous design did it
    # inside the batches; the current one in its forecast thread).
    wait_until(lambda: sum(b.input_rows or 0 for b in job.reporter.logged) >= total
               and db[FORECAST_STATE].count_documents({"needs_forecast": True}) == 0
               and db[FORECAST_STATE].count_documents({}) >= len(regions), 3600,
               "every region forecast", every=0.25)
    t_forecasts = time.perf_counter()
    job.stop()
    # One count, checking what the batches said; only now: FerretDB counts by decoding every document
    # (seconds of its CPU for 33,600), which would slow the forecast step being timed.
    stored = db[OBSERVATIONS].count_documents({})
    if stored < total:
        raise RuntimeError(f"the batches took {total} records but {stored} observations are stored")
    batches = job.reporter.logged
    forecast_regions = len(db[FORECASTS].distinct("region_id"))
    db.client.close()
    return {
        "design": design,
        "records": total,
        "stored": stored,
        "all_stored_seconds": round(t_stored - timed.first, 2),
        "sustained_records_per_s": round(total / (t_stored - timed.first), 1),
        "all_forecasts_done_seconds": round(t_forecasts - timed.first, 2),
        "records_per_s_with_forecasts": round(total / (t_forecasts - timed.first), 1),
        "micro_batches": len(batches),
        "batch_rows": [b.input_rows for b in batches],
        "batch_ms": [b.durations_ms for b in batches if b.input_rows],
        "regions_with_forecasts": forecast_regions,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = pipeline_settings(
        args.run_dir, args.port_offset,
        streaming_trigger_seconds=1.0, streaming_max_offsets_per_trigger=args.max_offsets,
        # One batch call forecasts every region of a micro-batch (200 Prophet fits); give it time.
        forecast_timeout_seconds=1800.0, forecast_horizon_hours=24, forecast_history_days=7,
        log_level="WARNING",
    )
    # The previous design: its own database and checkpoint on the same topic, its retry timer's interval.
    previous = settings.model_copy(update={
        "mongo_db": settings.mongo_db + "_previous", "forecast_refresh_seconds": settings.forecast_retry_seconds,
        "streaming_checkpoint_dir": settings.run_dir / "checkpoints" / "previous"})
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

        spark = spark_session(settings, app_name="meteoflow-bench", extra_conf=STREAMING_CONF)
        total, t_first, t_published = publish_history(settings, regions, args.hours, args.seed, args.chunk)
        published = {"records": total, "seconds": round(t_published - t_first, 2),
                     "records_per_s": round(total / (t_published - t_first), 1)}
        print(f"published: {json.dumps(published)}", flush=True)
        bulk = store_bulk_insert_rate(settings, regions, args.hours, args.seed)
        print(f"store bulk insert: {json.dumps(bulk)}", flush=True)
        ours = run_design(settings, spark, regions, total, "current")
        print(f"meteoflow: {json.dumps(ours)}", flush=True)
        before_previous = (run_design(previous, spark, regions, total, "previous") if not args.skip_previous
                           else None)
        print(f"previous design: {json.dumps(before_previous)}", flush=True)

        ancestor = run_ancestor(spark, settings, settings.mongo_db + "_ancestor",
                                str(settings.run_dir / "checkpoints" / "ancestor"), args.ancestor_budget)
        rate = ancestor.rows_stored / ancestor.seconds if ancestor.seconds > 0 else 0.0
        complete = not ancestor.exhausted and ancestor.rows_stored == total
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
            "extrapolated_seconds_for_all": round(total / rate, 1) if rate else None,
            "errors_sample": ancestor.errors[:3],
        }
        print(f"ancestor: {json.dumps(theirs)}", flush=True)
        after = machine()
        report(args, settings, regions, published, bulk, ours, before_previous, theirs, complete, before, after)
        return 0
    finally:
        if spark is not None:
            spark.stop()
        pipeline.stop_all()


def report(args, settings, regions, published, bulk, ours, prev, theirs, complete, before, after) -> None:
    rate = theirs["records_per_s"]

    def ratio(design):
        return round(design["records_per_s_with_forecasts"] / rate, 1) if design and rate else None

    def share(design):
        return round(design["sustained_records_per_s"] / bulk["docs_per_s"], 2) if design else None

    print("\n=== pipeline benchmark (backlog) ===")
    load = f"load avg {before['load_avg_1_5_15']} before, {after['load_avg_1_5_15']} after"
    print(f"machine      {before['cpu']}, {before['cores']} cores, {before['memory_gib']} GiB; {load}")
    print(f"data         {len(regions)} regions x {args.hours} h = {ours['records']} records, published first "
          f"({published['records_per_s']} records/s), then caught up (maxOffsetsPerTrigger "
          f"{settings.streaming_max_offsets_per_trigger}, trigger 1 s); timed from each design's first batch")
    print(f"store        bulk insert_many of the same documents: {bulk['docs_per_s']} documents/s")
    for name, design in (("meteoflow", ours), ("previous", prev)):
        if design is None:
            continue
        print(f"{name:<12} {design['sustained_records_per_s']} records/s until all stored "
              f"({design['all_stored_seconds']} s, {share(design)}x the bulk insert rate); "
              f"{design['records_per_s_with_forecasts']} records/s until every region was forecast "
              f"({design['all_forecasts_done_seconds']} s); {ratio(design)}x the ancestor")
    scope = "all records" if complete else (
        f"{theirs['rows_stored']} records / {theirs['regions_processed']} region-batches in "
        f"{theirs['measured_seconds']:.0f} s (budget {args.ancestor_budget:.0f} s), extrapolated")
    print(f"ancestor     {rate} records/s ({scope})")
    machine_text = (f"{before['cpu']}, {before['cores']} cores; {load}; 200x168 h" if not args.quick
                    else f"{before['cpu']}, {before['cores']} cores; {load}; --quick")
    what = f"({len(regions)} x {args.hours} h)"
    record("pipeline", [
        Figure("1. backlog", f"records/s until stored {what}", ours["sustained_records_per_s"],
               prev and prev["sustained_records_per_s"], ">= 3,000", "records/s",
               ours["sustained_records_per_s"] >= 3000),
        Figure("1. backlog", f"x the ancestor's sink, forecasts included {what}", ratio(ours), ratio(prev),
               ">= 20x", "x", ratio(ours) is not None and ratio(ours) >= 20),
        Figure("1. backlog", f"share of the store's bulk insert rate ({bulk['docs_per_s']:,.0f} docs/s)",
               share(ours), share(prev), "measured", "x", None),
    ], machine_text)
    if args.json:
        args.json.write_text(json.dumps({"machine_before": before, "machine_after": after, "published": published,
                                         "store_bulk_insert": bulk, "meteoflow": ours, "previous": prev,
                                         "ancestor": theirs}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
