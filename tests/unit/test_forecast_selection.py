"""Per-region choice of the served forecast by tracked skill (streaming/selection.py), on plain values."""

from datetime import datetime, timedelta, timezone

from meteoflow.contracts import ForecastSkill
from streaming.baselines import baseline_forecast
from streaming.selection import MODEL, choose, choose_all, window_figures

NOW = datetime(2026, 3, 3, tzinfo=timezone.utc)


def skill(window: str, lead: int, count: int, model: float | None, persistence: float | None,
          climatology: float | None = None, region: str = "dakar") -> ForecastSkill:
    return ForecastSkill(
        _id=ForecastSkill.make_id(region, window, lead), region_id=region, window=window, lead_hours=lead, count=count,
        model_mae=model, model_bias=None, persistence_mae=persistence, persistence_bias=None,
        climatology_mae=climatology, climatology_bias=None, coverage=None, band_level=0.9, updated_at=NOW)


def leads(window: str, count: int, model: float, persistence: float | None, climatology: float | None = None,
          region: str = "dakar", n: int = 24) -> list[ForecastSkill]:
    return [skill(window, lead, count, model, persistence, climatology, region) for lead in range(1, n + 1)]


def test_a_baseline_better_over_enough_pairs_is_served():
    choice = choose(leads("7d", 3, model=2.5, persistence=1.0), min_pairs=48)  # 72 pairs
    assert choice.serve == "persistence"
    assert "7d" in choice.reason and "72 pairs" in choice.reason and "1.00" in choice.reason and "2.50" in choice.reason


def test_too_few_pairs_keep_the_model_however_good_the_baseline():
    choice = choose(leads("7d", 1, model=9.0, persistence=1.0, n=47), min_pairs=48)
    assert choice.serve == MODEL and "47 < 48" in choice.reason
    assert choose([], min_pairs=1).serve == MODEL


def test_a_worse_baseline_keeps_the_model_and_ties_keep_the_model():
    assert choose(leads("7d", 3, model=1.0, persistence=2.0, climatology=3.0), 48).serve == MODEL
    assert choose(leads("7d", 3, model=1.5, persistence=1.5, climatology=1.5), 48).serve == MODEL


def test_the_better_of_two_winning_baselines_is_served():
    assert choose(leads("7d", 3, model=3.0, persistence=2.0, climatology=1.0), 48).serve == "climatology"
    assert choose(leads("7d", 3, model=3.0, persistence=1.0, climatology=2.0), 48).serve == "persistence"


def test_the_24h_window_is_used_when_the_7d_one_has_too_few_pairs():
    rows = leads("7d", 1, model=1.0, persistence=5.0, n=10) + leads("24h", 2, model=3.0, persistence=1.0)
    choice = choose(rows, 48)
    assert choice.serve == "persistence" and "24h" in choice.reason
    # 7 d enough: it decides, whatever the 24 h window says.
    rows = leads("7d", 3, model=1.0, persistence=5.0) + leads("24h", 2, model=3.0, persistence=1.0)
    assert choose(rows, 48).serve == MODEL


def test_leads_are_weighted_by_their_pair_counts_and_compared_on_the_same_leads():
    rows = [skill("7d", 1, 90, model=1.0, persistence=0.5), skill("7d", 24, 10, model=1.0, persistence=6.0)]
    figures = window_figures("7d", rows)
    assert figures.pairs == 100 and figures.baselines["persistence"] == (0.5 * 0.9 + 6.0 * 0.1, 1.0)
    # Climatology scored only at lead 24 (worse there than the model): compared on that lead only.
    rows = [skill("7d", 1, 90, model=5.0, persistence=None), skill("7d", 24, 10, model=1.0, persistence=None,
                                                                     climatology=2.0)]
    assert window_figures("7d", rows).baselines == {"climatology": (2.0, 1.0)}
    assert choose(rows, 48).serve == MODEL


def test_a_tie_while_a_baseline_is_served_keeps_that_baseline():
    # Serving persistence, the served forecast's MAE is persistence's: no evidence for the model.
    rows = leads("7d", 3, model=1.2, persistence=1.2)
    assert choose(rows, 48, current="persistence").serve == "persistence"
    assert choose(leads("7d", 3, model=1.0, persistence=1.2), 48, current="persistence").serve == MODEL


def test_choose_all_decides_each_region_from_its_own_documents():
    rows = leads("7d", 3, 3.0, 1.0, region="dakar") + leads("7d", 3, 1.0, 3.0, region="thies")
    got = choose_all(rows, ["dakar", "thies", "louga"], 48, {})
    assert {r: c.serve for r, c in got.items()} == {"dakar": "persistence", "thies": MODEL, "louga": MODEL}


def test_a_baseline_forecast_can_be_asked_for_persistence_when_climatology_is_possible():
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    hourly = {t0 + timedelta(hours=h): 20.0 + (h % 24) for h in range(30)}
    assert baseline_forecast(hourly, 3, 0.9)[0] == "climatology"
    model, preds = baseline_forecast(hourly, 3, 0.9, prefer="persistence")
    assert model == "persistence" and {p.temperature for p in preds} == {hourly[max(hourly)]}
