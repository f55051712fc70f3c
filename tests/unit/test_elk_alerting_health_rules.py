"""The rules on the health signals (service_down, consumer_lag, store_behind, forecast_stale,
elasticsearch_unavailable), root-cause inhibition, and alerting while Elasticsearch is unavailable."""

from datetime import datetime, timedelta, timezone

import pytest
from elastic_transport import ConnectionError as EsConnectionError

from elk.alerting.engine import Facts, HealthFacts, RegionFacts, conditions, health_facts, held_back
from elk.alerting.rules import RulesError, load_rules, parse_rules
from elk.alerting.service import AlertingService
from elk.alerting.slack import Delivery, message
from meteoflow.contracts import MetricSample
from meteoflow.settings import REPO_ROOT, load_settings
from tests.unit.test_elk_alerting import INTERVAL, SILENCE, step

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)
SHIPPED = load_rules(REPO_ROOT / "elk" / "alert_rules.yaml")


def service(name: str, state: str, at: datetime = T0, **extra) -> MetricSample:
    return MetricSample(timestamp=at, kind="service", subject=name, state=state, up=int(state == "up"),
                        restarts=extra.pop("restarts", 0), **extra)


def lag(consumer: str, records: int, seconds: float | None, at: datetime = T0) -> MetricSample:
    return MetricSample(timestamp=at, kind="consumer_lag", subject=consumer, lag_records=records, lag_seconds=seconds)


def store(name: str, staleness: float | None, at: datetime = T0) -> MetricSample:
    return MetricSample(timestamp=at, kind="store_staleness", subject=name, staleness_seconds=staleness)


def health(*samples: MetricSample, now: datetime = T0) -> HealthFacts:
    return health_facts(list(samples), now, max_age_seconds=45)


def shipped_rules(**changes):
    """The shipped rules file, firing when first seen (the pending period is tested elsewhere)."""
    data = SHIPPED.model_dump()
    data["defaults"]["for_seconds"] = 0
    for name in ("service_down", "consumer_lag", "store_behind", "streaming_stalled", "forecast_degraded"):
        data[name]["for_seconds"] = None
    for name, values in changes.items():
        data[name] = {**data[name], **values}
    return parse_rules(data)


def regions_silent(now: datetime, n: int = 3) -> dict[str, RegionFacts]:
    seen = now - timedelta(seconds=SILENCE.silent_after_seconds + 60)
    return {f"r{i}": RegionFacts(f"r{i}", f"Region {i}", seen, seen, 5.0) for i in range(n)}


# --- the rules -------------------------------------------------------------------------------
def test_a_held_shipper_is_one_service_down_that_says_what_stopped():
    found = conditions(SHIPPED, Facts(now=T0, health=health(service("shipper", "held"), service("kafka", "up"))),
                       INTERVAL, SILENCE)
    assert list(found) == [("service_down", "shipper")]
    cond = found[("service_down", "shipper")]
    assert cond.title == "Elasticsearch shipping stopped (shipper down)"
    assert "shipper is held" in cond.summary and "./run.sh down shipper" in cond.summary


def test_a_crash_looping_service_is_crash_loop_not_service_down():
    sample = service("streaming", "crash-loop", restarts=4, last_exit_code=1, last_error="ValueError: boom")
    found = conditions(SHIPPED, Facts(now=T0, health=health(sample)), INTERVAL, SILENCE)
    assert list(found) == [("crash_loop", "streaming")]
    cond = found[("crash_loop", "streaming")]
    assert "exit 1: ValueError: boom" in cond.summary
    # The headline names the job and says what its absence means, as service_down's does.
    assert cond.title == "Streaming stopped, nothing is written to MongoDB or forecast (streaming in crash-loop)"


def test_consumer_lag_fires_on_old_records_or_on_steady_growth_but_not_on_a_working_consumer():
    r = shipped_rules()
    limit = max(4 * INTERVAL, 180)
    old = Facts(now=T0, health=health(lag("shipper", 40, limit + 1)))
    assert ("consumer_lag", "shipper") in conditions(r, old, INTERVAL, SILENCE)
    assert not conditions(r, Facts(now=T0, health=health(lag("shipper", 40, limit - 1))), INTERVAL, SILENCE)

    def series(counts):
        return health(*(lag("streaming", c, 10.0, T0 - timedelta(seconds=15 * i))
                        for i, c in enumerate(reversed(counts))))

    growing = [2, 2, 4, 6, 6, 8, 9, 12]  # oldest first: never drops, ends higher
    assert ("consumer_lag", "streaming") in conditions(r, Facts(now=T0, health=series(growing)), INTERVAL, SILENCE)
    working = [2, 0, 4, 6, 0, 8, 9, 12]  # the consumer keeps catching up
    assert not conditions(r, Facts(now=T0, health=series(working)), INTERVAL, SILENCE)
    flat = [5] * 8  # nothing new arrives: the oldest record's age decides
    assert not conditions(r, Facts(now=T0, health=series(flat)), INTERVAL, SILENCE)
    starting = health(*(lag("streaming", c, 10.0, T0 - timedelta(seconds=15 * i)).model_copy(
        update={"consumer_started": False}) for i, c in enumerate(reversed(growing))))
    assert not conditions(r, Facts(now=T0, health=starting), INTERVAL, SILENCE)  # Spark still starting


