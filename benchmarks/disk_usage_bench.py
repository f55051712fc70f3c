"""Disk use per region and month, measured on the real pipeline: Kafka, FerretDB (MongoDB wire,
SQLite) and Elasticsearch, with simulator records; then scaled to the default schedules.

What it does (servers on ports + 30000, run dir .run/bench-disk, everything stopped at the end):
1. starts Kafka, Elasticsearch and FerretDB (stack.servers) and the real services: forecasting
   API, streaming job (`python -m streaming`), shipper and alerting;
2. observations: publishes --days of simulator history for Senegal's 14 regions, one observation
   per region every 15 min (the OpenWeatherMap schedule), one producer-sized batch per time step
   (KafkaPublisher, gzip, as the producer sends a run); waits until MongoDB and Elasticsearch hold
   every record; notes Kafka's and FerretDB's sizes;
3. logs: runs the real producer (simulator, live, one run every --live-interval s) for
   --live-runs runs and counts the log lines each service writes per run (the streaming job and
   the forecasting API: per micro-batch, as a run every 15 min is one micro-batch);
4. dead letters: sends --malformed malformed records (the fault suite's six kinds) and waits
   until Elasticsearch holds them (the streaming job's dead letter and the shipper's refusal);
5. measures bytes per record: Kafka log segments / records per topic; FerretDB collStats (data +
   indexes) / documents per collection, and its SQLite file growth / observations; Elasticsearch
   store / documents per index after a refresh and a forcemerge to one segment (for log lines: the
   growth of the merged index over the live runs / their lines, free of the index's fixed cost);
   the baseline is the record's JSON as published;
6. prints the figures per region per month for the OpenWeatherMap schedule
   (METEOFLOW_PRODUCER_INTERVAL_SECONDS=900) and the simulator's demo rate (one live batch every
   METEOFLOW_SIMULATOR_INTERVAL_SECONDS=30), and what retention bounds (logs, dead letters, Kafka).
Asserts nothing; the figures go in docs/reliability.md and BENCHMARKS.md.

    .venv/bin/python benchmarks/disk_usage_bench.py            # 30 days x 14 regions = 40,320 observations
    .venv/bin/python benchmarks/disk_usage_bench.py --quick    #  3 days x 14 regions =  4,032 observations
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the harness lives with the fault suite (tests/faults/harness.py)

from kafka import TopicPartition  # noqa: E402

from elk.alerting.rules import load_rules  # noqa: E402
from meteoflow.contracts import (  # noqa: E402
    FORECAST_STATE, FORECASTS, HOURLY_STATS, OBSERVATIONS, PRODUCER_RUN_ACTION, STREAMING_BATCH_ACTION,
)
from meteoflow.es import make_es_client  # noqa: E402
from meteoflow.kafka import make_consumer, make_producer  # noqa: E402
from meteoflow.mongo import database, make_mongo_client  # noqa: E402
from meteoflow.settings import Settings  # noqa: E402
from producer.regions import load_regions  # noqa: E402
from producer.run import Batch, KafkaPublisher  # noqa: E402
from producer.sources.simulator import simulate_history  # noqa: E402
from tests.faults.harness import (  # noqa: E402
    MALFORMED_KINDS, Pipeline, machine, malformed_payload, pipeline_settings, wait_until,
)

DAY = 24 * 3600
MONTH = 30 * DAY
OWM_STEP_MINUTES = 15
# elk/shipper/service.py logs "shipped {...}" once a minute when it shipped anything, and its own
# line is shipped too: so once a minute, always.
SHIPPER_REPORT_SECONDS = 60.0
# What drives each service's log lines: the producer's runs, the streaming job's micro-batches (one
# per run when runs are further apart than a micro-batch takes, as 15 min always are), the clock.
BATCH_DRIVEN = {"streaming", "forecasting_api"}
TIME_DRIVEN = {"shipper", "alerting"}
STORE_STATS_CACHE_SECONDS = 11  # Elasticsearch caches an index's store size 10 s (index.store.stats_refresh_interval)


def default(name: str):
    return Settings.model_fields[name].default


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=30, help="simulated days of observations, every 15 min")
    p.add_argument("--live-runs", type=int, default=20, help="producer runs counted for the log lines per run")
    p.add_argument("--live-interval", type=float, default=12.0, help="seconds between those runs")
    p.add_argument("--malformed", type=int, default=600, help="malformed records sent")
    p.add_argument("--quick", action="store_true", help="3 days, 5 live runs, 120 malformed records")
    p.add_argument("--port-offset", type=int, default=30000)
    p.add_argument("--run-dir", type=Path, default=REPO / ".run" / "bench-disk")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.days, args.live_runs, args.malformed = 3, 5, 120
    return args


# --- measuring ----------------------------------------------------------------------------------
def kafka_topic(settings: Settings, topic: str) -> dict[str, float]:
    """Bytes of the topic's log segments (the records; the sparse index files are not data) and records."""
    size = sum(p.stat().st_size for p in (settings.run_dir / "kafka" / "data").glob(f"{topic}-*/*.log"))
    consumer = make_consumer(settings, None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        records = sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()
    return {"bytes": size, "records": records, "per_record": round(size / records, 1) if records else None}


def ferret_sizes(db) -> dict[str, dict[str, float]]:
    sizes = {}
    for name in (OBSERVATIONS, HOURLY_STATS, FORECASTS, FORECAST_STATE):
        stats = db.command("collStats", name)
        total = stats.get("storageSize", 0) + stats.get("totalIndexSize", 0)
        sizes[name] = {"bytes": total, "documents": stats.get("count", 0),
                       "per_document": round(total / stats["count"], 1) if stats.get("count") else None}
    return sizes


def sqlite_bytes(settings: Settings) -> dict[str, int]:
    """FerretDB's SQLite database of the pipeline, and its write-ahead log (bounded: checkpointed)."""
    path = settings.run_dir / "ferretdb" / "data" / f"{settings.mongo_db}.sqlite"
    wal = path.with_name(path.name + "-wal")
    return {"file": path.stat().st_size if path.exists() else 0, "wal": wal.stat().st_size if wal.exists() else 0}


def es_store(es, *indices: str) -> dict[str, dict[str, float]]:
    """Documents and store bytes of each index, refreshed and merged to one segment."""
    for index in indices:
        es.indices.refresh(index=index)
        es.options(request_timeout=600).indices.forcemerge(index=index, max_num_segments=1)
    time.sleep(STORE_STATS_CACHE_SECONDS)
    sizes = {}
    for index in indices:
        stats = es.indices.stats(index=index, metric="store,docs")["_all"]["primaries"]
        docs, size = stats["docs"]["count"], stats["store"]["size_in_bytes"]
        sizes[index] = {"documents": docs, "bytes": size, "per_document": round(size / docs, 1) if docs else None}
    return sizes


def es_count(es, index: str, query: dict | None = None) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True)
    return es.count(index=index, ignore_unavailable=True, query=query or {"match_all": {}})["count"]


