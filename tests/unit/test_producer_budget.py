"""The request budget shared by the producer and the importers: calls spread, a daily limit that
holds across processes, a reserve for the schedule, and the start-up check of the schedule."""

from __future__ import annotations

import json
import multiprocessing
from datetime import datetime, timezone

import pytest

from meteoflow.settings import load_settings
from producer.budget import BudgetExhausted, RequestBudget, budget_file, budget_problems

DAY = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc).timestamp()


class FakeTime:
    """A clock that only moves when the budget sleeps."""

    def __init__(self, now: float):
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make(tmp_path, per_minute=60, per_day=1000, start=DAY):
    t = FakeTime(start)
    return RequestBudget(tmp_path / "budget.json", per_minute, per_day, clock=t.clock, sleep=t.sleep), t


def test_calls_are_spread_evenly_instead_of_bursting(tmp_path):
    budget, t = make(tmp_path, per_minute=30)
    for _ in range(5):
        budget.acquire()
    assert t.now - DAY == pytest.approx(8.0)  # 5 calls at one every 2 s: the first at once
    assert budget.usage().calls == 5


def test_the_daily_limit_raises_and_a_new_utc_day_resets_it(tmp_path):
    budget, t = make(tmp_path, per_minute=6000, per_day=3)
    for _ in range(3):
        budget.acquire()
    with pytest.raises(BudgetExhausted, match=r"3 of 3 calls today .*METEOFLOW_OWM_CALLS_PER_DAY"):
        budget.acquire()
    t.now = datetime(2026, 3, 2, 0, 0, 1, tzinfo=timezone.utc).timestamp()
    budget.acquire()
    assert budget.usage().calls == 1


def test_an_importer_leaves_the_schedule_its_reserve(tmp_path):
    budget, _ = make(tmp_path, per_minute=6000, per_day=10)
    for _ in range(7):
        budget.acquire(reserve=3)
    with pytest.raises(BudgetExhausted, match="3 left to the schedule"):
        budget.acquire(reserve=3)
    budget.acquire()  # the schedule itself still gets its calls
    assert budget.usage().calls == 8


def test_usage_is_shared_through_the_file(tmp_path):
    first, t = make(tmp_path, per_minute=60)
    second = RequestBudget(first.path, 60, 1000, clock=t.clock, sleep=t.sleep)
    first.acquire()
    second.acquire()  # must wait for the slot the first one took
    assert t.slept and t.now - DAY == pytest.approx(1.0)
    assert json.loads(first.path.read_text())["calls"] == 2


def _take(path: str, calls: int) -> None:
    budget = RequestBudget(path, 60_000_000, 1_000_000)  # no waiting: only the counting is under test
    for _ in range(calls):
        budget.acquire()


def test_separate_processes_lose_no_call(tmp_path):
    path = str(tmp_path / "budget.json")
    workers = [multiprocessing.get_context("fork").Process(target=_take, args=(path, 200)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert json.loads((tmp_path / "budget.json").read_text())["calls"] == 600


def test_the_budget_file_is_per_key_and_product_and_never_holds_the_key(tmp_path):
    settings = load_settings(run_dir=tmp_path, owm_api_key="secret-key-123456")
    paths = {budget_file(settings, "onecall"), budget_file(settings, "current"),
             budget_file(load_settings(run_dir=tmp_path, owm_api_key="another-key-654321"), "onecall")}
    assert len(paths) == 3 and all("secret-key" not in str(p) for p in paths)


def test_plan_defaults_and_overrides():
    assert load_settings(owm_api="onecall").owm_budget() == (60, 1000)
    assert load_settings(owm_api="current").owm_budget() == (60, 33_333)
    assert load_settings(owm_calls_per_day=5000, owm_calls_per_minute=10).owm_budget("onecall") == (10, 5000)


def test_a_schedule_that_does_not_fit_is_said_at_start():
    settings = load_settings(owm_api="onecall", producer_interval_seconds=900)
    (problem, backfill) = budget_problems(settings, 14, backfill_hours=0) + ["-"]
    assert "1,344 calls a day" in problem and "1,000" in problem and "at least 1210s" in problem
    assert budget_problems(load_settings(owm_api="onecall", producer_interval_seconds=1800), 14) == []
    late = budget_problems(load_settings(owm_api="onecall", producer_interval_seconds=1800), 14, backfill_hours=48)
    assert len(late) == 1 and "672 calls" in late[0]
    slow = budget_problems(load_settings(owm_api="current", producer_interval_seconds=10, owm_calls_per_minute=60), 14)
    assert any("longer than the 10s interval" in p for p in slow)
