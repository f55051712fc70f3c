"""Per-lead choice of the served forecast by tracked skill (streaming/selection.py), on plain values."""

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from meteoflow.contracts import ForecastSkill
from streaming.baselines import baseline_forecast
from streaming.selection import MODEL, Plan, choose, choose_all, choose_lead

NOW = datetime(2026, 3, 3, tzinfo=timezone.utc)


def skill(window: str, lead: int, count: int, api: float | None, persistence: float | None,
          climatology: float | None = None, region: str = "dakar", served: float | None = None) -> ForecastSkill:
    """`api`: the forecasting API's own MAE (scored on all `count` pairs); `served`: the served forecast's."""
    return ForecastSkill(
        _id=ForecastSkill.make_id(region, window, lead), region_id=region, window=window, lead_hours=lead, count=count,
        model_mae=served if served is not None else api, model_bias=None, persistence_mae=persistence,
        persistence_bias=None, climatology_mae=climatology, climatology_bias=None, coverage=None, band_level=0.9,
        updated_at=NOW, api_count=count if api is not None else 0, api_mae=api, api_bias=None)


def leads(window: str, count: int, api: float, persistence: float | None, climatology: float | None = None,
          region: str = "dakar", first: int = 1, last: int = 24) -> list[ForecastSkill]:
    return [skill(window, lead, count, api, persistence, climatology, region) for lead in range(first, last + 1)]


def test_a_baseline_is_served_only_at_the_leads_where_it_beats_the_model():
    rows = leads("7d", 20, api=1.0, persistence=0.5, last=3) + leads("7d", 20, api=1.0, persistence=2.0, first=4)
    plan = choose(rows, min_pairs=12)
    assert [plan.serve_at(lead) for lead in range(1, 25)] == ["persistence"] * 3 + [MODEL] * 21
    text = plan.describe()
    assert text.startswith("persistence at 1-3 h (7d: 0.50 C vs the model's 1.00 C)") and "the model at the other" in text


def test_too_few_pairs_of_the_models_own_forecast_keep_the_model_however_good_the_baseline():
    assert choose(leads("7d", 11, api=9.0, persistence=1.0), min_pairs=12).baselines == {}
    assert choose([], min_pairs=1).describe() == "the model at every lead"
    # Pairs of a served baseline without the API's forecast (written before it was recorded) do not count.
    rows = [skill("7d", 1, 50, api=None, persistence=1.0, served=1.0)]
    assert choose_lead(1, rows, 12) == choose_lead(1, [], 12)


def test_ties_keep_the_model_and_the_better_of_two_winning_baselines_is_served():
    assert choose(leads("7d", 20, api=1.5, persistence=1.5, climatology=1.5), 12).baselines == {}
    assert choose(leads("7d", 20, api=3.0, persistence=2.0, climatology=1.0), 12).serve_at(5) == "climatology"
    assert choose(leads("7d", 20, api=3.0, persistence=1.0, climatology=2.0), 12).serve_at(5) == "persistence"


def test_a_lead_uses_its_24h_window_when_its_7d_one_has_too_few_pairs():
    rows = [skill("7d", 1, 5, api=1.0, persistence=5.0), skill("24h", 1, 12, api=3.0, persistence=1.0)]
    choice = choose_lead(1, rows, 12)
    assert choice.serve == "persistence" and choice.window == "24h" and choice.pairs == 12
    # 7 d enough: it decides, whatever the 24 h window says.
    rows = [skill("7d", 1, 30, api=1.0, persistence=5.0), skill("24h", 1, 12, api=3.0, persistence=1.0)]
    assert choose_lead(1, rows, 12).serve == MODEL


def test_a_baseline_better_over_7_days_is_not_served_where_the_model_did_better_over_the_last_24_hours():
    week = skill("7d", 12, 150, api=2.0, persistence=None, climatology=1.7)
    assert choose_lead(12, [week], 48).serve == "climatology"
    assert choose_lead(12, [week, skill("24h", 12, 24, api=1.5, persistence=None, climatology=1.8)], 48).serve == MODEL
    assert choose_lead(12, [week, skill("24h", 12, 24, api=1.5, persistence=None, climatology=1.5)], 48).serve == MODEL
    assert choose_lead(12, [week, skill("24h", 12, 24, api=1.5, persistence=None, climatology=1.2)], 48).serve \
        == "climatology"
    # No figure of that baseline over the last 24 h: no evidence for it there.
    assert choose_lead(12, [week, skill("24h", 12, 24, api=1.5, persistence=None, climatology=None)], 48).serve == MODEL


def test_the_models_own_skill_decides_even_while_a_baseline_is_served():
    # Persistence served at lead 2: the served MAE equals persistence's; the API's own forecast is better.
    rows = [skill("7d", 2, 40, api=0.8, persistence=1.2, served=1.2)]
    assert choose(rows, 12).serve_at(2) == MODEL


def test_choose_all_decides_each_region_from_its_own_documents():
    rows = leads("7d", 20, 3.0, 1.0, region="dakar") + leads("7d", 20, 1.0, 3.0, region="thies")
    got = choose_all(rows, ["dakar", "thies", "louga"], 12)
    assert {r: p.serve_at(12) for r, p in got.items()} == {"dakar": "persistence", "thies": MODEL, "louga": MODEL}
    assert got["dakar"].describe().endswith("the model at none")


@given(st.lists(st.tuples(st.integers(1, 24), st.integers(0, 200), st.floats(0, 10), st.floats(0, 10) | st.none(),
                          st.floats(0, 10) | st.none()), max_size=30))
def test_a_served_lead_never_has_a_higher_measured_mae_than_the_model(rows):
    """Whatever the documents, a baseline is served at a lead only with enough pairs and a strictly lower MAE."""
    docs = {lead: skill("7d", lead, n, api, p, c) for lead, n, api, p, c in rows}  # one document per lead
    plan = choose(docs.values(), 12)
    for lead in range(1, 25):
        served = plan.serve_at(lead)
        if served != MODEL:
            doc = docs[lead]
            assert doc.api_count >= 12 and getattr(doc, f"{served}_mae") < doc.api_mae
    assert isinstance(plan, Plan) and plan.key() == tuple((lead, plan.serve_at(lead)) for lead in sorted(plan.baselines))


def test_a_baseline_forecast_can_be_asked_for_persistence_when_climatology_is_possible():
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    hourly = {t0 + timedelta(hours=h): 20.0 + (h % 24) for h in range(30)}
    assert baseline_forecast(hourly, 3, 0.9)[0] == "climatology"
    model, preds = baseline_forecast(hourly, 3, 0.9, prefer="persistence")
    assert model == "persistence" and {p.temperature for p in preds} == {hourly[max(hourly)]}
