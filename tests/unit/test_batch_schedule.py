"""The rain model's schedule (batch/schedule.py): what is due when, what one run reports, and the
service loop over a fake store and runner (the real jobs run in tests/integration/test_batch_rain.py)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from batch.schedule import RainSchedule, RainScheduler, ScheduleState, run_job
from meteoflow.contracts import BATCH_RUN_ACTION, BatchRunEvent
from meteoflow.logs import EcsJsonFormatter

T0 = datetime(2026, 8, 20, 12, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
PLAN = RainSchedule(train_every=timedelta(days=7), predict_every=timedelta(minutes=30))


def test_a_new_deployment_trains_then_predicts():
    assert PLAN.due(T0, ScheduleState()) == ["train-rain", "predict-rain"]


def test_an_archive_not_ready_is_retried_after_the_predict_period_not_at_every_tick():
    tried = ScheduleState(train_tried_at=T0)
    assert PLAN.due(T0 + timedelta(minutes=29), tried) == []
    assert PLAN.due(T0 + timedelta(minutes=30), tried) == ["train-rain", "predict-rain"]


def test_a_model_is_retrained_on_its_period_and_chances_refreshed_on_theirs():
    fresh = ScheduleState(trained_at=T0 - 24 * HOUR, predicted_at=T0 - timedelta(minutes=10))
    assert PLAN.due(T0, fresh) == []
    assert PLAN.due(T0 + timedelta(minutes=20), fresh) == ["predict-rain"]
    assert PLAN.due(T0 + 6 * 24 * HOUR, fresh) == ["train-rain", "predict-rain"]


def test_a_model_trained_by_command_gets_its_chances_at_the_next_tick():
    by_command = ScheduleState(trained_at=T0 - timedelta(minutes=1), predicted_at=T0 - timedelta(minutes=5))
    assert PLAN.due(T0, by_command) == ["predict-rain"]
    # ...unless that prediction was just tried and failed: then it waits like any retry.
    assert PLAN.due(T0, ScheduleState(**{**vars(by_command), "predict_tried_at": T0 - timedelta(minutes=1)})) == []


def test_chances_stored_while_a_model_was_trained_by_command_do_not_count_as_its_own():
    # Seen in the demo: predict-rain started with the old model, `./run.sh train-rain` stored a new
    # one meanwhile, and the chances stored after it (with the old model) looked newer than it.
    new_model, old_model = T0 - timedelta(minutes=4), T0 - 2 * HOUR
    during = ScheduleState(trained_at=new_model, predicted_at=T0 - timedelta(minutes=2), predicted_with=old_model)
    assert PLAN.due(T0, during) == ["predict-rain"]
    made_with_it = ScheduleState(trained_at=new_model, predicted_at=T0 - timedelta(minutes=2), predicted_with=new_model)
    assert PLAN.due(T0, made_with_it) == []


def test_periods_of_zero_mean_by_command_only():
    from meteoflow.settings import load_settings

    plan = RainSchedule.from_settings(load_settings(rain_train_hours=0, rain_predict_minutes=0))
    assert plan.due(T0, ScheduleState()) == []
    only_chances = RainSchedule.from_settings(load_settings(rain_train_hours=0))
    assert only_chances.due(T0, ScheduleState()) == []  # nothing to predict with yet
    assert only_chances.due(T0, ScheduleState(trained_at=T0 - HOUR)) == ["predict-rain"]


moments = st.none() | st.integers(-30 * 24 * 60, 0).map(lambda m: T0 + timedelta(minutes=m))


@given(moments, moments, moments, moments)
def test_nothing_runs_more_often_than_its_period_or_its_retry(trained, predicted, train_tried, predict_tried):
    state = ScheduleState(trained, predicted, train_tried, predict_tried)
    due = PLAN.due(T0, state)
    assert due in ([], ["train-rain"], ["predict-rain"], ["train-rain", "predict-rain"])
    if "train-rain" in due:
        assert trained is None or T0 - trained >= PLAN.train_every
        assert train_tried is None or T0 - train_tried >= PLAN.retry_after
    elif "predict-rain" in due:
        assert trained is not None
        assert predict_tried is None or T0 - predict_tried >= PLAN.retry_after
    elif trained is not None and (predicted is None or T0 - predicted >= PLAN.predict_every):
        assert T0 - predict_tried < PLAN.retry_after  # overdue chances wait only for a recent try


class Store:
    """What the fake runner's jobs change: when the selected model was trained, when chances were stored."""

    def __init__(self):
        self.trained_at: datetime | None = None
        self.predicted_at: datetime | None = None
        self.predicted_with: datetime | None = None  # the model the latest chances came from
        self.down = False

    def read(self):
        if self.down:
            raise ConnectionError("no server at 127.0.0.1:27017")
        return self.trained_at, self.predicted_at, self.predicted_with


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def scheduler(store: Store, clock: Clock, outcomes: dict[str, str], ran: list[str], caplog) -> RainScheduler:
    def runner(job, stop):
        ran.append(job)
        outcome = outcomes.get(job, "ok")
        if outcome == "ok" and job == "train-rain":
            store.trained_at = clock()
        elif outcome == "ok":
            store.predicted_at, store.predicted_with = clock(), store.trained_at
        return BatchRunEvent(job=job, outcome=outcome, exit_code={"ok": 0, "not-ready": 3}.get(outcome, 1),
                             duration_s=1.5, message=f"{job} said {outcome}")

    caplog.set_level(logging.INFO, logger="rain-test")
    return RainScheduler(store.read, PLAN, logging.getLogger("rain-test"), runner=runner, clock=clock)