# --- the three phases ----------------------------------------------------------------------------
def publish_history(settings: Settings, regions, days: int, seed: int) -> tuple[int, float]:
    """One batch per 15-minute step, as the producer publishes a run. Returns (records, mean JSON bytes)."""
    publisher = KafkaPublisher(settings)
    start = (datetime.now(timezone.utc) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    sent = json_bytes = 0
    history = simulate_history(regions, start, days * 24, seed=seed, step_minutes=OWM_STEP_MINUTES)
    for batch_id, step in itertools.groupby(history, key=lambda o: o.batch_id):
        now = datetime.now(timezone.utc)
        observations = [o.model_copy(update={"produced_at": now}) for o in step]
        errors = publisher.publish(Batch(batch_id=batch_id, source="simulator", observations=observations))
        if errors:
            raise RuntimeError(f"Kafka did not take {len(errors)} records: {next(iter(errors.values()))}")
        sent += len(observations)
        json_bytes += sum(len(o.to_message()) for o in observations)
    publisher.close()
    return sent, json_bytes / sent


def log_lines_per_run(es, settings: Settings, pipeline: Pipeline, runs: int, interval: float) -> dict:
    """Runs the real producer live; counts the lines each service logged between its first and last run."""
    index = settings.index("logs")
    live_from = datetime.now(timezone.utc).isoformat()
    run_lines = {"bool": {"filter": [{"term": {"event.action": PRODUCER_RUN_ACTION}},
                                     {"range": {"@timestamp": {"gte": live_from}}}]}}
    pipeline.start("producer", supervise=False)
    wait_until(lambda: es_count(es, index, run_lines) >= runs + 1, 120 + runs * interval * 4,
               f"{runs + 1} producer runs logged", every=1.0)
    pipeline.stop_service("producer")
    hits = es.search(index=index, query=run_lines, size=runs + 1, sort=[{"@timestamp": "asc"}],
                     _source=["@timestamp"])["hits"]["hits"]
    first, last = hits[0]["_source"]["@timestamp"], hits[runs]["_source"]["@timestamp"]
    window = {"range": {"@timestamp": {"gte": first, "lt": last}}}

    def by_service() -> dict[str, int]:
        es.indices.refresh(index=index)
        aggs = es.search(index=index, size=0, query=window,
                         aggs={"s": {"terms": {"field": "service.name", "size": 50}}})["aggregations"]
        return {b["key"]: b["doc_count"] for b in aggs["s"]["buckets"]}

    previous: dict[str, int] = {}

    def settled() -> dict[str, int] | None:  # lines of the window may still be on their way through Kafka
        nonlocal previous
        current = by_service()
        done, previous = current == previous and current, current
        return done

    counts = wait_until(settled, 60, "the log counts to settle", every=5)
    batches = es_count(es, index, {"bool": {"filter": [window, {"term": {"event.action": STREAMING_BATCH_ACTION}}]}})
    seconds = (datetime.fromisoformat(last.replace("Z", "+00:00"))
               - datetime.fromisoformat(first.replace("Z", "+00:00"))).total_seconds()
    per_run = {k: round(v / (batches if k in BATCH_DRIVEN else runs), 2)
               for k, v in counts.items() if k not in TIME_DRIVEN}
    return {"runs": runs, "micro_batches": batches, "seconds": round(seconds, 1), "lines_by_service": counts,
            "per_run_by_service": per_run}


def send_malformed(settings: Settings, count: int, template: dict) -> None:
    producer = make_producer(settings, client_id="bench-malformed")
    try:
        for n in range(count):
            producer.send(settings.topic_observations, key=template["region_id"].encode(),
                          value=malformed_payload(MALFORMED_KINDS[n % len(MALFORMED_KINDS)], template, n))
        producer.flush(timeout=60)
    finally:
        producer.close()


# --- per month ----------------------------------------------------------------------------------
def monthly(figures: dict, interval: float) -> dict[str, float]:
    """Bytes per region per month for a schedule of one observation per region every `interval` s."""
    k, f, e = figures["kafka"], figures["ferretdb"], figures["elasticsearch"]
    observations = MONTH / interval
    hours = MONTH / 3600  # one hourly_stats document per region and hour (every schedule here fills each hour)
    kafka_window_days = 2 * default("kafka_retention_hours") / 24  # see the note printed with the table
    return {
        "observations": observations,
        "kafka_written": observations * k["observations"]["per_record"],
        "kafka_on_disk_at_most": observations / (MONTH / DAY) * kafka_window_days * k["observations"]["per_record"],
        "ferretdb_observations": observations * f[OBSERVATIONS]["per_document"],
        "ferretdb_hourly_stats": hours * f[HOURLY_STATS]["per_document"],
        "ferretdb_forecasts_fixed": default("forecast_horizon_hours") * f[FORECASTS]["per_document"]
        + f[FORECAST_STATE]["per_document"],
        "elasticsearch_observations": observations * e["observations"]["per_document"],
    }


def log_volume(figures: dict, interval: float) -> dict[str, float]:
    """Log lines a deployment writes per day on a schedule, and what retention keeps of them."""
    per_run = sum(figures["logs"]["per_run_by_service"].values())
    runs_per_day = DAY / interval
    lines_per_day = runs_per_day * per_run + DAY / SHIPPER_REPORT_SECONDS + DAY / default("es_retention_interval_seconds")
    es_line = figures["logs"]["es_bytes_per_added_line"]
    return {
        "lines_per_day": lines_per_day,
        "elasticsearch_per_month_without_retention": lines_per_day * MONTH / DAY * es_line,
        "elasticsearch_kept_by_retention": lines_per_day * default("es_retention_days") * es_line,
        "kafka_on_disk_at_most": lines_per_day * 2 * default("kafka_retention_hours") / 24
        * figures["kafka"]["logs"]["per_record"],
    }


def mb(value: float) -> str:
    return f"{value / 1e6:,.2f} MB"


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = pipeline_settings(args.run_dir, args.port_offset, streaming_trigger_seconds=1.0,
                                 simulator_backfill_hours=0, simulator_interval_seconds=args.live_interval)
    regions = load_regions()
    pipeline = Pipeline(settings, ["kafka", "elasticsearch", "ferretdb"],
                        ["forecasting_api", "shipper", "alerting", "streaming", "producer"])
    before = machine()
    print(f"machine: {json.dumps(before)}", flush=True)
    try:
        pipeline.start_servers()
        for name in ("forecasting_api", "shipper", "alerting", "streaming"):
            pipeline.start(name, supervise=False)
        es = make_es_client(settings)
        db = database(settings, make_mongo_client(settings))
        sqlite_before = sqlite_bytes(settings)

        # 1. observations at the OpenWeatherMap schedule
        t0 = time.monotonic()
        published, json_per_record = publish_history(settings, regions, args.days, args.seed)
        print(f"published {published} observations ({args.days} days x {len(regions)} regions, every "
              f"{OWM_STEP_MINUTES} min) in {time.monotonic() - t0:.0f} s", flush=True)
        wait_until(lambda: db[OBSERVATIONS].count_documents({}) >= published, 3600, "every observation stored", every=2)
        wait_until(lambda: es_count(es, settings.index("observations")) >= published, 1800,
                   "every observation in Elasticsearch", every=2)
        wait_until(lambda: db[FORECASTS].count_documents({}) >= len(regions) * settings.forecast_horizon_hours, 600,
                   "every region forecast", every=2)
        kafka_obs = kafka_topic(settings, settings.topic_observations)
        ferret = ferret_sizes(db)
        sqlite_after = sqlite_bytes(settings)
        ferret["sqlite"] = {**sqlite_after, "file_growth_per_observation":
                            round((sqlite_after["file"] - sqlite_before["file"]) / published, 1)}
        print(f"stored in {time.monotonic() - t0:.0f} s; kafka {kafka_obs}; ferretdb {ferret}", flush=True)

        # 2. log lines per producer run; their Elasticsearch cost is the growth of the merged logs
        # index over the live runs, so the index's fixed overhead does not count per line
        logs_index = settings.index("logs")
        logs_before = es_store(es, logs_index)[logs_index]
        logs = log_lines_per_run(es, settings, pipeline, args.live_runs, args.live_interval)
        logs_after = es_store(es, logs_index)[logs_index]
        logs["es_lines_added"] = logs_after["documents"] - logs_before["documents"]
        logs["es_bytes_per_added_line"] = round((logs_after["bytes"] - logs_before["bytes"]) / logs["es_lines_added"], 1)
        print(f"logs: {logs}", flush=True)

        # 3. dead letters
        dead_before = es_count(es, settings.index("deadletter"))
        template = next(simulate_history(regions, datetime.now(timezone.utc), 1)).to_json_dict()
        send_malformed(settings, args.malformed, template)
        # Each malformed record is dead-lettered twice: by the streaming job (through its topic) and
        # refused by the shipper, which ships the observations topic too.
        wait_until(lambda: es_count(es, settings.index("deadletter")) >= dead_before + 2 * args.malformed, 600,
                   "every malformed record dead-lettered twice", every=2)

        time.sleep(5)  # the last log lines through Kafka to Elasticsearch
        final = es_store(es, *(settings.index(kind) for kind in ("observations", "logs", "deadletter")))
        figures = {
            "json_per_observation": round(json_per_record, 1),
            "kafka": {"observations": kafka_obs, "logs": kafka_topic(settings, settings.topic_logs),
                      "deadletter": kafka_topic(settings, settings.topic_deadletter)},
            "ferretdb": ferret,
            "elasticsearch": {kind: final[settings.index(kind)] for kind in ("observations", "logs", "deadletter")},
            "logs": logs,
            "malformed_records": args.malformed,
        }
        db.client.close()
        after = machine()
        report(figures, args, len(regions), before, after)
        if args.json:
            args.json.write_text(json.dumps({"machine_before": before, "machine_after": after, **figures}, indent=2,
                                            default=str))
        return 0
    finally:
        pipeline.stop_all()


def report(figures: dict, args, regions: int, before: dict, after: dict) -> None:
    k, f, e = figures["kafka"], figures["ferretdb"], figures["elasticsearch"]
    base = figures["json_per_observation"]
    print(json.dumps(figures, default=str))
    print("\n=== disk usage benchmark ===")
    print(f"machine      {before['cpu']}, {before['cores']} cores, {before['memory_gib']} GiB; load avg "
          f"{before['load_avg_1_5_15']} before, {after['load_avg_1_5_15']} after")
    print(f"data         {regions} regions x {args.days} days every {OWM_STEP_MINUTES} min = "
          f"{f[OBSERVATIONS]['documents']} observations (simulator); {args.live_runs} live producer runs; "
          f"{args.malformed} malformed records")
    print("\nbytes per record, indices merged to one segment (baseline: the observation's JSON as published, "
          f"{base:.0f} B)")
    rows = [
        ("Kafka, observations topic (gzip batches of one run)", k["observations"]["per_record"], k["observations"]["records"]),
        ("FerretDB observations (data + indexes)", f[OBSERVATIONS]["per_document"], f[OBSERVATIONS]["documents"]),
        ("FerretDB hourly_stats", f[HOURLY_STATS]["per_document"], f[HOURLY_STATS]["documents"]),
        ("FerretDB forecasts (latest run only: 24 per region)", f[FORECASTS]["per_document"], f[FORECASTS]["documents"]),
        ("FerretDB SQLite file growth / observation (all collections)", f["sqlite"]["file_growth_per_observation"],
         f[OBSERVATIONS]["documents"]),
        ("Elasticsearch observations", e["observations"]["per_document"], e["observations"]["documents"]),
        ("Kafka, logs topic (per line)", k["logs"]["per_record"], k["logs"]["records"]),
        ("Elasticsearch logs, whole index / lines", e["logs"]["per_document"], e["logs"]["documents"]),
        ("Elasticsearch logs, growth per line of the live runs", figures["logs"]["es_bytes_per_added_line"],
         figures["logs"]["es_lines_added"]),
        ("Kafka, dead-letter topic", k["deadletter"]["per_record"], k["deadletter"]["records"]),
        ("Elasticsearch dead letters", e["deadletter"]["per_document"], e["deadletter"]["documents"]),
    ]
    for what, per, n in rows:
        ratio = f"{per / base:5.2f}x" if per else "  -  "
        print(f"  {what:<66} {per or 0:>8.1f} B  {ratio} JSON   ({n} records)")
    print(f"  (FerretDB's SQLite write-ahead log: {mb(f['sqlite']['wal'])}: SQLite reuses it after each checkpoint "
          f"and keeps its largest size, that of the busiest write burst; not growth per record)")
    logs = figures["logs"]
    print(f"\nlog lines per producer run (measured over {logs['runs']} live runs and the streaming job's "
          f"{logs['micro_batches']} micro-batches, one per run in operation): {logs['per_run_by_service']}; "
          f"plus the shipper's line a minute and the retention's line an hour")

    for label, interval in (("OpenWeatherMap, one run every 15 min", default("producer_interval_seconds")),
                            ("simulator demo, one live batch every 30 s", default("simulator_interval_seconds"))):
        m = monthly(figures, interval)
        lv = log_volume(figures, interval)
        print(f"\n{label}: {m['observations']:,.0f} observations per region per month")
        print(f"  {'per region per month':<52} {'1 region':>12} {f'{regions} regions':>14}")
        for what, key in (("Kafka observations written (kept 7-14 days)", "kafka_written"),
                          ("FerretDB observations", "ferretdb_observations"),
                          ("FerretDB hourly_stats", "ferretdb_hourly_stats"),
                          ("Elasticsearch observations", "elasticsearch_observations")):
            print(f"  {what:<52} {mb(m[key]):>12} {mb(m[key] * regions):>14}")
        grows = sum(m[key] for key in ("ferretdb_observations", "ferretdb_hourly_stats", "elasticsearch_observations"))
        print(f"  {'= growth that stays (FerretDB + Elasticsearch)':<52} {mb(grows):>12} {mb(grows * regions):>14}")
        print(f"  {'bounded: Kafka observations on disk, at most':<52} {mb(m['kafka_on_disk_at_most']):>12} "
              f"{mb(m['kafka_on_disk_at_most'] * regions):>14}")
        print(f"  {'bounded: FerretDB forecasts + state, per region':<52} {mb(m['ferretdb_forecasts_fixed']):>12} "
              f"{mb(m['ferretdb_forecasts_fixed'] * regions):>14}")
        print(f"  logs (whole deployment): {lv['lines_per_day']:,.0f} lines a day; Elasticsearch "
              f"{mb(lv['elasticsearch_per_month_without_retention'])} a month without retention, at most "
              f"{mb(lv['elasticsearch_kept_by_retention'])} kept with {default('es_retention_days')} days; Kafka at most "
              f"{mb(lv['kafka_on_disk_at_most'])}")
    spike = load_rules(default("alert_rules_file")).deadletter_spike
    per_dead = 2 * e["deadletter"]["per_document"] + figures["logs"]["es_bytes_per_added_line"]  # + its log line
    sustained = spike.max_count * DAY / spike.window_seconds * default("es_retention_days")
    print(f"\ndead letters: a malformed record costs Elasticsearch {per_dead:,.0f} B (two dead-letter documents "
          f"and one log line) and Kafka {k['deadletter']['per_record'] + k['logs']['per_record']:,.0f} B; "
          f"{spike.max_count} every {spike.window_seconds / 60:.0f} min (the deadletter_spike threshold) for "
          f"{default('es_retention_days')} days = {sustained:,.0f} records = {mb(sustained * per_dead)} kept at most")
    print("Kafka keeps a segment until its newest record is older than the retention (7 days) and rolls a "
          "segment every 7 days, so a topic holds 7 to 14 days of records.")


if __name__ == "__main__":
    sys.exit(main())