def test_store_behind_names_the_store_and_kafka_never_lags_itself():
    r = shipped_rules()
    found = conditions(r, Facts(now=T0, health=health(store("kafka", 0.0), store("mongodb", 500.0),
                                                      store("elasticsearch", 10.0))), INTERVAL, SILENCE)
    assert list(found) == [("store_behind", "mongodb")]
    assert found[("store_behind", "mongodb")].summary.startswith("MongoDB's newest observation is 8 min behind")


def test_forecast_stale_only_while_the_region_reports():
    r = shipped_rules()
    old = MetricSample(timestamp=T0, kind="forecast_age", subject="dakar", age_seconds=3600.0, forecast_status="error")
    fresh_region = {"dakar": RegionFacts("dakar", "Dakar", T0 - timedelta(seconds=10))}
    silent_region = {"dakar": RegionFacts("dakar", "Dakar", T0 - timedelta(hours=1))}
    found = conditions(r, Facts(now=T0, regions=fresh_region, health=health(old)), INTERVAL, SILENCE)
    assert ("forecast_stale", "dakar") in found and "last status error" in found[("forecast_stale", "dakar")].summary
    found = conditions(r, Facts(now=T0, regions=silent_region, health=health(old)), INTERVAL, SILENCE)
    assert ("forecast_stale", "dakar") not in found


def test_health_facts_leave_out_a_subject_whose_newest_sample_is_old():
    facts = health(service("shipper", "held", at=T0 - timedelta(seconds=300)), service("kafka", "up"))
    assert set(facts.services) == {"kafka"}


# --- root-cause inhibition --------------------------------------------------------------------
def test_shipper_down_is_one_message_and_region_silence_is_held_then_forgotten():
    r = shipped_rules()
    open_: dict = {}
    sent = []
    down = health(service("shipper", "held"), store("kafka", 0.0), store("elasticsearch", 900.0),
                  lag("shipper", 500, 900.0))
    for minute in range(5):
        now = T0 + timedelta(minutes=minute)
        changed, open_ = step(r, Facts(now=now, regions=regions_silent(now), health=down), open_)
        sent += [(i.rule, i.subject, n.kind) for i in changed for n in i.notifications if n.created_at == now]
    assert sent == [("service_down", "shipper", "alert")]
    held = {k: v.inhibited_by for k, v in open_.items() if v.status == "pending"}
    assert held and set(held.values()) == {"service_down|shipper"}
    assert ("region_silence", "r0") in held and ("store_behind", "elasticsearch") in held

    # The shipper is back; Elasticsearch still catches up for one round: nothing but the recovery.
    now = T0 + timedelta(minutes=5)
    changed, open_ = step(r, Facts(now=now, regions=regions_silent(now), health=health(service("shipper", "up"))), open_)
    assert [(i.rule, n.kind) for i in changed for n in i.notifications if n.created_at == now] == \
        [("service_down", "recovery")]
    now += timedelta(seconds=INTERVAL)
    fresh = {k: RegionFacts(k, v.region_name, now, now, 5.0) for k, v in regions_silent(now).items()}
    changed, open_ = step(r, Facts(now=now, regions=fresh, health=health(service("shipper", "up"), now=now)), open_)
    assert not changed and not open_


def test_a_symptom_that_outlasts_its_cause_waits_its_full_pending_period_again():
    r = shipped_rules(region_silence={"for_seconds": 60})
    open_: dict = {}
    now = T0
    _, open_ = step(r, Facts(now=now, regions=regions_silent(now), health=health(service("producer", "held"))), open_)
    assert open_[("region_silence", "r0")].inhibited_by == "service_down|producer"
    now += timedelta(minutes=10)  # the producer is back, but the regions are still silent
    changed, open_ = step(r, Facts(now=now, regions=regions_silent(now), health=health(service("producer", "up"), now=now)), open_)
    assert [i.status for i in changed if i.rule == "region_silence"] == ["pending"] * 3
    now += timedelta(seconds=60)
    changed, open_ = step(r, Facts(now=now, regions=regions_silent(now), health=health(service("producer", "up"), now=now)), open_)
    assert sorted(i.subject for i in changed if i.rule == "region_silence" and i.status == "firing") == ["r0", "r1", "r2"]


