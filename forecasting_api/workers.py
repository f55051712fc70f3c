"""A pool of worker processes that can be killed one by one: a call past its timeout is cancelled
by killing its worker, which is then replaced, while the other workers keep running.

concurrent.futures.ProcessPoolExecutor cannot do that: a running call cannot be cancelled, and
killing one of its processes breaks the whole pool (every call in flight fails). Here each worker
is a `spawn`ed process (it never inherits the server's threads or locks) with its own pipe, served
by one thread of the server that hands it one call at a time and waits for the answer with a
deadline.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("forecasting_api")

STARTUP_TIMEOUT_SECONDS = 120.0  # a worker importing Prophet on a busy machine; measured ~1-3 s


class CallTimedOut(Exception):
    """The call ran past its timeout; its worker was killed and is being replaced."""

    def __init__(self, timeout: float):
        super().__init__(f"cancelled after {timeout:g} s")
        self.timeout = timeout


class WorkerUnavailable(Exception):
    """The worker died during the call, or no worker could be started."""


def _worker_main(conn, initializer: Callable[[], None] | None, nice: int = 0) -> None:
    """The loop of a worker process: ("ready", pid), then one answer per (fn, args) received."""
    # Its own process group, so killing it at a timeout also kills what the fit started (Prophet runs
    # Stan's optimizer as a subprocess, which would otherwise run on as an orphan).
    os.setsid()
    try:
        if nice:  # before anything else starts: Stan's optimizer inherits it
            os.nice(nice)
        if initializer is not None:
            initializer()
    except BaseException as exc:  # noqa: BLE001 - reported to the server, which fails the call
        conn.send(("init-error", f"{type(exc).__name__}: {exc}"[:500]))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the server went away
        if message is None:
            return
        fn, args = message
        try:
            conn.send(("ok", fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - the call failed, the worker lives on
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))


class _Worker:
    def __init__(self, context, initializer: Callable[[], None] | None, nice: int = 0):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, initializer, nice), daemon=True,
                                       name="forecast-worker")
        self.process.start()
        child.close()

    def wait_ready(self, timeout: float) -> None:
        try:
            if not self.conn.poll(timeout):
                raise WorkerUnavailable(f"a forecast worker did not start within {timeout:g} s")
            kind, detail = self.conn.recv()
        except (EOFError, OSError):
            raise WorkerUnavailable(
                f"a forecast worker exited while starting (exit code {self.process.exitcode})") from None
        if kind != "ready":
            raise WorkerUnavailable(f"a forecast worker could not start: {detail}")

    def call(self, fn: Callable, args: tuple, timeout: float) -> Any:
        try:
            self.conn.send((fn, args))
            if not self.conn.poll(timeout):
                raise CallTimedOut(timeout)
            kind, value = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self.process.join(1)
            raise WorkerUnavailable(f"a forecast worker died (exit code {self.process.exitcode})") from None
        if kind == "error":
            raise RuntimeError(value)
        return value

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the worker and its subprocesses (its group: setsid)
        except (ProcessLookupError, PermissionError):
            self.process.kill()

    def stop(self, kill: bool) -> None:
        if kill:
            self.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.kill()
        self.process.join(10)
        if self.process.is_alive():
            self.kill()
            self.process.join(5)
        self.conn.close()


@dataclass
class _Call:
    future: Future
    fn: Callable
    args: tuple


_STOP = object()


@dataclass
class PoolStats:
    restarts: int = 0  # workers killed at a timeout or found dead, and replaced
    timeouts: int = 0
    busy: int = 0  # calls running in a worker now
    started: list[float] = field(default_factory=list)  # seconds each worker took to start


class WorkerPool:
    """`size` worker processes; `submit(fn, *args)` returns a Future that always completes: with
    fn's result, RuntimeError (fn raised), CallTimedOut, WorkerUnavailable, or cancelled at close.

    fn and args must be picklable (a module-level function). `timeout` counts from the moment the
    call reaches a ready worker, so time spent queued behind other calls is not held against it.
    """

    def __init__(self, size: int, timeout: float, initializer: Callable[[], None] | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT_SECONDS, nice: int = 0):
        self.size = size
        self.nice = nice  # added to each worker's niceness (lower CPU priority) at its start
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self._initializer = initializer
        self._context = multiprocessing.get_context("spawn")
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._ready = threading.Semaphore(0)
        self._closed = False
        self.stats = PoolStats()
        self._workers: list[_Worker | None] = [None] * size
        self._threads = [threading.Thread(target=self._serve, args=(slot,), name=f"forecast-slot-{slot}", daemon=True)
                         for slot in range(size)]
        for thread in self._threads:
            thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once every worker has started once (or failed to: its calls then fail)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in range(self.size):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._ready.acquire(timeout=remaining):
                return False
        for _ in range(self.size):
            self._ready.release()  # let a second caller through too
        return True

    def submit(self, fn: Callable, *args: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            self._calls.put(_Call(future, fn, args))
        return future

    def pids(self) -> list[int | None]:
        return [w.process.pid if w is not None else None for w in self._workers]

    def _start(self, slot: int) -> _Worker:
        started = time.perf_counter()
        try:
            worker = _Worker(self._context, self._initializer, self.nice)
        except Exception as exc:  # noqa: BLE001 - e.g. no process can be created: the calls fail, the slot lives
            raise WorkerUnavailable(f"a forecast worker could not be created: {type(exc).__name__}: {exc}") from None
        try:
            worker.wait_ready(self.startup_timeout)
        except WorkerUnavailable:
            worker.stop(kill=True)
            raise
        with self._lock:
            self.stats.started.append(round(time.perf_counter() - started, 3))
            del self.stats.started[:-20]
        return worker

    def _serve(self, slot: int) -> None:
        worker: _Worker | None = None
        start_error = "not started"
        announced = False
        while True:
            if worker is None:
                try:
                    worker = self._start(slot)
                except WorkerUnavailable as exc:
                    start_error = str(exc)
                    log.error("forecast worker %d: %s", slot, exc)
                self._workers[slot] = worker
                if not announced:
                    announced = True
                    self._ready.release()
            call = self._calls.get()
            if call is _STOP:
                break
            if not call.future.set_running_or_notify_cancel():
                continue
            if worker is None:
                call.future.set_exception(WorkerUnavailable(start_error))
                continue
            with self._lock:
                self.stats.busy += 1
            try:
                result = worker.call(call.fn, call.args, self.timeout)
            except CallTimedOut as exc:
                # The only way to stop a running fit: kill its process. A fresh one is started above.
                worker.stop(kill=True)
                worker = None
                with self._lock:
                    self.stats.timeouts += 1
                    self.stats.restarts += 1
                log.warning("forecast worker %d: a call ran past %g s; its worker was killed and is replaced",
                            slot, self.timeout)
                call.future.set_exception(exc)
            except WorkerUnavailable as exc:
                worker.stop(kill=True)
                worker = None
                with self._lock:
                    self.stats.restarts += 1
                log.error("forecast worker %d: %s; it is replaced", slot, exc)
                call.future.set_exception(exc)
            except RuntimeError as exc:
                call.future.set_exception(exc)
            else:
                call.future.set_result(result)
            finally:
                with self._lock:
                    self.stats.busy -= 1
        if worker is not None:
            worker.stop(kill=False)
        self._workers[slot] = None

    def close(self, timeout: float = 30.0) -> None:
        """Cancel the calls still queued, let the running ones finish (up to `timeout`), stop the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    call = self._calls.get_nowait()
                except queue.Empty:
                    break
                call.future.cancel()
            for _ in self._threads:
                self._calls.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:  # a slot still busy after the timeout: its fit is killed
            if worker is not None and worker.process.is_alive():
                worker.kill()


__all__ = ["WorkerPool", "CallTimedOut", "WorkerUnavailable"]
