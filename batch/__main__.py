"""`python -m batch recompute --from YYYY-MM-DD --to YYYY-MM-DD [--region ID]` (also `./run.sh recompute ...`),
`python -m batch train-rain [--iterations N]` and `python -m batch predict-rain` (batch/rain.py), and
`python -m batch schedule`: both rain jobs on their periods (batch/schedule.py, the rain_model service).

A bad flag is a one-line error naming it, exit code 2, before Spark starts. Exit code 3: the archive
cannot serve the job yet (missing, too short, no rain seen, no model trained), which a new deployment
outgrows; the schedule retries it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from pydantic import TypeAdapter, ValidationError

from batch.schedule import EXIT_NOT_READY
from meteoflow.contracts import RegionId
from meteoflow.errors import describe_errors


def iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a date (YYYY-MM-DD, a UTC day)") from None


def region_id(value: str) -> str:
    try:
        return TypeAdapter(RegionId).validate_python(value)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"'{value}' is not a region id: {describe_errors(exc)}") from None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m batch", description="Batch jobs over the raw Parquet archive")
    commands = top.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("recompute", help="rebuild hourly and daily statistics of a date range from the archive")
    rec.add_argument("--from", dest="start", type=iso_date, required=True, help="first UTC day (YYYY-MM-DD)")
    rec.add_argument("--to", dest="end", type=iso_date, required=True, help="last UTC day, included (YYYY-MM-DD)")
    rec.add_argument("--region", type=region_id, help="only this region (default: every region in the archive)")
    train = commands.add_parser("train-rain", help="train and evaluate the rain classifiers on the archive")
    train.add_argument("--iterations", type=int, choices=range(1, 201), default=30, metavar="1-200",
                       help="boosting iterations of the gradient-boosted trees (default 30)")
    commands.add_parser("predict-rain", help="store every region's chance of rain in the next hours")
    commands.add_parser("schedule", help="run train-rain and predict-rain on their periods until stopped "
                                         "(METEOFLOW_RAIN_TRAIN_HOURS, METEOFLOW_RAIN_PREDICT_MINUTES)")
    return top


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    top = parser()
    args = top.parse_args(argv)
    if args.command == "recompute" and args.end < args.start:
        top.error(f"argument --to: {args.end} is before --from {args.start}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from meteoflow.logs import start_service

    if args.command == "schedule":
        return schedule()
    settings, log = start_service("batch")
    from batch import rain
    from batch.recompute import recompute
    from meteoflow.mongo import database, make_mongo_client
    from streaming.spark import spark_session

    spark = spark_session(settings, app_name=f"meteoflow-{args.command}",
                          extra_conf={"spark.ui.showConsoleProgress": "false"})
    client = make_mongo_client(settings)
    say = lambda line: print(line, flush=True)  # noqa: E731
    try:
        db = database(settings, client)
        if args.command == "train-rain":
            rain.train(spark, db, settings.archive_location, settings.models_location, iterations=args.iterations,
                       progress=say)
            return 0
        if args.command == "predict-rain":
            rain.predict(spark, db, settings.archive_location, progress=say)
            return 0
        report = recompute(spark, db, settings.archive_location, args.start, args.end, args.region, progress=say)
    except (FileNotFoundError, rain.NotTrainable) as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return EXIT_NOT_READY
    finally:
        client.close()
        spark.stop()
    print(f"done: {report.region_days} region-days, {report.observations} observations -> {report.hourly} hourly "
          f"({report.hourly_written} written) and {report.daily} daily ({report.daily_written} written) statistics"
          + (f"; {report.skipped_rows} archive rows skipped" if report.skipped_rows else ""))
    log.info("recompute %s..%s done", args.start, args.end, extra={"fields": {"meteoflow.recompute": vars(report)}})
    return 0


def schedule() -> int:
    """The rain_model service: until SIGTERM/SIGINT, run the rain jobs when they are due."""
    import signal
    import threading

    from batch.schedule import RainSchedule, RainScheduler, stored_state
    from meteoflow.logs import start_service
    from meteoflow.mongo import database

    settings, log = start_service("rain_model")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    plan = RainSchedule.from_settings(settings)
    log.info("rain schedule: retrain every %s, rain chances every %s",
             plan.train_every or "never (by command)", plan.predict_every or "never (by command)")
    db = database(settings)
    RainScheduler(lambda: stored_state(db), plan, log).run(stop, start_delay=settings.archive_trigger_seconds)
    log.info("rain schedule stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
