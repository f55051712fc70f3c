"""The weather pages' pure shaping (webapp/views.py): local days, skill summaries, verification of a
past run, the order of the overview's cards."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from meteoflow.contracts import ForecastRun, ForecastRunPoint, ForecastSkill
from webapp import views

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def skill(region="dakar", lead=1, count=10, model=1.0, persistence=1.5, climatology=1.2, coverage=0.9):
    return ForecastSkill(_id=ForecastSkill.make_id(region, "24h", lead), region_id=region, window="24h",
                         lead_hours=lead, count=count, model_mae=model, model_bias=0.0, persistence_mae=persistence,
                         persistence_bias=0.0, climatology_mae=climatology, climatology_bias=0.0, coverage=coverage,
                         band_level=0.9, updated_at=T0)


def test_local_day_follows_the_regions_offset():
    late_evening = datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc)
    assert views.local_day(late_evening, 0) == (datetime(2026, 3, 1, tzinfo=timezone.utc), "2026-03-01")
    start, day = views.local_day(late_evening, 3600)  # 00:30 the next day at UTC+1
    assert day == "2026-03-02" and start == datetime(2026, 3, 1, 23, 0, tzinfo=timezone.utc)


def test_skill_summary_weights_by_count_and_names_the_best_baseline():
    s = views.skill_summary([skill(count=30, model=1.0), skill(lead=2, count=10, model=2.0)])
    assert s["model_mae"] == pytest.approx(1.25)
    assert s["best_baseline"] == "climatology" and s["skill"] == pytest.approx(1 - 1.25 / 1.2, abs=1e-3)
    assert s["degraded"] is False and s["count"] == 40


@pytest.mark.parametrize("kwargs, words", [
    ({"model": 2.0, "persistence": 1.0}, "above persistence's 1.00 °C"),
    ({"coverage": 0.7}, "band held 70% of the observations (threshold 80%, nominal 90%)"),
])
def test_skill_summary_says_why_a_forecast_is_degraded(kwargs, words):
    s = views.skill_summary([skill(lead=lead, count=12, **kwargs) for lead in range(1, 25)])  # 288 pairs
    assert s["degraded"] and words in s["degraded_reason"]


def test_too_few_pairs_are_never_called_degraded():
    # In the demo's first hours every card read "band held 40-70%" from a dozen pairs per lead.
    s = views.skill_summary([skill(lead=lead, count=11, coverage=0.4) for lead in range(1, 25)])  # 264 pairs
    assert s["coverage"] == pytest.approx(0.4) and not s["degraded"] and s["degraded_reason"] is None


def test_skill_summary_without_pairs_knows_nothing():
    s = views.skill_summary([skill(count=0)])
    assert s["model_mae"] is None and s["skill"] is None and not s["degraded"]


def test_verify_run_compares_each_target_with_the_nearest_observation_within_half_an_hour():
    class Obs:
        def __init__(self, at, temp):
            self.observed_at, self.temp = at, temp
    run = ForecastRun(_id="dakar|x", region_id="dakar", run_at=T0, origin=T0, model="prophet", horizon_hours=3,
                      band_level=0.9, points=[ForecastRunPoint(target_time=T0 + timedelta(hours=h), yhat=20.0 + h,
                                                               yhat_lower=19.0 + h, yhat_upper=21.0 + h)
                                              for h in (1, 2, 3)])
    observed = [Obs(T0 + timedelta(minutes=50), 23.0), Obs(T0 + timedelta(hours=2, minutes=10), 22.5)]
    points, summary = views.verify_run(run, observed)
    assert [p["observed"] for p in points] == [23.0, 22.5, None]  # 3 h: the nearest is 50 min away
    assert [p["inside_band"] for p in points] == [False, True, None]
    assert summary == {"verified": 2, "mae": pytest.approx(1.25), "bias": pytest.approx(-1.25), "coverage": 0.5}


def test_cards_put_silent_then_late_then_degraded_first():
    def card(rid, problem):
        return {"problem": problem, "region": {"region_id": rid, "region_name": rid.title()}}
    cards = [card("a", None), card("b", "degraded"), card("c", "late"), card("d", "silent"), card("e", None)]
    assert [c["region"]["region_id"] for c in views.sort_cards(cards)] == ["d", "c", "b", "a", "e"]


def test_a_forecast_is_labelled_by_what_most_of_its_points_serve_and_a_tie_by_the_model():
    from meteoflow.contracts import ForecastDocument, Prediction

    t0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)

    def docs(*models):
        return [ForecastDocument.from_prediction("dakar", Prediction(timestamp=t0 + timedelta(hours=i + 1),
                                                                     temperature=20.0, lower=19.0, upper=21.0),
                                                 t0, len(models), m) for i, m in enumerate(models)]

    assert views.served_label(docs("persistence", "persistence", "blend", "blend", "blend")) == "blend"
    assert views.served_label(docs("persistence", "persistence", "persistence", "blend")) == "persistence"
    assert views.served_label(docs("persistence", "blend")) == "blend"
    assert views.served_label([]) is None
    assert views.forecast_body(docs("climatology", "blend", "blend"))["model"] == "blend"
