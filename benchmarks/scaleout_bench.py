"""Scale out (issue 15, goal 5): the backlog benchmark on a real Spark standalone cluster with 1 and
2 workers, writes on the executors, against local mode (driver collects each batch) on the same data.

What it does (its own ports and run directory, everything stopped at the end):
1. starts Kafka and FerretDB (stack.servers, ports + --port-offset, run dir .run/bench-scaleout);
2. for each Spark set-up (local[2] with the driver path, then a cluster of 1 and of 2 workers of one
   core each, started by stack.spark_cluster): a fresh topic and database, the streaming job in this
   process (1 s trigger) started once the simulator's backlog is published at full speed, timed from
   its first micro-batch until the batch that wrote the last record ended, as benchmarks/pipeline_bench.py
   does; records/s until every record is stored;
3. prints the figures with the load average and records them (benchmarks/goals.py).
No forecasting API runs: the figure is about validation and writes, which is what moves to the
executors (forecast calls stay on the driver; they fail fast here and are retried by the job).
Asserts nothing about speed. On a 2-core machine shared with other work, two single-core workers
(plus the driver, Kafka and FerretDB) compete for the same two cores: do not expect 2x.

    .venv/bin/python benchmarks/scaleout_bench.py            # 200 regions x 168 h = 33,600 records
    .venv/bin/python benchmarks/scaleout_bench.py --quick    # 40 regions x 48 h = 1,920 records
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goals import Figure, record  # noqa: E402
from pipeline_bench import publish_history, start_timed_job, wait_stored  # noqa: E402
from meteoflow.contracts import OBSERVATIONS  # noqa: E402
from meteoflow.mongo import database, make_mongo_client  # noqa: E402
from streaming.spark import STREAMING_CONF  # noqa: E402
from tests.faults.harness import Pipeline, grid_regions, machine, pipeline_settings  # noqa: E402

GOAL = "5. scale out"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=int, default=200)
    p.add_argument("--hours", type=int, default=168, help="simulated hours, one observation per region per hour")
    p.add_argument("--quick", action="store_true", help="40 regions x 48 hours")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="cluster sizes to measure")
    p.add_argument("--no-local", action="store_true", help="skip the local-mode baseline")
    p.add_argument("--chunk", type=int, default=2000, help="records per publish (one flush each)")
    p.add_argument("--port-offset", type=int, default=30000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-scaleout")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.regions, args.hours = 40, 48
    return args


def settings_for(args, topics: bool = True):
    """Fresh topics (created unless `topics` is False), database and checkpoint for one run."""
    from meteoflow.kafka import ensure_topics

    settings = pipeline_settings(args.run_dir, args.port_offset, streaming_trigger_seconds=1.0,
                                 streaming_max_offsets_per_trigger=20000, forecast_timeout_seconds=5.0,
                                 log_level="WARNING", kafka_partitions=4, spark_worker_cores=1,
                                 spark_worker_memory="1g", spark_cluster_port=7077 + args.port_offset,
                                 spark_cluster_webui_port=8470 + args.port_offset)
    # Each run its own checkpoint too: a checkpoint holds offsets of the topic it read.
    settings = settings.model_copy(update={"streaming_checkpoint_dir": args.run_dir / "checkpoints" /
                                           settings.topic_observations})
    if topics:
        ensure_topics(settings)
    return settings


def measure(args, regions, workers: int | None) -> dict:
    """One run: local mode (workers None) or a fresh cluster of `workers` workers."""
    from stack.spark import spark_session
    from stack.spark_cluster import SparkCluster

    settings = settings_for(args)
    cluster = SparkCluster(settings, workers).start() if workers else None
    if cluster is not None:
        settings = settings.model_copy(update={"spark_master": cluster.url})
    spark = spark_session(settings, app_name="meteoflow-scaleout-bench", extra_conf=STREAMING_CONF)
    try:
        return catch_up(settings, spark, regions, args)
    finally:
        spark.stop()
        if cluster is not None:
            cluster.stop()


def catch_up(settings, spark, regions, args) -> dict:
    """Publish the backlog, then let the job catch up; checked with one count of the stored observations."""
    total, _, _ = publish_history(settings, regions, args.hours, args.seed, args.chunk)
    job, timed = start_timed_job(settings, spark)
    try:
        t_stored = wait_stored(timed, total)
    finally:
        job.stop()
    client = make_mongo_client(settings)
    try:
        stored = database(settings, client)[OBSERVATIONS].count_documents({})
    finally:
        client.close()
    if stored < total:
        raise RuntimeError(f"the batches took {total} records but {stored} observations are stored")
    return {"records": total, "stored": stored, "all_stored_seconds": round(t_stored - timed.first, 2),
            "sustained_records_per_s": round(total / (t_stored - timed.first), 1),
            "micro_batches": len(job.reporter.logged), "batch_rows": [b.input_rows for b in job.reporter.logged]}


def main(argv=None) -> int:
    args = parse_args(argv)
    regions = grid_regions(args.regions)
    servers = Pipeline(settings_for(args, topics=False), ["kafka", "ferretdb"], [])
    before = machine()
    print(f"machine: {json.dumps(before)}", flush=True)
    print(f"data: {len(regions)} regions x {args.hours} h hourly = {len(regions) * args.hours} records", flush=True)
    runs: dict[str, dict] = {}
    try:
        servers.start_servers()
        if not args.no_local:
            runs["local[2], driver collects"] = measure(args, regions, None)
            print(f"local: {json.dumps(runs['local[2], driver collects'])}", flush=True)
        for workers in args.workers:
            name = f"cluster, {workers} worker{'s' if workers > 1 else ''} x 1 core, executor writes"
            runs[name] = measure(args, regions, workers)
            print(f"{name}: {json.dumps(runs[name])}", flush=True)
    finally:
        servers.stop_all()
    after = machine()
    load = f"load avg {before['load_avg_1_5_15']} before, {after['load_avg_1_5_15']} after"
    print("\n=== scale-out benchmark ===")
    print(f"machine      {before['cpu']}, {before['cores']} cores, {before['memory_gib']} GiB; {load}")
    print(f"data         {len(regions)} regions x {args.hours} h = {len(regions) * args.hours} records, "
          "4 Kafka partitions, maxOffsetsPerTrigger 20000, trigger 1 s, no forecasting API")
    for name, figures in runs.items():
        print(f"{name:<52} {figures['sustained_records_per_s']:>8} records/s until stored "
              f"({figures['all_stored_seconds']} s, {figures['micro_batches']} micro-batches)")
    local = runs.get("local[2], driver collects", {}).get("sustained_records_per_s")
    figures = [Figure(goal=GOAL, measure=f"records/s until stored, {name} ({len(regions)} x {args.hours} h)",
                      value=data["sustained_records_per_s"], baseline=local, unit="records/s",
                      target="runs on a cluster; reported with 1 and 2 workers")
               for name, data in runs.items() if name.startswith("cluster")]
    record("scaleout", figures, f"{before['cpu']}, {before['cores']} cores; {load}")
    if args.json:
        args.json.write_text(json.dumps({"machine_before": before, "machine_after": after, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
