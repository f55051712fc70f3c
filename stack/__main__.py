"""`python -m stack COMMAND`: what ./run.sh calls to manage the native stack.

  run      start every server and service, print the URLs, stop all on Ctrl-C
  up       start servers (and services with --services), then return
  down     stop what this run directory started (services first)
  status   each server and service: state, port, pid
  logs     show (or follow with -f) one log, or list them
  install  download every pinned server into the cache, start nothing
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from meteoflow.settings import SettingsError, load_settings
from stack import install
from stack.process import StackError, pid_alive, tail
from stack.servers import servers
from stack.services import SERVICES, services


def _select(settings, names: list[str]):
    """(servers, services) named, or all of them when no name is given."""
    if not names:
        return servers(settings), services(settings)
    server_names = [n for n in names if n not in SERVICES]
    service_names = [n for n in names if n in SERVICES]
    return (
        servers(settings, server_names) if server_names else [],
        services(settings, service_names) if service_names else [],
    )


def _held_file(settings, name: str):
    """Marks a service the user stopped by name: the supervisor of `./run.sh` leaves it down."""
    return settings.run_dir / "pids" / f"{name}.held"


def cmd_up(settings, names: list[str], with_services: bool) -> None:
    srv, svc = _select(settings, names)
    if not names and not with_services:
        svc = []
    for proc in srv + svc:
        _held_file(settings, proc.name).unlink(missing_ok=True)
        proc.start()


def cmd_down(settings, names: list[str]) -> None:
    srv, svc = _select(settings, names)
    for proc in list(reversed(svc)) + list(reversed(srv)):
        if names:
            _held_file(settings, proc.name).parent.mkdir(parents=True, exist_ok=True)
            _held_file(settings, proc.name).touch()
        else:
            _held_file(settings, proc.name).unlink(missing_ok=True)
        if proc.stop():
            print(f"stopped {proc.name}")


def cmd_status(settings) -> int:
    rows = [p.status() for p in servers(settings) + services(settings)]
    print(f"{'NAME':<16}{'STATE':<11}{'PORT':<7}{'PID':<9}")
    for st in rows:
        print(f"{st.name:<16}{st.state:<11}{st.port or '-':<7}{st.pid or '-':<9}")
    return 0


def print_urls(settings) -> None:
    print("\nMeteoflow is running:")
    print(f"  web app              http://{settings.bind_host}:{settings.webapp_port}/")
    print(f"  forecasting API docs http://{settings.bind_host}:{settings.forecast_api_port}/docs")
    print(f"  Elasticsearch        {settings.es_url}")
    print(f"  Kafka bootstrap      {settings.kafka_bootstrap}")
    print(f"  MongoDB (FerretDB)   mongodb://{settings.bind_host}:{settings.mongo_port}/{settings.mongo_db}")
    print(f"  logs                 {settings.run_dir / 'logs'}  (./run.sh logs NAME)")
    print("Stop with Ctrl-C or ./run.sh down\n", flush=True)


RESTART_BACKOFF_SECONDS = 30.0


def _supervisor_pid_file(settings):
    return settings.run_dir / "pids" / "run.pid"


def cmd_run(settings) -> int:
    """Start everything, then watch the services: one that exits is restarted (at most once
    per RESTART_BACKOFF_SECONDS), since each resumes where it stopped (Kafka offsets,
    Spark checkpoint, idempotent writes)."""
    if settings.effective_source == "simulator":
        print("No OpenWeatherMap API key set (METEOFLOW_OWM_API_KEY): the producer uses the offline simulator.")
    else:
        print(f"Producer source: {settings.effective_source}")
    stopping = False

    def _stop(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    pid_file = _supervisor_pid_file(settings)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    last_restart: dict[str, float] = {}
    try:
        cmd_up(settings, [], with_services=True)
        print_urls(settings)
        while not stopping:
            time.sleep(1)
            for svc in services(settings):
                if stopping or svc.recorded_pid() is not None or _held_file(settings, svc.name).exists():
                    continue
                if time.monotonic() - last_restart.get(svc.name, -RESTART_BACKOFF_SECONDS) < RESTART_BACKOFF_SECONDS:
                    continue
                last_restart[svc.name] = time.monotonic()
                print(f"{svc.name} exited; restarting it (./run.sh logs {svc.name})", flush=True)
                try:
                    svc.start()
                except StackError as exc:
                    print(f"error: {exc}", file=sys.stderr, flush=True)
    finally:
        print("stopping Meteoflow ...")
        cmd_down(settings, [])
        pid_file.unlink(missing_ok=True)
    return 0


def stop_supervisor(settings) -> None:
    """`./run.sh down` from another terminal also ends a `./run.sh` in the foreground."""
    pid_file = _supervisor_pid_file(settings)
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return
    if pid != os.getpid() and pid_alive(pid) and "stack run" in _cmdline(pid):
        print(f"stopping the running ./run.sh (pid {pid}) and everything it started")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    pid_file.unlink(missing_ok=True)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def cmd_logs(settings, name: str | None, follow: bool, lines: int) -> int:
    log_dir = settings.run_dir / "logs"
    if not name:
        for path in sorted(log_dir.glob("*.log")):
            print(path.stem)
        return 0
    path = log_dir / f"{name}.log"
    if not path.exists():
        print(f"no log for {name!r} in {log_dir}", file=sys.stderr)
        return 2
    print(tail(path, lines))
    if follow:
        with open(path) as fh:
            fh.seek(0, 2)
            try:
                while True:
                    line = fh.readline()
                    if line:
                        print(line, end="", flush=True)
                    else:
                        time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    return 0


def cmd_install(settings) -> int:
    started = time.monotonic()
    install.java_home(settings)
    install.kafka_libs(settings)
    install.elasticsearch_home(settings)
    install.ferretdb_binary(settings)
    print(f"installed in {time.monotonic() - started:.0f} s; cache {settings.cache_dir} holds "
          f"{install.cache_size(settings) / 1e6:.0f} MB")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start everything and stay in the foreground")
    up = sub.add_parser("up", help="start servers (names optional)")
    up.add_argument("names", nargs="*", help="servers or services to start (default: all servers)")
    up.add_argument("--services", action="store_true", help="also start every available service")
    down = sub.add_parser("down", help="stop what was started")
    down.add_argument("names", nargs="*")
    sub.add_parser("status", help="show each server and service")
    logs = sub.add_parser("logs", help="show a log")
    logs.add_argument("name", nargs="?")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=50)
    sub.add_parser("install", help="download the pinned servers into the cache")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "run":
            return cmd_run(settings)
        if args.command == "up":
            cmd_up(settings, args.names, args.services)
            print_urls(settings)
            return 0
        if args.command == "down":
            if not args.names:
                stop_supervisor(settings)  # it stops everything itself, then we make sure
            cmd_down(settings, args.names)
            return 0
        if args.command == "status":
            return cmd_status(settings)
        if args.command == "logs":
            return cmd_logs(settings, args.name, args.follow, args.lines)
        if args.command == "install":
            return cmd_install(settings)
    except (SettingsError, StackError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
