"""`python -m producer`: scheduled weather batches to Kafka (`python -m producer import ...`:
history, see producer/import_cli.py).

Flags override settings (METEOFLOW_* environment variables or .env). Bad flags, settings
or files end with one line on stderr and exit code 2; a rejected API key with exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from meteoflow.settings import Settings, SettingsError, load_settings
from producer.regions import DEFAULT_REGIONS_FILE, RegionsError, load_regions

EXIT_USAGE = 2
EXIT_FATAL = 1


class UsageError(Exception):
    """A flag, setting or file the producer cannot start with."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line instead of usage + message
        raise UsageError(f"{message} (see python -m producer --help)")


def positive_number(unit: str):
    """An argparse type: a number greater than 0, in `unit`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number of {unit}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
        return value
    return parse


_positive_seconds = positive_number("seconds")


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m producer",
        description="Fetch the weather of every region on a schedule and publish each run to Kafka as one "
                    "batch (one message per region, key = region id). Settings come from METEOFLOW_* "
                    "environment variables or .env; these flags override them.",
    )
    parser.add_argument(
        "--source", choices=["openweathermap", "simulator", "replay"],
        help="where the weather comes from (default: METEOFLOW_PRODUCER_SOURCE, 'auto' = openweathermap when "
             "METEOFLOW_OWM_API_KEY is set, else the offline simulator)")
    parser.add_argument("--once", action="store_true",
                        help="do one run and exit (the simulator then emits one batch at the current time, "
                             "without its back-fill)")
    parser.add_argument("--regions", type=_existing_file, metavar="FILE",
                        help=f"regions JSON file (default: METEOFLOW_REGIONS_FILE, else {DEFAULT_REGIONS_FILE.name}: "
                             "the 14 regions of Senegal)")
    parser.add_argument("--interval", type=_positive_seconds, metavar="SECONDS",
                        help="seconds between runs (default: METEOFLOW_PRODUCER_INTERVAL_SECONDS = 900; for the "
                             "simulator, the live interval METEOFLOW_SIMULATOR_INTERVAL_SECONDS = 30)")
    parser.add_argument("--replay-file", type=_existing_file, metavar="FILE",
                        help="JSONL of recorded OpenWeatherMap responses for --source replay, one "
                             '{"region_id": ..., "response": {...}} per line (default: METEOFLOW_REPLAY_FILE)')
    return parser


def settings_from_args(args: argparse.Namespace, base: Settings) -> Settings:
    """Flags over settings. Values were validated by the parser, so model_copy is safe."""
    update: dict = {}
    if args.source:
        update["producer_source"] = args.source
    if args.regions:
        update["regions_file"] = args.regions
    if args.replay_file:
        update["replay_file"] = args.replay_file
    settings = base.model_copy(update=update)
    if args.interval is not None:
        field = "simulator_interval_seconds" if settings.effective_source == "simulator" else "producer_interval_seconds"
        settings = settings.model_copy(update={field: args.interval})
    return settings


def check_ready(settings: Settings) -> None:
    source = settings.effective_source
    if source == "openweathermap" and not settings.owm_api_key:
        raise UsageError("the openweathermap source needs an API key: set METEOFLOW_OWM_API_KEY "
                         "(or use --source simulator)")
    if source == "replay":
        if settings.replay_file is None:
            raise UsageError("the replay source needs a file: --replay-file FILE or METEOFLOW_REPLAY_FILE")
        if not Path(settings.replay_file).is_file():
            raise UsageError(f"METEOFLOW_REPLAY_FILE: no such file: {settings.replay_file}")


def describe_source(settings: Settings, once: bool) -> str:
    source = settings.effective_source
    if source == "simulator":
        why = ("no OpenWeatherMap API key set (METEOFLOW_OWM_API_KEY): using the offline simulator"
               if settings.producer_source == "auto" else "offline simulator")
        if once:
            pace = "one batch at the current time"
        else:
            catch_up = settings.simulator_step_minutes * 60 / settings.simulator_speed
            pace = (f"back-fill {settings.simulator_backfill_hours} h at {settings.simulator_speed:g}x (one "
                    f"{settings.simulator_step_minutes}-minute step every {catch_up:g}s), then live every "
                    f"{settings.simulator_interval_seconds:g}s")
        return f"source simulator ({why}; seed {settings.simulator_seed}; {pace})"
    if source == "openweathermap":
        api = "One Call 3.0" if settings.owm_api == "onecall" else "Current Weather 2.5"
        per_minute, per_day = settings.owm_budget()
        extra = f", budget {per_minute}/min and {per_day:,}/day"
        if settings.owm_api == "onecall" and settings.owm_backfill_hours and not once:
            extra += f", first-start back-fill {settings.owm_backfill_hours} h (timemachine)"
        return f"source openweathermap ({api}{extra}) at {settings.owm_base_url}"
    return f"source replay from {settings.replay_file}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["import"]:
        from producer import import_cli

        return import_cli.main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
        settings = settings_from_args(args, load_settings())
        check_ready(settings)
        regions = load_regions(settings.regions_file)
    except (UsageError, SettingsError, RegionsError) as exc:
        print(f"producer: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return serve(settings, regions, once=args.once)


def serve(settings: Settings, regions, once: bool = False) -> int:
    from meteoflow.logs import setup_logging
    from meteoflow.metrics import Exporter, ProducerMetrics, serve_metrics, service_registry
    from producer.run import SERVICE, KafkaPublisher, Producer
    from producer.sources import FatalSourceError, make_source
    from producer.sources.replay import ReplayFileError

    log = setup_logging("producer", settings)
    interval = "once" if once else f"every {settings.effective_interval_seconds:g}s"
    log.info("producer starting: %s; %d regions from %s; %s; topic %s on %s", describe_source(settings, once),
             len(regions), settings.regions_file or DEFAULT_REGIONS_FILE, interval, settings.topic_observations,
             settings.kafka_bootstrap)
    backfill_hours = first_start_backfill_hours(settings, once)
    if settings.effective_source == "openweathermap":
        from producer.budget import budget_problems

        for problem in budget_problems(settings, len(regions), backfill_hours):
            log.warning("request budget: %s", problem)
    try:
        source = make_source(settings, live_only=once)
    except (FatalSourceError, ReplayFileError) as exc:
        log.error("producer cannot start: %s", exc)
        return EXIT_USAGE
    stop = threading.Event()

    def request_stop(signum, frame):  # noqa: ARG001 - the current run finishes first
        if not stop.is_set():
            log.info("signal %s: stopping after the current run", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    registry = service_registry(SERVICE)
    metrics = ProducerMetrics(registry)
    # A single run ends before any scrape could see it: --once serves no /metrics (and so never
    # collides with the exporter of a producer already running).
    exporter = Exporter(SERVICE) if once else serve_metrics(SERVICE, settings, registry)
    try:
        publisher = KafkaPublisher(settings, metrics=metrics)
    except Exception as exc:  # noqa: BLE001 - e.g. NoBrokersAvailable: say where we looked
        log.error("producer cannot reach Kafka at %s: %s: %s", settings.kafka_bootstrap, type(exc).__name__, exc)
        source.close()
        exporter.close()
        return EXIT_FATAL
    code = 0
    backfill = start_first_backfill(settings, regions, publisher, stop, log) if backfill_hours else None
    try:
        runs = Producer(settings, regions, source, publisher, log, metrics=metrics).run_forever(
            stop, max_runs=1 if once else None)
        log.info("producer stopped after %d run(s)%s", runs, " (replay finished)" if source.exhausted else "")
    except FatalSourceError as exc:
        log.error("producer stopped: %s", exc)
        code = EXIT_FATAL
    finally:
        if backfill is not None:
            stop.set()  # the back-fill stops after its current chunk, its progress kept for the next start
            backfill.join(timeout=120)
        source.close()
        publisher.close()
        exporter.close()
        for handler in logging.getLogger().handlers:
            handler.flush()
    return code


# --- first start with One Call 3.0: the last hours through the timemachine importer -------------
FIRST_START_JOB = "first-start-openweathermap"


def first_start_backfill_hours(settings: Settings, once: bool) -> int:
    """Hours the first start back-fills: with One Call 3.0 only (Current Weather 2.5 has no history)."""
    if once or settings.effective_source != "openweathermap" or settings.owm_api != "onecall":
        return 0
    return settings.owm_backfill_hours


def start_first_backfill(settings: Settings, regions, publisher, stop: threading.Event, log) -> threading.Thread:
    """Back-fill beside the schedule (the live runs are not held up), in its own thread and HTTP
    session, within the same request budget. Done once: a finished job is not repeated at the next
    start; a stopped one resumes."""
    from producer.budget import RequestBudget
    from producer.importer import HistoryImportError, TimemachineHistory, run_import
    from producer.sources.base import FatalSourceError
    from producer.sources.openweathermap import OwmClient

    def work():
        client = OwmClient(settings, budget=RequestBudget.for_settings(settings, api="onecall"))
        try:
            history = TimemachineHistory(client, regions, settings.owm_backfill_hours)
            outcome = run_import(settings, history, publisher, stop=stop, job=FIRST_START_JOB, logger=log)
            if outcome.state == "finished":
                log.info("first-start back-fill done: %d record(s) over %d h", outcome.progress.records,
                         settings.owm_backfill_hours)
        except (HistoryImportError, FatalSourceError) as exc:
            log.error("first-start back-fill stopped: %s", exc)
        except Exception:  # noqa: BLE001 - the live schedule goes on without its history
            log.exception("first-start back-fill failed")
        finally:
            client.session.close()

    thread = threading.Thread(target=work, name="first-start-backfill", daemon=True)
    thread.start()
    return thread
