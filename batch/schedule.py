"""The rain model on a schedule: `python -m batch schedule`, supervised by ./run.sh as `rain_model`.

Every tick it reads from the store when the selected model was trained and when the rain chances
were stored, and runs what is due as a child `python -m batch train-rain | predict-rain`: a fresh
Spark per run keeps no JVM resident between runs, and a job that crashes costs only that run.
Each run is logged as a BatchRunEvent. The store is the schedule's memory, so a restart neither
retrains early nor forgets a model.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from pymongo.database import Database

from meteoflow.clock import utc_now
from meteoflow.contracts import RAIN_MODELS, RAIN_PREDICTIONS, BatchJob, BatchRunEvent
from meteoflow.logs import mask_secrets
from meteoflow.settings import REPO_ROOT, Settings

# `python -m batch` exits with this when the archive cannot serve the job yet (batch/__main__.py).
EXIT_NOT_READY = 3
JOB_TIMEOUT_SECONDS = {"train-rain": 3 * 3600.0, "predict-rain": 1800.0}
MESSAGE_MAX_CHARS = 300


@dataclass(frozen=True)
class ScheduleState:
    """What the store says was last done, and what this process last tried."""

    trained_at: datetime | None = None  # the selected model's training time
    predicted_at: datetime | None = None  # the latest stored rain chance
    train_tried_at: datetime | None = None
    predict_tried_at: datetime | None = None
    predicted_with: datetime | None = None  # trained_at of the model the latest chance came from


@dataclass(frozen=True)
class RainSchedule:
    train_every: timedelta | None  # None: by command only
    predict_every: timedelta | None

    @classmethod
    def from_settings(cls, settings: Settings) -> "RainSchedule":
        return cls(train_every=timedelta(hours=settings.rain_train_hours) if settings.rain_train_hours else None,
                   predict_every=(timedelta(minutes=settings.rain_predict_minutes)
                                  if settings.rain_predict_minutes else None))

    @property
    def retry_after(self) -> timedelta:
        """A job that did not succeed waits this long: the predict period, or an hour without one."""
        return self.predict_every or timedelta(hours=1)

    def due(self, now: datetime, state: ScheduleState) -> list[BatchJob]:
        """The jobs to run now, in order: training first, so a new model's chances follow at once."""
        jobs: list[BatchJob] = []
        if self.train_every is not None and _older(state.trained_at, now, self.train_every) \
                and _older(state.train_tried_at, now, self.retry_after):
            jobs.append("train-rain")
        if self.predict_every is None:
            return jobs
        if jobs:  # a new model's chances follow it at once (skipped if training fails with no model)
            return [*jobs, "predict-rain"]
        if state.trained_at is None:
            return jobs
        # A model trained by command since the last chances counts as due, like the period. Chances made
        # while it was training came from the model before it: they are told apart by the model they name.
        if state.predicted_with is not None:
            new_model = state.predicted_with != state.trained_at
        else:
            new_model = state.predicted_at is None or state.trained_at > state.predicted_at
        if (new_model or _older(state.predicted_at, now, self.predict_every)) \
                and _older(state.predict_tried_at, now, self.retry_after):
            jobs.append("predict-rain")
        return jobs


def _older(when: datetime | None, now: datetime, than: timedelta) -> bool:
    return when is None or now - when >= than


StoredState = tuple[datetime | None, datetime | None, datetime | None]


def stored_state(db: Database) -> StoredState:
    """(the selected model's trained_at, the newest predicted_at, the trained_at of the model that newest
    chance came from) from the store."""
    model = db[RAIN_MODELS].find_one({"selected": True}, sort=[("trained_at", -1)], projection={"trained_at": 1})
    chance = db[RAIN_PREDICTIONS].find_one({}, sort=[("predicted_at", -1)],
                                           projection={"predicted_at": 1, "model_trained_at": 1}) or {}
    return (model or {}).get("trained_at"), chance.get("predicted_at"), chance.get("model_trained_at")


