"""The supervisor behind `./run.sh`: watches every server and service it started and
applies `stack.policy` to them (restart with back-off, crash-loop, held by the user).

This is the I/O side: probing processes, reading the last error of a log, logging the
events (JSON through meteoflow.logs, plain words on the terminal), the state file
`./run.sh status` reads, and the rotation of the logs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from meteoflow.contracts import (
    SERVICE_CRASH_LOOP_ACTION,
    SERVICE_EXITED_ACTION,
    SupervisedProcess,
    SupervisorEvent,
    SupervisorState,
)
from meteoflow.logs import mask_secrets
from meteoflow.settings import Settings
from stack.logrotate import rotate_logs
from stack.policy import Policy, Supervision, describe
from stack.private import private_dir, write_private
from stack.process import ManagedProcess, tail

ERROR_MAX_CHARS = 300
ROTATE_EVERY_SECONDS = 5.0
# A line that reports an error: Java/Go/Python levels and exception names, and our own JSON lines.
_ERROR_LINE = re.compile(r'\b(ERROR|FATAL|CRITICAL|SEVERE)\b|Error|Exception|panic:|"log\.level": ?"(error|critical)"')
_JAVA_FRAME = re.compile(r"^\s+(at |\.\.\. \d+ more)")  # names classes, says nothing of the error
_LEVELS = {SERVICE_EXITED_ACTION: logging.WARNING, SERVICE_CRASH_LOOP_ACTION: logging.ERROR}


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text).rstrip()


def _readable(line: str) -> str:
    """One of our JSON log lines as its message (and error); secrets masked, printable, short."""
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            error = ": ".join(str(doc[k]) for k in ("error.type", "error.message") if doc.get(k))
            line = f"{doc['message']} ({error})" if error else doc["message"]
    line = _printable(mask_secrets(line)).strip()
    return line if len(line) <= ERROR_MAX_CHARS else line[: ERROR_MAX_CHARS - 3] + "..."


def last_error_line(text: str, or_last_line: bool = True) -> str | None:
    """The last line of a log that reports an error (for a Python traceback, its final line
    naming the exception), else the last line (unless `or_last_line` is False); None when there
    is no line at all."""
    lines = [line for line in map(_printable, text.splitlines()) if line.strip()]
    found, in_traceback = None, False
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback and not line[0].isspace():
            found, in_traceback = line, False  # the exception that ends the traceback
        elif not in_traceback and _ERROR_LINE.search(line) and not _JAVA_FRAME.match(line):
            found = line
    if found is None and lines and or_last_line:
        found = lines[-1]
    return None if found is None else _readable(found)


def last_error_in(log_file: Path, start: int = 0, or_last_line: bool = True) -> str | None:
    """The last error of what a process wrote to its log from byte `start` on."""
    if not log_file.exists():
        return None
    return last_error_line(tail(log_file, 200, start), or_last_line)


def state_file(settings: Settings) -> Path:
    return settings.run_dir / "pids" / "supervisor.json"


def read_state(settings: Settings) -> SupervisorState | None:
    try:
        return SupervisorState.model_validate_json(state_file(settings).read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_state(path: Path, state: SupervisorState) -> None:
    """Atomically: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write_private(tmp, state.model_dump_json(indent=1))
    os.replace(tmp, path)


class Supervisor:
    def __init__(self, settings: Settings, processes: list[ManagedProcess], log: logging.Logger,
                 say: Callable[[str], None] = print, stopping: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self.settings = settings
        self.processes = processes
        self.log = log
        self.say = say
        self.stopping = stopping
        self.clock = clock
        self.wall_clock = wall_clock
        self.policy = Policy.from_settings(settings)
        self.supervision = Supervision(self.policy, [p.name for p in processes], clock())
        self._seen_pid: dict[str, int] = {}  # the pid last seen running, per process
        self._rotated_at: float | None = None

    def run(self, interval: float = 1.0) -> None:
        while not self.stopping():
            time.sleep(interval)
            self.check()

    def check(self) -> None:
        """One round: every process, then the logs' sizes, then the state file."""
        for proc in self.processes:
            if self.stopping():
                return
            self._check(proc)
        if self._rotated_at is None or self.clock() - self._rotated_at >= ROTATE_EVERY_SECONDS:
            rotate_logs(self.settings.run_dir / "logs", self.settings.log_max_bytes, self.settings.log_backups)
            self._rotated_at = self.clock()
        self.write_state()

    def _check(self, proc: ManagedProcess) -> None:
        name, now = proc.name, self.clock()
        pid = proc.recorded_pid()
        # Looked at after the pid: `./run.sh down NAME` marks the process before stopping it.
        if proc.held_file.exists():
            self.supervision.hold(name, now)
            return
        self.supervision.release(name, now)
        if pid is not None:
            self._seen_pid[name] = pid
            self._emit(self.supervision.running(name, now))
            return
        p = self.supervision.processes[name]
        if p.state == "up" or p.up_since is not None:  # it was meant to be running
            code = self._exit_code(proc)
            # Killed by a signal, a process's last line is whatever it was doing (a Spark warning),
            # not why it ended: only a line that reports an error is worth naming then.
            error = last_error_in(proc.log_file, proc.log_offset, or_last_line=code is None or code >= 0)
            self._emit(self.supervision.exited(name, now, code, error))
        if self.supervision.restart_due(name, now) and not self.stopping():
            self._restart(proc)

    def _exit_code(self, proc: ManagedProcess) -> int | None:
        seen = self._seen_pid.get(proc.name)
        if proc.proc is None or seen not in (None, proc.proc.pid):
            return None  # started elsewhere (`./run.sh up NAME`): not our child, its code is unknowable
        return proc.proc.poll()

    def _restart(self, proc: ManagedProcess) -> None:
        self.supervision.restarting(proc.name)
        before = proc.proc
        try:
            proc.start(log=self.say)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the supervisor must go on with the others
            ran = proc.proc is not before
            code = proc.proc.poll() if ran else None
            error = last_error_in(proc.log_file, proc.log_offset) if ran else _readable(str(exc).splitlines()[0])
            self._emit(self.supervision.exited(proc.name, self.clock(), code, error))
            return
        if proc.proc is not before:
            self._seen_pid[proc.name] = proc.proc.pid
        self._emit(self.supervision.running(proc.name, self.clock()))

    def _emit(self, events: list[SupervisorEvent]) -> None:
        for event in events:
            text = describe(event, self.policy)
            self.say(text)
            self.log.log(_LEVELS.get(event.action, logging.INFO), text, extra={"fields": {
                "event.action": event.action,
                "meteoflow.supervisor": event.model_dump(mode="json", exclude={"action"}),
            }})

    def snapshot(self) -> SupervisorState:
        now, wall = self.clock(), self.wall_clock()

        def at(t: float | None) -> datetime | None:
            return None if t is None else datetime.fromtimestamp(round(wall - (now - t)), timezone.utc)

        return SupervisorState(pid=os.getpid(), processes={
            p.name: SupervisedProcess(state=p.state, since=at(p.since), restarts=p.restarts,
                                      last_exit_code=p.last_exit_code, last_error=p.last_error,
                                      last_exit_at=at(p.last_exit_at), retry_at=at(p.retry_at))
            for p in self.supervision.processes.values()
        })

    def write_state(self) -> None:
        path = state_file(self.settings)
        private_dir(path.parent)
        write_state(path, self.snapshot())