def test_two_conditions_that_explain_each_other_never_hold_each_other_back():
    current = conditions(shipped_rules(), Facts(
        now=T0, last_observation_at=T0, first_observation_at=T0 - timedelta(hours=1),
        health=health(lag("streaming", 900, 900.0))), INTERVAL, SILENCE)
    assert set(current) == {("consumer_lag", "streaming"), ("streaming_stalled", "streaming")}
    # streaming_stalled is listed before consumer_lag as a source: it is the one that goes out.
    assert held_back(current, shipped_rules()) == {("consumer_lag", "streaming"): "streaming_stalled|streaming"}


def test_kafka_down_holds_every_symptom_down_the_chain():
    r = shipped_rules()
    now = T0
    f = Facts(now=now, regions=regions_silent(now), health=health(
        service("kafka", "backoff", last_exit_code=1), service("shipper", "backoff"), service("producer", "held")))
    current = conditions(r, f, INTERVAL, SILENCE)
    held = held_back(current, r)
    assert set(current) - set(held) == {("service_down", "kafka")}
    assert held[("service_down", "shipper")] == "service_down|kafka"


@pytest.mark.parametrize("entry, expected", [
    ({"source": [{"rule": "disk_full"}], "target": [{"rule": "region_silence"}]}, "entry 0, field 'source[0].rule': unknown rule 'disk_full'"),
    ({"source": [], "target": [{"rule": "region_silence"}]}, "entry 0, field 'source'"),
    ({"source": [{"rule": "service_down"}], "target": [{"rule": "region_silence", "region": "x"}]},
     "entry 0, field 'target[0].region': unknown field"),
])
def test_a_wrong_inhibit_entry_is_refused_naming_it(entry, expected):
    with pytest.raises(RulesError, match="inhibit") as err:
        parse_rules({"inhibit": [entry]})
    assert expected in str(err.value)


def test_the_slack_message_headline_names_the_component():
    from elk.alerting.engine import plan

    r = shipped_rules()
    current = conditions(r, Facts(now=T0, health=health(service("shipper", "held"))), INTERVAL, SILENCE)
    (inc,) = plan(T0, current, {}, r, INTERVAL)
    body = message(inc, inc.notifications[0])
    assert body["text"].startswith(":rotating_light: [CRITICAL] Elasticsearch shipping stopped (shipper down)")


# --- without Elasticsearch ---------------------------------------------------------------------
class EsDown:
    """An Elasticsearch client whose every call fails to connect."""

    def __getattr__(self, name):
        def fail(*_a, **_k):
            raise EsConnectionError("connection refused")
        return fail

    def options(self, **_k):
        return self


class EsReadOnly:
    """An Elasticsearch client that answers every read (with nothing) and refuses every write, as
    one whose indices are read-only (disk past the flood-stage watermark) does."""

    def search(self, **_k):
        return {"hits": {"hits": []}, "aggregations": {}}

    def count(self, **_k):
        return {"count": 0}

    def index(self, **_k):
        from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
        from elasticsearch import ApiError

        meta = ApiResponseMeta(status=403, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                               node=NodeConfig("http", "localhost", 9200))
        raise ApiError("cluster_block_exception", meta, {"error": "index read-only"})

    delete = index

    def options(self, **_k):
        return self


class Sampler:
    """Samples as a running sampler keeps taking them: fresh at every round."""

    def __init__(self, samples):
        self.samples = samples

    def health(self, now, max_age_seconds):
        return health_facts([x.model_copy(update={"timestamp": now}) for x in self.samples], now, max_age_seconds)


class Sender:
    def __init__(self):
        self.bodies = []

    def send(self, body):
        self.bodies.append(body)
        return Delivery("sent", 1)