def run_job(job: BatchJob, stop: threading.Event, timeout_s: float | None = None,
            command: list[str] | None = None) -> BatchRunEvent:
    """One `python -m batch JOB` (or `command`) in a child process; its output goes on to this
    service's log, its exit code and last line make the event."""
    started = time.monotonic()
    child = subprocess.Popen(command or [sys.executable, "-m", "batch", job], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output: dict[str, str] = {}
    readers = [threading.Thread(target=lambda name, stream: output.__setitem__(name, _pass_through(stream, name)),
                                args=(name, stream), daemon=True)
               for name, stream in (("stdout", child.stdout), ("stderr", child.stderr))]
    for reader in readers:
        reader.start()
    deadline = started + (timeout_s or JOB_TIMEOUT_SECONDS[job])
    while child.poll() is None and not stop.is_set() and time.monotonic() < deadline:
        stop.wait(0.5)
    stopped = child.poll() is None
    if stopped:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    for reader in readers:
        reader.join(10)
    code = None if stopped else child.returncode
    if code == 0:
        outcome, message = "ok", _last_line(output.get("stdout", ""))
    elif code == EXIT_NOT_READY:
        outcome, message = "not-ready", _last_line(output.get("stderr", ""))
    elif stopped and stop.is_set():
        outcome, message = "stopped", "stopped: the service is stopping"
    else:
        outcome = "failed"
        message = ("stopped: timed out" if stopped
                   else _last_line(output.get("stderr", "")) or f"exit code {code}")
    return BatchRunEvent(job=job, outcome=outcome, exit_code=code, duration_s=round(time.monotonic() - started, 2),
                         message=message)


def _pass_through(stream, name: str) -> str:
    target = sys.stdout if name == "stdout" else sys.stderr
    kept: list[str] = []
    for line in stream:
        target.write(line)
        target.flush()
        kept.append(line)
        del kept[:-50]  # the last lines are enough to say how it ended
    return "".join(kept)


def _last_line(text: str) -> str | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    line = mask_secrets(lines[-1])
    return line if len(line) <= MESSAGE_MAX_CHARS else line[: MESSAGE_MAX_CHARS - 3] + "..."


class RainScheduler:
    """The loop of the rain_model service. `read_state` gives (trained_at, predicted_at, predicted_with)
    as stored (stored_state); it, `runner` and `clock` are what tests replace."""

    def __init__(self, read_state: Callable[[], StoredState], schedule: RainSchedule,
                 log: logging.Logger, runner: Callable[[BatchJob, threading.Event], BatchRunEvent] = run_job,
                 clock: Callable[[], datetime] = utc_now):
        self.read_state = read_state
        self.schedule = schedule
        self.log = log
        self.runner = runner
        self.clock = clock
        self.tried: dict[BatchJob, datetime] = {}

    def tick(self, stop: threading.Event) -> list[BatchRunEvent]:
        """Run whatever is due now; a store that does not answer is logged and retried next tick."""
        try:
            trained_at, predicted_at, predicted_with = self.read_state()
        except Exception as exc:  # noqa: BLE001 - the schedule outlives a store outage
            self.log.warning("rain schedule: the store did not answer (%s); retrying", exc)
            return []
        state = ScheduleState(trained_at, predicted_at, self.tried.get("train-rain"), self.tried.get("predict-rain"),
                              predicted_with)
        events = []
        for job in self.schedule.due(self.clock(), state):
            if stop.is_set():
                break
            self.tried[job] = self.clock()
            event = self.runner(job, stop)
            level = {"ok": logging.INFO, "not-ready": logging.INFO, "stopped": logging.WARNING}.get(event.outcome,
                                                                                                    logging.ERROR)
            self.log.log(level, "rain schedule: %s %s in %.1f s%s", job, event.outcome, event.duration_s,
                         f": {event.message}" if event.message else "", extra=event.log_extra())
            events.append(event)
            if job == "train-rain" and event.outcome != "ok" and trained_at is None:
                break  # no model to predict with
        return events

    def run(self, stop: threading.Event, tick_seconds: float = 30.0, start_delay: float = 0.0) -> None:
        """Tick until `stop`. The first tick waits `start_delay`: one archive trigger, before which a
        new deployment's archive holds nothing to train on, and the streaming job starts its own Spark."""
        stop.wait(start_delay)
        while not stop.is_set():
            self.tick(stop)
            stop.wait(tick_seconds)
