"""forecast_degraded: the health sample made from forecast_skill, the condition, and the pending period,
silences and reminders it shares with the other rules."""

from datetime import datetime, timedelta, timezone

from elk.alerting.engine import Facts, RegionFacts, conditions
from elk.alerting.silences import hold_back
from elk.alerting.slack import message
from elk.health.signals import forecast_skill_samples
from meteoflow.contracts import ForecastSkill, MetricSample, Silence
from tests.unit.test_elk_alerting import INTERVAL, SILENCE, step
from tests.unit.test_elk_alerting_health_rules import T0, health, shipped_rules


def skill(region: str, lead: int, count: int, model: float | None, persistence: float | None,
          coverage: float | None, window: str = "24h") -> ForecastSkill:
    return ForecastSkill(
        _id=ForecastSkill.make_id(region, window, lead), region_id=region, window=window, lead_hours=lead, count=count,
        model_mae=model, model_bias=0.0 if model is not None else None, persistence_mae=persistence,
        persistence_bias=0.0 if persistence is not None else None, climatology_mae=None, climatology_bias=None,
        coverage=coverage, band_level=0.95, updated_at=T0)


def sample(region: str = "dakar", pairs: int = 300, model: float = 2.0, persistence: float = 1.5,
           coverage: float = 0.9, at: datetime = T0) -> MetricSample:
    return MetricSample(timestamp=at, kind="forecast_skill", subject=region, skill_pairs=pairs, model_mae=model,
                        persistence_mae=persistence, coverage=coverage, band_level=0.95)


DAKAR = {"dakar": RegionFacts("dakar", "Dakar", T0)}


def test_the_sample_weights_each_lead_by_its_pairs_and_ignores_the_7d_window():
    skills = [skill("dakar", 1, 30, 1.0, 2.0, 1.0), skill("dakar", 2, 10, 3.0, 2.0, 0.5),
              skill("dakar", 3, 0, None, None, None), skill("dakar", 1, 100, 9.0, 9.0, 0.0, window="7d"),
              skill("thies", 1, 0, None, None, None)]
    by_region = {s.subject: s for s in forecast_skill_samples(T0, skills)}
    dakar = by_region["dakar"]
    assert (dakar.kind, dakar.skill_pairs, dakar.band_level) == ("forecast_skill", 40, 0.95)
    assert dakar.model_mae == (30 * 1.0 + 10 * 3.0) / 40 and dakar.persistence_mae == 2.0
    assert dakar.coverage == (30 * 1.0 + 10 * 0.5) / 40
    thies = by_region["thies"]
    assert (thies.skill_pairs, thies.model_mae, thies.coverage) == (0, None, None)
    assert "model_mae" not in thies.to_document()  # no figure rather than a made-up one


def test_fires_when_worse_than_persistence_naming_the_region_and_both_maes():
    found = conditions(shipped_rules(), Facts(now=T0, regions=DAKAR, health=health(sample())), INTERVAL, SILENCE)
    cond = found[("forecast_degraded", "dakar")]
    assert cond.title == "Forecast of Dakar degraded" and cond.region_id == "dakar"
    assert "MAE 2.00 °C is above persistence's 1.50 °C" in cond.summary and "300 forecast/observation pairs" in cond.summary
    assert (cond.value, cond.threshold) == (2.0, 1.5)


def test_fires_when_the_band_covers_too_little_and_not_on_too_few_pairs_or_a_good_forecast():
    r = shipped_rules()
    undercovered = conditions(r, Facts(now=T0, health=health(sample(model=1.0, coverage=0.6))), INTERVAL, SILENCE)
    assert "band held 60% of the observations (threshold 80%, nominal 95%)" in \
        undercovered[("forecast_degraded", "dakar")].summary
    assert not conditions(r, Facts(now=T0, health=health(sample(pairs=287))), INTERVAL, SILENCE)
    assert not conditions(r, Facts(now=T0, health=health(sample(model=1.0, coverage=0.95))), INTERVAL, SILENCE)
    margin = shipped_rules(forecast_degraded={"mae_margin": 0.5})  # 2.0 <= 1.5 x 1.5
    assert not conditions(margin, Facts(now=T0, health=health(sample())), INTERVAL, SILENCE)
    off = shipped_rules(forecast_degraded={"enabled": False})
    assert not conditions(off, Facts(now=T0, health=health(sample())), INTERVAL, SILENCE)


def test_pending_first_then_one_alert_one_reminder_and_a_recovery():
    r = shipped_rules(forecast_degraded={"for_seconds": 120, "reminder_after_seconds": 600})
    open_: dict = {}
    notes = []
    for minute in range(13):
        now = T0 + timedelta(minutes=minute)
        reporting = {"dakar": RegionFacts("dakar", "Dakar", now)}
        changed, open_ = step(r, Facts(now=now, regions=reporting, health=health(sample(at=now), now=now)), open_)
        notes += [(minute, n.kind) for i in changed for n in i.notifications if n.created_at == now]
    assert notes == [(2, "alert"), (12, "reminder")]
    now = T0 + timedelta(minutes=13)
    reporting = {"dakar": RegionFacts("dakar", "Dakar", now)}
    changed, open_ = step(r, Facts(now=now, regions=reporting, health=health(sample(model=1.0, at=now), now=now)), open_)
    assert [n.kind for i in changed for n in i.notifications if n.created_at == now] == ["recovery"] and not open_


def test_a_silence_on_the_region_holds_its_alert_back():
    r = shipped_rules()
    changed, _ = step(r, Facts(now=T0, regions=DAKAR, health=health(sample())), {})
    (inc,) = changed
    silence = Silence(silence_id="s1", subject="dakar", starts_at=T0 - timedelta(hours=1),
                      ends_at=T0 + timedelta(hours=1), comment="retraining", author="ops", created_at=T0)
    held = hold_back(inc, [silence], T0)
    assert [(n.kind, n.status, n.silenced_by) for n in held] == [("alert", "silenced", "s1")]


def test_the_slack_message_says_which_forecast_degraded():
    changed, _ = step(shipped_rules(), Facts(now=T0, regions=DAKAR, health=health(sample())), {})
    (inc,) = changed
    body = message(inc, inc.notifications[0])
    assert "Forecast of Dakar degraded" in body["text"] and "[WARNING]" in body["text"]