def test_without_elasticsearch_the_service_names_it_and_still_alerts_on_what_it_sees(tmp_path):
    settings = load_settings(run_dir=tmp_path, alert_eval_interval_seconds=INTERVAL)
    now = [T0]
    sender = Sender()
    r = parse_rules({**SHIPPED.model_dump(), "defaults": {**SHIPPED.defaults.model_dump(), "for_seconds": 0,
                                                         "group_wait_seconds": 0, "group_interval_seconds": 0},
                     "service_down": {**SHIPPED.service_down.model_dump(), "for_seconds": None},
                     "elasticsearch_unavailable": {"for_seconds": None}})
    svc = AlertingService(settings, rules=r, es=EsDown(), sender=sender, clock=lambda: now[0])
    svc.sampler = Sampler([service("producer", "held", at=T0)])
    for _ in range(3):
        svc.evaluation_round()
        now[0] += timedelta(seconds=INTERVAL)
    texts = [b["text"] for b in sender.bodies]
    assert len(texts) == 2, texts
    assert any("Elasticsearch unavailable" in t and "ConnectionError" in t for t in texts)
    assert any("No new observations are published (producer down)" in t for t in texts)
    # Kept on disk: a restart while Elasticsearch is still down sends nothing twice.
    again = AlertingService(settings, rules=r, es=EsDown(), sender=sender, clock=lambda: now[0])
    again.sampler = svc.sampler
    again.evaluation_round()
    assert len(sender.bodies) == 2


@pytest.mark.parametrize("template, model", [("alerts", "Incident"), ("metrics", "MetricSample")])
def test_every_field_of_the_documents_is_in_their_strict_index_template(template, model):
    """The templates are `dynamic: strict`: a field missing there makes Elasticsearch refuse the document."""
    import json

    from elk.alerting import engine
    from meteoflow import contracts

    cls = getattr(engine, model, None) or getattr(contracts, model)
    mapping = json.loads((REPO_ROOT / "elk" / "templates" / f"{template}.json").read_text())
    props = mapping["template"]["mappings"]["properties"]

    def missing(model_cls, known):
        for name, field in model_cls.model_fields.items():
            key = field.alias or name
            if key not in known:
                yield key
            sub = field.annotation
            inner = getattr(sub, "__args__", (sub,))[0]
            if isinstance(inner, type) and hasattr(inner, "model_fields") and key in known:
                yield from (f"{key}.{k}" for k in missing(inner, known[key]["properties"]))

    assert list(missing(cls, props)) == []


def test_without_elasticsearch_the_silences_last_read_still_hold_until_they_end(tmp_path):
    """A silence set for planned Elasticsearch maintenance must hold while Elasticsearch is down."""
    from meteoflow.contracts import Silence

    settings = load_settings(run_dir=tmp_path, alert_eval_interval_seconds=INTERVAL)
    now = [T0]
    sender = Sender()
    r = parse_rules({"defaults": {"for_seconds": 0, "group_wait_seconds": 0, "group_interval_seconds": 0},
                     "service_down": {"for_seconds": 0}, "elasticsearch_unavailable": {"for_seconds": 0}})
    svc = AlertingService(settings, rules=r, es=EsDown(), sender=sender, clock=lambda: now[0])
    svc.sampler = Sampler([service("producer", "held", at=T0)])
    svc.last_silences = [Silence(silence_id="s1", rule="elasticsearch_unavailable", starts_at=T0 - timedelta(hours=1),
                                 ends_at=T0 + timedelta(seconds=45), comment="ES upgrade", author="Awa",
                                 created_at=T0 - timedelta(hours=1))]
    svc.evaluation_round()
    assert ["Elasticsearch unavailable" in b["text"] for b in sender.bodies] == [False]  # the producer only
    now[0] += timedelta(seconds=60)  # the silence has ended: the outage is announced
    svc.evaluation_round()
    assert any("Elasticsearch unavailable" in b["text"] for b in sender.bodies)


@pytest.mark.parametrize("samples", [[], [service("producer", "held", at=T0)]], ids=["alone", "with-producer-down"])
def test_elasticsearch_that_answers_reads_but_refuses_writes_is_unavailable_until_it_takes_them(tmp_path, samples):
    """Its outage fires once and stays open: a successful read alone does not end it, even when
    nothing else is wrong."""
    settings = load_settings(run_dir=tmp_path, alert_eval_interval_seconds=INTERVAL)
    now = [T0]
    sender = Sender()
    r = parse_rules({**SHIPPED.model_dump(), "defaults": {**SHIPPED.defaults.model_dump(),
                                                         "group_wait_seconds": 0, "group_interval_seconds": 0},
                     "service_down": {**SHIPPED.service_down.model_dump(), "for_seconds": None}})
    svc = AlertingService(settings, rules=r, es=EsReadOnly(), sender=sender, clock=lambda: now[0])
    svc.sampler = Sampler(samples)
    for _ in range(8):
        svc.evaluation_round()
        now[0] += timedelta(seconds=INTERVAL)
    headlines = sorted(b["blocks"][0]["text"]["text"] for b in sender.bodies)
    assert headlines == sorted([":rotating_light: [CRITICAL] Elasticsearch unavailable"] + [
        ":rotating_light: [CRITICAL] No new observations are published (producer down)"] * len(samples))
