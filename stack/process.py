"""Supervising one native process: pid file, start, health wait, clean stop; and
set-up steps (downloads, builds) that print one line each.

Every server (Kafka, Elasticsearch, FerretDB) and every Meteoflow service started
by `./run.sh` is a `ManagedProcess`. Its pid file and log live under the run
directory; `stop` only ever signals a pid that this code started (the pid file's
process must still carry the run directory in its command line), never a broad
kill by name.

A set-up step (`step`) sends its commands' output to `<run_dir>/logs/install-<name>.log` and
prints `[meteoflow] <title> ... done (12 s)`; when it fails, the last lines of its log and the
log's path go to stderr, then the error propagates as it would have. On a terminal,
stack.spinner shows a spinner meanwhile. (Here rather than in a module of its own: the
streaming image resolves its Spark connector with stack/install.py and this file only.)
"""

from __future__ import annotations

import contextvars
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from meteoflow.processes import pid_alive
from meteoflow.settings import Settings
from stack.private import UMASK, open_private_append, private_dir, write_private


class StackError(RuntimeError):
    """A server could not be installed, configured or started; the message says why."""


def tail(path: Path, lines: int = 30, start: int = 0) -> str:
    """The last `lines` lines of a log (from its last 64 kB), or only of what follows byte `start`
    (ignored when the file is shorter: it was rotated since)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(start if start <= size else 0, size - 64_000))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log file yet)"
    return "\n".join(text.splitlines()[-lines:])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def process_age_seconds(pid: int) -> float:
    """How long the process has been running (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            start_ticks = int(fh.read().rsplit(") ", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return 0.0
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def process_environ(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read().decode("utf-8", "replace").split("\0")
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return []


@dataclass
class Status:
    name: str
    state: str  # "up", "down", "unhealthy"
    pid: int | None
    port: int | None
    detail: str = ""


class ManagedProcess:
    """Base class: subclasses say how to install, configure, run and probe one process."""

    name: str = "process"
    port_setting: str | None = None  # the Settings field of the main port, for messages
    health_timeout: float | None = None  # default: settings.start_timeout_seconds
    health_poll_seconds = 0.5  # between health probes while starting (tests' small processes use less)

    def __init__(self, settings: Settings):
        self.settings = settings
        self.proc: subprocess.Popen | None = None  # the last process this object started: its exit code
        self.log_offset = 0  # size of the log when that process started: what follows is its output

    # --- what subclasses provide -------------------------------------------------
    def install(self) -> None:
        """Fetch what is needed into the cache (no-op when already there)."""

    def configure(self) -> None:
        """Write config files under the run directory."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["METEOFLOW_RUN_DIR"] = str(self.settings.run_dir)
        return env

    def run_as_user(self) -> str | None:
        return None

    def healthy(self) -> bool:
        raise NotImplementedError

    def after_start(self) -> None:
        """Idempotent set-up once healthy (topics, templates)."""

    # --- common machinery --------------------------------------------------------------
    @property
    def port(self) -> int | None:
        return getattr(self.settings, self.port_setting) if self.port_setting else None

    @property
    def home(self) -> Path:
        return self.settings.run_dir / self.name

    @property
    def log_file(self) -> Path:
        return self.settings.run_dir / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.settings.run_dir / "pids" / f"{self.name}.pid"

    @property
    def held_file(self) -> Path:
        """Marks a process the user stopped by name: the supervisor of `./run.sh` leaves it down."""
        return self.settings.run_dir / "pids" / f"{self.name}.held"

    def _is_ours(self, pid: int) -> bool:
        # Every process we start carries METEOFLOW_RUN_DIR in its environment; that tells
        # it apart from an unrelated process that reused the pid.
        return f"METEOFLOW_RUN_DIR={self.settings.run_dir}" in process_environ(pid)

    def recorded_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if pid_alive(pid) and self._is_ours(pid):
            return pid
        return None

    def _safe_healthy(self) -> bool:
        try:
            return bool(self.healthy())
        except Exception:  # noqa: BLE001 - a probe that errors means "not healthy yet"
            return False

    def status(self) -> Status:
        pid = self.recorded_pid()
        if pid is None:
            return Status(self.name, "down", None, self.port)
        state = "up" if self._safe_healthy() else "unhealthy"
        return Status(self.name, state, pid, self.port)

    def start(self, log: Callable[[str], None] = print) -> str:
        """Start and wait until healthy. Returns 'reused' or 'started'."""
        pid = self.recorded_pid()
        if pid is not None:
            if self._wait_healthy(pid, timeout=30):
                self.after_start()
                return "reused"
            raise StackError(
                f"{self.name} (pid {pid}) is running but not healthy; run `./run.sh down` and retry.\n"
                f"Last lines of {self.log_file}:\n{tail(self.log_file)}"
            )
        if self.port is not None and port_in_use(self.settings.bind_host, self.port):
            env = f"METEOFLOW_{self.port_setting.upper()}"
            raise StackError(
                f"port {self.port} on {self.settings.bind_host} is already used by another process; "
                f"stop it or set {env} to a free port for {self.name}"
            )
        self.install()
        private_dir(self.settings.run_dir, keep_search=True)  # a running Elasticsearch may need to traverse it
        self.configure()
        for directory in (self.home, self.log_file.parent, self.pid_file.parent):
            private_dir(directory)
        log(f"starting {self.name}" + (f" on {self.settings.bind_host}:{self.port}" if self.port else ""))
        started = time.monotonic()
        with open_private_append(self.log_file) as out:
            self.log_offset = out.tell()
            self.proc = proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                cwd=self.home if self.home.exists() else None,
                start_new_session=True,  # own process group: stop() signals the whole tree
                user=self.run_as_user(),
                group=self.run_as_user(),
                extra_groups=[] if self.run_as_user() else None,
                umask=UMASK,  # what it creates (data, segments, checkpoints) is its owner's only
            )
        write_private(self.pid_file, str(proc.pid))
        timeout = self.health_timeout or self.settings.start_timeout_seconds
        if not self._wait_healthy(proc.pid, timeout, proc):
            code = proc.poll()
            self.stop()
            why = f"exited with code {code}" if code is not None else f"not healthy after {timeout:.0f} s"
            raise StackError(f"{self.name} {why}. Last lines of {self.log_file}:\n{tail(self.log_file)}")
        self.after_start()
        log(f"{self.name} healthy in {time.monotonic() - started:.1f} s (pid {proc.pid})")
        return "started"

    def _wait_healthy(self, pid: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return False
            if proc is None and not pid_alive(pid):
                return False
            if self._safe_healthy():
                return True
            time.sleep(self.health_poll_seconds)
        return False

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGTERM) -> bool:
        """Stop the process we started (if any). Returns True if something was stopped."""
        pid = self.recorded_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while pid_alive(pid):
                time.sleep(0.1)
        # Reap if it was our child (avoids a zombie holding the pid), through its Popen when we
        # hold it: a bare waitpid would leave Popen reporting exit code 0.
        if self.proc is not None and self.proc.pid == pid:
            self.proc.poll()
        else:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the process group: for fault-injection tests."""
        self.stop(timeout=0, sig=signal.SIGKILL)


# --- set-up steps ------------------------------------------------------------------------
STEP_PREFIX = "[meteoflow]"
STEP_TAIL_LINES = 30
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_current_step: contextvars.ContextVar[Step | None] = contextvars.ContextVar("meteoflow_step", default=None)


def step_log(log_dir: Path, name: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "step"
    return log_dir / f"install-{slug}.log"


def last_lines(path: Path, lines: int = STEP_TAIL_LINES) -> list[str]:
    """The last `lines` non-empty lines of a log (read from its last 64 kB), as a terminal shows them."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64_000))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    # Colour codes (Maven prints them even in batch mode) would garble the terminal, and of a
    # line redrawn with \r (a progress bar) only its last state is worth showing.
    text = _ANSI.sub("", text)
    return [ln.rsplit("\r", 1)[-1] for ln in text.splitlines() if ln.strip()][-lines:]


class Step:
    """One running set-up step: runs commands with their output appended to the step's log."""

    def __init__(self, name: str, title: str, log: Path):
        self.name = name
        self.title = title
        self.log = log

    def run(self, cmd: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None,
            capture: bool = False) -> str:
        """Run `cmd` with stdout and stderr into the log; with `capture`, stdout is returned
        (and logged too) and only stderr goes to the log as it comes."""
        with open_private_append(self.log) as out:
            out.write(f"$ {' '.join(cmd)}\n".encode())
            out.flush()
            result = subprocess.run(
                list(cmd), env=dict(env) if env is not None else None, cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture else out, stderr=out,
            )
            if capture:
                out.write(result.stdout)
        if result.returncode != 0:
            raise StackError(f"{self.title}: `{' '.join(cmd)}` failed with exit code {result.returncode}")
        return result.stdout.decode("utf-8", "replace") if capture else ""


class StepDisplay:
    """How steps show without a terminal (CI, a pipe): the line opens when the step starts, so a
    long one does not look hung, and closes with the outcome. stack.spinner does better on a terminal."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self._out, self._err = out, err

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout  # looked up late: whatever stdout is when the step runs

    @property
    def err(self) -> TextIO:
        return self._err or sys.stderr

    def begin(self, step: Step) -> None:
        print(f"{STEP_PREFIX} {step.title} ...", end="", file=self.out, flush=True)

    def end(self, step: Step, outcome: str) -> None:
        print(f" {outcome}", file=self.out, flush=True)

    def show_tail(self, step: Step) -> None:
        lines = last_lines(step.log)
        text = "".join(f"  {line}\n" for line in lines)
        print(f"{STEP_PREFIX} last {len(lines)} lines of {step.log}:\n{text}{STEP_PREFIX} full log: {step.log}",
              file=self.err, flush=True)


step_display = StepDisplay()


def current_step() -> Step | None:
    """The step running in this context, if any: a command run inside it logs there."""
    return _current_step.get()


@contextmanager
def step(name: str, title: str, log_dir: Path, display: StepDisplay | None = None) -> Iterator[Step]:
    """Run a block as one set-up step: one line when it succeeds, the log's tail when it fails.
    A step inside another is part of the outer one (same log, no line of its own)."""
    outer = _current_step.get()
    if outer is not None:
        yield outer
        return
    display = display or step_display
    private_dir(log_dir)
    this = Step(name, title, step_log(log_dir, name))
    write_private(this.log, f"# {title}\n")
    token = _current_step.set(this)
    started = time.monotonic()
    display.begin(this)
    try:
        yield this
    except KeyboardInterrupt:
        display.end(this, "interrupted")
        raise
    except BaseException:
        display.end(this, "failed")
        display.show_tail(this)
        raise
    else:
        display.end(this, f"done ({time.monotonic() - started:.0f} s)")
    finally:
        _current_step.reset(token)
