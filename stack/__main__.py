"""`python -m stack COMMAND`: what ./run.sh calls to manage the native stack.

  run      start every server and service, print the URLs, stop all on Ctrl-C
  up       start servers (and services with --services), then return
  down     stop what this run directory started (services first)
  status   each server and service: state, port, pid, restarts, last exit
  logs     show (or follow with -f) one log, or list them
  install  download (or build) every pinned server and jar into the cache, start nothing
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time

from meteoflow.contracts import SupervisorState, describe_exit
from meteoflow.logs import setup_logging
from meteoflow.metrics import METRICS_PORT_SETTINGS
from meteoflow.settings import SettingsError, load_settings
from stack import install, spinner
from stack.logrotate import rotate_logs
from stack.private import open_private_append, private_dir, write_private
from stack.process import StackError, Status, pid_alive, tail
from stack.servers import servers
from stack.services import SERVICES, services
from stack.supervisor import Supervisor, read_state


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


def cmd_up(settings, names: list[str], with_services: bool) -> None:
    srv, svc = _select(settings, names)
    if not names and not with_services:
        svc = []
    for proc in srv + svc:
        try:
            proc.start()
        finally:
            # Released only once it runs (or failed to): a supervisor that saw it neither held nor
            # running meanwhile would start a second copy, and the pid file would name only one.
            proc.held_file.unlink(missing_ok=True)


def cmd_down(settings, names: list[str]) -> None:
    srv, svc = _select(settings, names)
    for proc in list(reversed(svc)) + list(reversed(srv)):
        if names:
            private_dir(proc.held_file.parent)
            write_private(proc.held_file, "")  # before stopping it: the supervisor must not see an unexpected exit
        else:
            proc.held_file.unlink(missing_ok=True)
        if proc.stop():
            print(f"stopped {proc.name}")


def status_table(rows: list[Status], supervised: SupervisorState | None, supervisor_running: bool,
                 width: int = 120) -> str:
    """One line per process: its state, port, pid, and from the supervisor's state file how
    often it was restarted and why it last exited (the file outlives the supervisor)."""
    head = f"{'NAME':<16}{'STATE':<11}{'PORT':<7}{'PID':<9}{'RESTARTS':<10}"
    room = max(20, width - len(head) - 1)
    lines = [head + "LAST EXIT"]
    for st in rows:
        sup = supervised.processes.get(st.name) if supervised else None
        state = st.state
        # What the supervisor knows says more than "down" (or than "up" during a crash-loop episode).
        if supervisor_running and sup and (sup.state == "crash-loop" or (st.state == "down" and sup.state != "up")):
            state = sup.state
        last = describe_exit(sup.last_exit_code, sup.last_error) if sup and sup.last_exit_at else "-"
        if len(last) > room:
            last = last[: room - 3] + "..."
        restarts = sup.restarts if sup else "-"
        lines.append(f"{st.name:<16}{state:<11}{st.port or '-':<7}{st.pid or '-':<9}{restarts:<10}{last}")
    return "\n".join(lines)


def cmd_status(settings) -> int:
    rows = [p.status() for p in servers(settings) + services(settings)]
    running = _supervisor_pid(settings) is not None
    print(status_table(rows, read_state(settings), running, shutil.get_terminal_size((120, 24)).columns))
    return 0


def print_urls(settings) -> None:
    print("\nMeteoflow is running:")
    print(f"  web app              http://{settings.bind_host}:{settings.webapp_port}/")
    print(f"  forecasting API docs http://{settings.bind_host}:{settings.forecast_api_port}/docs")
    print(f"  Elasticsearch        {settings.es_url}")
    print(f"  Kafka bootstrap      {settings.kafka_bootstrap}")
    print(f"  MongoDB (FerretDB)   mongodb://{settings.bind_host}:{settings.mongo_port}/{settings.mongo_db}")
    ports = ", ".join(f"{name} {getattr(settings, setting)}" for name, setting in METRICS_PORT_SETTINGS.items()
                      if getattr(settings, setting))
    host = settings.metrics_bind_host or settings.bind_host
    print(f"  Prometheus metrics   http://{host}:PORT/metrics ({ports or 'exporters off'}), and /metrics of the "
          "web app and the API")
    print(f"  logs                 {settings.run_dir / 'logs'}  (./run.sh logs NAME)")
    print("Stop with Ctrl-C or ./run.sh down\n", flush=True)


def _supervisor_pid_file(settings):
    return settings.run_dir / "pids" / "run.pid"


def _supervisor_pid(settings) -> int | None:
    """The pid of the `./run.sh` supervising this run directory, if one runs."""
    try:
        pid = int(_supervisor_pid_file(settings).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) and "stack run" in _cmdline(pid) else None


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_run(settings) -> int:
    """Start everything, then supervise every server and service (stack.supervisor): one that
    exits is restarted after a growing delay, since each resumes where it stopped (Kafka
    offsets, Spark checkpoint, idempotent writes); one that keeps exiting is a crash-loop,
    logged for the alerting service. Services reconnect to a restarted server by themselves."""
    if settings.effective_source == "simulator":
        print("No OpenWeatherMap API key set (METEOFLOW_OWM_API_KEY): the producer uses the offline simulator.")
    else:
        print(f"Producer source: {settings.effective_source}")
    install.install_all(settings)
    stopping = False

    def _stop(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    pid_file = _supervisor_pid_file(settings)
    private_dir(settings.run_dir, keep_search=True)  # see ManagedProcess.start
    private_dir(pid_file.parent)
    write_private(pid_file, str(os.getpid()))
    log_dir = private_dir(settings.run_dir / "logs")
    rotate_logs(log_dir, settings.log_max_bytes, settings.log_backups)
    # The supervisor's JSON lines go to its own log (and Kafka); the terminal gets plain words.
    log = setup_logging("supervisor", settings, stream=open_private_append(log_dir / "supervisor.log", text=True,
                                                                          buffering=1))
    srv, svc = _select(settings, [])
    try:
        for proc in srv + svc:
            proc.held_file.unlink(missing_ok=True)
            try:
                proc.start()
            except StackError as exc:
                if proc in srv:
                    raise  # nothing works without the servers: a clear error beats a crash-loop
                print(f"error: {exc}\n(it will be restarted)", file=sys.stderr, flush=True)
        print_urls(settings)
        Supervisor(settings, srv + svc, log, say=_say, stopping=lambda: stopping).run()
    finally:
        print("stopping Meteoflow ...")
        cmd_down(settings, [])
        pid_file.unlink(missing_ok=True)
    return 0


def stop_supervisor(settings) -> None:
    """`./run.sh down` from another terminal also ends a `./run.sh` in the foreground."""
    pid_file = _supervisor_pid_file(settings)
    pid = _supervisor_pid(settings)
    if pid is not None and pid != os.getpid():
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
    install.install_all(settings)
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
    sub.add_parser("status", help="show each server and service, its restarts and last exit")
    logs = sub.add_parser("logs", help="show a log")
    logs.add_argument("name", nargs="?")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=50)
    sub.add_parser("install", help="download the pinned servers into the cache")
    args = parser.parse_args(argv)
    spinner.enable()
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