def test_the_service_trains_then_predicts_and_then_waits(caplog):
    store, clock, ran = Store(), Clock(), []
    service = scheduler(store, clock, {}, ran, caplog)
    stop = threading.Event()
    assert [e.outcome for e in service.tick(stop)] == ["ok", "ok"] and ran == ["train-rain", "predict-rain"]
    clock.now += timedelta(minutes=10)
    assert service.tick(stop) == [] and len(ran) == 2
    clock.now += timedelta(minutes=25)
    service.tick(stop)
    assert ran[2:] == ["predict-rain"]


def test_an_archive_not_ready_skips_the_chances_and_a_failure_is_logged_as_an_error(caplog):
    store, clock, ran = Store(), Clock(), []
    service = scheduler(store, clock, {"train-rain": "not-ready"}, ran, caplog)
    (event,) = service.tick(threading.Event())
    assert event.outcome == "not-ready" and ran == ["train-rain"]  # no model: nothing to predict with
    (line,) = [r for r in caplog.records if r.name == "rain-test"]
    assert line.levelno == logging.INFO and "train-rain not-ready" in line.getMessage()

    # A model exists but retraining fails: the old model's chances still follow.
    store.trained_at = T0 - 8 * 24 * HOUR
    clock.now += timedelta(minutes=30)
    failing = scheduler(store, clock, {"train-rain": "failed"}, ran, caplog)
    caplog.clear()
    assert [e.job for e in failing.tick(threading.Event())] == ["train-rain", "predict-rain"]
    error = next(r for r in caplog.records if r.levelno == logging.ERROR)
    doc = json.loads(EcsJsonFormatter("rain_model").format(error))
    logged = BatchRunEvent.from_log_line(doc).event
    assert doc["event.action"] == BATCH_RUN_ACTION and logged.job == "train-rain" and logged.outcome == "failed"


def test_a_store_that_does_not_answer_is_retried_not_raised(caplog):
    store, clock, ran = Store(), Clock(), []
    store.down = True
    service = scheduler(store, clock, {}, ran, caplog)
    assert service.tick(threading.Event()) == [] and ran == []
    assert "store did not answer" in caplog.text and "27017" in caplog.text


def child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_one_run_reports_its_exit_and_last_line():
    stop = threading.Event()
    ok = run_job("predict-rain", stop, command=child("print('loading'); print('rain chances of 14 regions stored')"))
    assert (ok.outcome, ok.exit_code, ok.message) == ("ok", 0, "rain chances of 14 regions stored")
    not_ready = run_job("train-rain", stop, command=child(
        "import sys; print('train-rain: the archive cannot train a rain model yet', file=sys.stderr); sys.exit(3)"))
    assert not_ready.outcome == "not-ready" and "cannot train" in not_ready.message
    crashed = run_job("train-rain", stop, command=child("raise RuntimeError('Java gateway exited')"))
    assert crashed.outcome == "failed" and crashed.exit_code == 1
    assert crashed.message == "RuntimeError: Java gateway exited"


def test_a_run_cut_short_by_the_service_stopping_is_reported_as_stopped_not_failed():
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    cut = run_job("train-rain", stop, command=child("import time; time.sleep(60)"))
    assert (cut.outcome, cut.exit_code, cut.message) == ("stopped", None, "stopped: the service is stopping")


def test_a_run_past_its_timeout_is_stopped_and_reported():
    slow = run_job("predict-rain", threading.Event(), timeout_s=0.5, command=child("import time; time.sleep(60)"))
    assert slow.outcome == "failed" and slow.exit_code is None and slow.message == "stopped: timed out"
    assert slow.duration_s < 30
