"""`python -m producer import`: history through Kafka, marked as back-fill (see producer/importer.py).

    python -m producer import --source simulator --days 365
    python -m producer import --source openweathermap --days 2          # One Call 3.0 timemachine
    python -m producer import --source isd --stations isd-history.csv 616410-99999-2024.gz ...

Exit codes: 0 done, 3 paused (the key's budget is spent for today, a stop was asked, or requests
failed: run the same command again to resume), 2 bad arguments, 1 failed (Kafka, a rejected key).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from meteoflow.contracts import parse_utc
from meteoflow.settings import Settings, SettingsError, load_settings
from producer.cli import EXIT_FATAL, EXIT_USAGE, UsageError, _existing_file, _Parser, positive_number
from producer.regions import Region, RegionsError, load_regions

EXIT_PAUSED = 3


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _utc_time(text: str) -> datetime:
    try:
        return parse_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an ISO 8601 time with a zone, e.g. 2026-01-01T00:00Z; got {text!r}") \
            from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m producer import",
        description="Import history through Kafka as back-fill batches (batch ids 'backfill-...'), resumably: "
                    "progress is kept in <run_dir>/imports/<job>.json and the same command resumes a stopped import.")
    parser.add_argument("--source", required=True, choices=["openweathermap", "isd", "simulator"],
                        help="openweathermap: One Call 3.0 timemachine, one call per region and hour, within the "
                             "key's request budget; isd: NOAA ISD-Lite files or Global Hourly CSVs; simulator: the offline simulator")
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--days", type=_positive_int, help="history to import, ending at --end (openweathermap, simulator)")
    span.add_argument("--hours", type=_positive_int, help="same, in hours")
    parser.add_argument("--end", type=_utc_time, metavar="TIME",
                        help="end of the range, UTC (default: the start of the current hour, fixed at the first run)")
    parser.add_argument("--regions", type=_existing_file, metavar="FILE", help="regions JSON file (default: "
                        "METEOFLOW_REGIONS_FILE, else the 14 regions of Senegal)")
    parser.add_argument("--seed", type=int, help="simulator seed (default: METEOFLOW_SIMULATOR_SEED)")
    parser.add_argument("files", nargs="*", type=_existing_file, metavar="ISD_FILE",
                        help="for --source isd: ISD-Lite files (USAF-WBAN-YEAR, gzipped or not) or Global Hourly "
                             "CSVs (*.csv)")
    parser.add_argument("--stations", type=_existing_file, metavar="CSV",
                        help="station coordinates: NOAA's isd-history.csv or a CSV with station,lat,lon")
    parser.add_argument("--station", action="append", default=[], metavar="USAF-WBAN=LAT,LON",
                        help="one station's coordinates (repeatable; over --stations)")
    parser.add_argument("--max-distance-km", type=positive_number("km"), metavar="KM",
                        help="a station farther than this from every region is refused (default: "
                             "METEOFLOW_IMPORT_MAX_DISTANCE_KM = 50)")
    parser.add_argument("--restart", action="store_true", help="forget this import's progress and start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    return parser


def isd_files(args: argparse.Namespace, settings: Settings, regions: list[Region]) -> list[tuple[Path, Region]]:
    from producer.sources.isd import (
        global_hourly_station, is_global_hourly, load_stations, nearest_region, parse_station_arg, station_of_file,
    )

    if not args.files:
        raise UsageError("--source isd needs ISD-Lite files (e.g. 616410-99999-2024.gz)")
    stations = {}
    try:
        if args.stations:
            stations.update(load_stations(args.stations))
        for text in args.station:
            station = parse_station_arg(text)
            stations[station.id] = station
        limit = args.max_distance_km or settings.import_max_distance_km
        mapped = []
        for path in args.files:
            if is_global_hourly(path):  # the rows carry the station's coordinates
                mapped.append((path, nearest_region(global_hourly_station(path), regions, limit)))
                continue
            ident = station_of_file(path)
            if ident not in stations:
                raise ValueError(f"{path}: no coordinates for station {ident}: give --stations isd-history.csv or "
                                 f"--station {ident}=LAT,LON")
            mapped.append((path, nearest_region(stations[ident], regions, limit)))
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    return mapped


def make_history(args: argparse.Namespace, settings: Settings, regions: list[Region]):
    from producer.importer import IsdHistory, SimulatorHistory, TimemachineHistory, owm_reserve

    if args.source == "isd":
        if args.days or args.hours or args.end:
            raise UsageError("--days/--hours/--end do not apply to --source isd (the files say when)")
        return IsdHistory(isd_files(args, settings, regions))
    if args.files:
        raise UsageError(f"files are only read by --source isd, not {args.source}")
    hours = args.hours or (args.days or 0) * 24
    if not hours:
        raise UsageError(f"--source {args.source} needs --days N or --hours N")
    if args.source == "simulator":
        seed = settings.simulator_seed if args.seed is None else args.seed
        return SimulatorHistory(regions, hours, seed, end=args.end)
    if not settings.owm_api_key:
        raise UsageError("--source openweathermap needs an API key with One Call 3.0: set METEOFLOW_OWM_API_KEY")
    from producer.budget import RequestBudget
    from producer.sources.openweathermap import OwmClient

    client = OwmClient(settings, budget=RequestBudget.for_settings(settings, api="onecall"),
                       reserve=owm_reserve(settings, len(regions)))
    return TimemachineHistory(client, regions, hours, end=args.end)


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings()
        regions = load_regions(args.regions or settings.regions_file)
        history = make_history(args, settings, regions)
    except (UsageError, SettingsError, RegionsError) as exc:
        print(f"producer import: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run(settings, history, restart=args.restart, progress_bar=not args.no_progress)


def run(settings: Settings, history, restart: bool = False, progress_bar: bool = True) -> int:
    from meteoflow.logs import setup_logging
    from producer.importer import HistoryImportError, run_import
    from producer.run import KafkaPublisher
    from producer.sources.base import FatalSourceError

    log = setup_logging("importer", settings)
    stop = threading.Event()

    def request_stop(signum, frame):  # noqa: ARG001 - the current chunk finishes and is recorded first
        log.info("signal %s: stopping after the current chunk", signal.Signals(signum).name)
        stop.set()

    try:
        publisher = KafkaPublisher(settings)
    except Exception as exc:  # noqa: BLE001 - e.g. NoBrokersAvailable: say where we looked
        log.error("import cannot reach Kafka at %s: %s: %s", settings.kafka_bootstrap, type(exc).__name__, exc)
        return EXIT_FATAL
    # Installed once connected: until then nothing is half done, and a signal ends the process at once.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        outcome = run_import(settings, history, publisher, restart=restart, stop=stop, progress_bar=progress_bar,
                             logger=log)
    except (HistoryImportError, FatalSourceError) as exc:
        log.error("import stopped: %s", exc)
        return EXIT_FATAL
    finally:
        publisher.close()
        close = getattr(getattr(history, "client", None), "session", None)
        if close is not None:
            close.close()
    return 0 if outcome.state == "finished" else EXIT_PAUSED
