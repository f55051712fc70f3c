"""The MongoDB documents and the log events other services read back (meteoflow/contracts/
storage.py and events.py): what a writer builds, a reader validates back, and whatever a
stored document or a log line holds, a reader gets the model or a refusal naming the field."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import bson
import pytest
from bson.codec_options import CodecOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meteoflow.contracts import (
    utc_day, utc_days,
    BATCH_RUN_ACTION, FORECAST_STATE, OBSERVATIONS, PRODUCER_RUN_ACTION, STREAMING_BATCH_ACTION, BatchRunEvent,
    DailyPoint, DailyStats, FailedRegion, ForecastDocument, ForecastLeadPair, ForecastRun, ForecastRunPoint, ForecastRunSummary, ForecastSkill,
    ForecastSkillBucket, ForecastState, ForecastTargets, HourlyStats, InvalidDocument, InvalidEvent,
    Observation, ObservationDocument, ObservationPoint, Prediction, ProducerRunEvent, RainModelEvaluation, RainPrediction,
    RegionLatest, StoreProgress, StreamingBatchEvent, doc_id, point_key, valid_documents,
)
from meteoflow.logs import EcsJsonFormatter
from tests.fakes.observations import simulated_observations

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
PROPERTIES = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def stored(doc: dict) -> dict:
    """What pymongo reads back of a written document (BSON round trip, tz-aware client)."""
    return bson.decode(bson.encode(doc), CodecOptions(tz_aware=True))


def observation_document() -> ObservationDocument:
    return ObservationDocument.build(simulated_observations(regions=1, hours=1, per_hour=1, end=T0)[0],
                                     stored_at=T0 + timedelta(microseconds=1500))


def forecast_state() -> ForecastState:
    return ForecastState(_id="dakar", region_id="dakar", needs_forecast=False, last_observed_at=T0, status="ok",
                         last_attempt_at=T0, last_success_at=T0)


def forecast_document() -> ForecastDocument:
    return ForecastDocument.from_prediction(
        "dakar", Prediction(timestamp=T0, temperature=25.0, lower=24.0, upper=26.0), T0, horizon_hours=24)


def daily_stats() -> DailyStats:
    points = [DailyPoint.model_validate({**ObservationPoint.from_document(observation_document().to_document())
                                         .model_dump(by_alias=True), "humidity": 70.0, "wind_speed": 4.0,
                                         "rain_1h": rain}) for rain in (0.4, None)]
    return DailyStats.build("dakar", T0.replace(hour=0), points, computed_at=T0)


def rain_model() -> RainModelEvaluation:
    return RainModelEvaluation(
        _id=RainModelEvaluation.make_id("gbt", T0), model="gbt", trained_at=T0, lead_hours=3,
        train_until=T0 - timedelta(days=2), train_rows=900, test_rows=100, rain_share=0.18, auc=0.83, accuracy=0.8,
        true_negatives=70, false_positives=12, false_negatives=8, true_positives=10, training_seconds=3.2,
        model_uri="file:///tmp/rain/gbt", selected=True, label_basis="rain_1h > 0")


def forecast_run() -> ForecastRun:
    return ForecastRun(
        _id=ForecastRun.make_id("dakar", T0), region_id="dakar", run_at=T0, origin=T0 - timedelta(minutes=20),
        model="prophet", horizon_hours=2, band_level=0.95, persistence=24.5,
        points=[ForecastRunPoint(target_time=T0 + timedelta(hours=h), yhat=25.0, yhat_lower=23.0, yhat_upper=27.0,
                                 climatology=None if h == 2 else 24.0) for h in (1, 2)])


def forecast_skill() -> ForecastSkill:
    return ForecastSkill(_id=ForecastSkill.make_id("dakar", "24h", 3), region_id="dakar", window="24h", lead_hours=3,
                         count=12, model_mae=1.2, model_bias=-0.1, persistence_mae=1.5, persistence_bias=0.2,
                         climatology_mae=None, climatology_bias=None, coverage=0.92, band_level=0.95, updated_at=T0)


def skill_bucket() -> ForecastSkillBucket:
    return ForecastSkillBucket(
        _id=doc_id("dakar", T0), region_id="dakar", target_time=T0, observed=24.8, updated_at=T0,
        leads=[ForecastLeadPair(lead_hours=1, run_at=T0 - timedelta(hours=1), model="prophet", yhat=25.0,
                                yhat_lower=23.0, yhat_upper=27.0, band_level=0.95, persistence=24.5, climatology=None)])


EXAMPLES = {
    ObservationDocument: observation_document,
    ObservationPoint: lambda: ObservationPoint.from_document(observation_document().to_document()),
    # as the streaming job writes it: with the temps it comes from, by instant
    HourlyStats: lambda: HourlyStats.build("dakar", T0, {point_key(T0): 20.0, point_key(T0 + timedelta(
        minutes=20)): 21.5}, computed_at=T0),
    RegionLatest: lambda: RegionLatest.of(observation_document()),
    ForecastDocument: forecast_document,
    ForecastState: forecast_state,
    # the history and forecast-trust documents (issues 16 and 17), as their writers build them
    DailyStats: daily_stats,
    RainModelEvaluation: rain_model,
    RainPrediction: lambda: RainPrediction(_id="dakar", region_id="dakar", from_hour=T0, lead_hours=3, probability=0.42,
                                           model="gbt", model_trained_at=T0 - timedelta(hours=5), predicted_at=T0),
    ForecastRun: forecast_run,
    ForecastSkill: forecast_skill,
    ForecastSkillBucket: skill_bucket,
    ForecastTargets: lambda: ForecastTargets(_id="dakar", region_id="dakar", runs=[forecast_run()]),
    StoreProgress: lambda: StoreProgress(_id=OBSERVATIONS, stored_at=T0),
}


# --- writers and readers agree ------------------------------------------------------------------
@pytest.mark.parametrize("model", list(EXAMPLES), ids=lambda m: m.__name__)
def test_what_a_writer_stores_a_reader_validates_back(model):
    doc = EXAMPLES[model]()
    written = doc.to_document()
    assert written["_id"] == doc.id and "id" not in written
    assert all(v.microsecond % 1000 == 0 for v in written.values() if isinstance(v, datetime))  # BSON millis
    assert model.from_document(stored(written)).to_document() == written


def test_the_fast_observation_document_is_the_built_one():
    for obs in simulated_observations(regions=3, hours=3, per_hour=3, end=T0):
        obs = obs.model_copy(update={"observed_at": obs.observed_at.replace(microsecond=123_456)})
        for stored_at in (T0, T0.astimezone(timezone(timedelta(hours=2))).replace(microsecond=987_654)):
            assert ObservationDocument.document(obs, stored_at) == ObservationDocument.build(obs, stored_at).to_document()


def test_the_fast_hourly_document_is_the_built_one():
    temps = {point_key(T0): 20.0, point_key(T0 + timedelta(minutes=20)): 21.5, point_key(T0 + timedelta(minutes=40)): -3.25}
    computed = T0.astimezone(timezone(timedelta(hours=-1))).replace(microsecond=456_789)
    assert HourlyStats.document("dakar", T0, temps, computed) == HourlyStats.build("dakar", T0, temps, computed).to_document()


def test_a_regions_latest_is_its_newest_observation_document_under_the_region_id():
    doc = observation_document()
    latest = RegionLatest.of(doc)
    assert latest.id == doc.region_id and latest.to_document() == {**doc.to_document(), "_id": doc.region_id}
    assert latest.observation() == doc.observation()


def test_hourly_stats_from_temps_by_instant_keep_them_and_compute_the_same_figures():
    by_instant = HourlyStats.build("dakar", T0, {point_key(T0): 20.0, point_key(T0 + timedelta(seconds=1)): 21.5}, T0)
    from_list = HourlyStats.build("dakar", T0, [20.0, 21.5], T0)
    assert by_instant.model_dump(exclude={"temps"}) == from_list.model_dump(exclude={"temps"})
    assert by_instant.temps == {point_key(T0): 20.0, point_key(T0 + timedelta(seconds=1)): 21.5}
    assert from_list.temps is None  # documents written before temps were kept still read
    assert point_key(T0.replace(microsecond=999_000)) == point_key(T0)  # the _id's resolution: seconds


def test_an_observation_document_is_the_observation_plus_its_id_and_storage_time():
    obs = simulated_observations(regions=1, hours=1, per_hour=1, end=T0)[0]
    doc = ObservationDocument.build(obs, stored_at=T0)
    assert doc.id == doc_id(obs.region_id, obs.observed_at) and doc.stored_at == T0
    assert doc.observation() == obs
    # a document written before stored_at was recorded is still an observation document
    assert ObservationDocument.from_document({**doc.to_document(), "stored_at": None}).stored_at is None


def test_naive_bson_dates_are_utc_and_unknown_fields_are_ignored():
    written = forecast_state().to_document()
    naive = {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in written.items()}
    state = ForecastState.from_document({**naive, "added_by_a_newer_writer": 1})
    assert state.last_observed_at == T0 and state.last_observed_at.tzinfo is not None


def test_the_projection_of_a_partial_read_names_exactly_its_fields():
    assert ObservationPoint.projection() == {"_id": 1, "region_id": 1, "observed_at": 1, "temp": 1, "lat": 1,
                                             "lon": 1}


def test_a_refusal_names_the_collection_the_id_and_the_field():
    bad = {**forecast_document().to_document(), "yhat": "warm"}
    with pytest.raises(InvalidDocument, match=r"^forecasts document _id='dakar\|2026-03-01T12:00:00Z': yhat: "):
        ForecastDocument.from_document(bad)
    with pytest.raises(InvalidDocument, match=r"^forecast_state document: not a document \(got list\)"):
        ForecastState.from_document([1, 2])
    with pytest.raises(InvalidDocument, match=r"hourly_stats document _id=None: .*_id: missing"):
        HourlyStats.from_document({k: v for k, v in EXAMPLES[HourlyStats]().to_document().items() if k != "_id"})


def test_valid_documents_skips_and_logs_each_malformed_one(caplog):
    good = forecast_state().to_document()
    with caplog.at_level(logging.WARNING, logger="meteoflow.contracts"):
        states = valid_documents(ForecastState, [good, {"_id": "thies", "region_id": "thies"}, "junk", good])
    assert [s.id for s in states] == ["dakar", "dakar"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "forecast_state document _id='thies': needs_forecast: missing" in warnings[0].getMessage()
    assert warnings[0].fields["meteoflow.document"]["collection"] == FORECAST_STATE


# --- whatever a stored document holds ------------------------------------------------------------
hostile = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["\x00", "\ud800", "", "2026-03-01T12:00:00Z", "9999-12-31T23:59:59Z", "dakar", "ok"]),
    st.datetimes(), st.datetimes(timezones=st.timezones()),
    st.sampled_from([datetime.min, datetime.max, datetime(1969, 12, 31, 23, 59)]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def keys_of(model) -> list[str]:
    return sorted((f.alias or name) for name, f in model.model_fields.items())


@PROPERTIES
@given(st.sampled_from(list(EXAMPLES)), st.data())
def test_any_document_is_read_as_its_model_or_refused_naming_a_field(model, data):
    base = EXAMPLES[model]().to_document()
    changes = data.draw(st.dictionaries(st.sampled_from(keys_of(model) + ["extra"]), hostile, max_size=4))
    removed = data.draw(st.lists(st.sampled_from(keys_of(model)), max_size=3))
    doc = {k: v for k, v in {**base, **changes}.items() if k not in removed}
    try:
        read = model.from_document(doc)
    except InvalidDocument as exc:
        message = str(exc)
        assert message.startswith(f"{model.COLLECTION} document _id=")
        assert any(f"{key}: " in message for key in keys_of(model)), message
    else:
        assert isinstance(read, model)
        assert all(v.tzinfo is not None for v in read.model_dump().values() if isinstance(v, datetime))


@PROPERTIES
@given(st.sampled_from(list(EXAMPLES)), st.one_of(hostile, st.lists(hostile, max_size=3)))
def test_anything_that_is_not_a_document_is_refused(model, value):
    with pytest.raises(InvalidDocument, match=f"^{model.COLLECTION} document"):
        model.from_document(value)


# --- log events --------------------------------------------------------------------------------
def batch_event() -> StreamingBatchEvent:
    return StreamingBatchEvent(
        batch_id=3, input_rows=5, rows_per_second=41.7, durations_ms={"total": 120.0, "spark_trigger": 130},
        kafka_end_offsets={"weather.observations": {"0": 5}}, dead_letters=1, stored=4, stats_upserted=2,
        forecast=ForecastRunSummary(ok=1, failed=0, skipped=0, errors=0, deferred=0, forecasts_written=24))


def run_event() -> ProducerRunEvent:
    return ProducerRunEvent(batch_id="b-1", source="simulator", records=13, regions_ok=13,
                            regions_failed=[FailedRegion(region_id="kolda", reason="HTTP 500")],
                            regions_failed_count=1, dead_letters=0, duration_s=0.25)


def batch_run_event() -> BatchRunEvent:
    return BatchRunEvent(job="train-rain", outcome="not-ready", exit_code=3, duration_s=14.2,
                         message="train-rain: the archive cannot train a rain model yet")


EVENTS = {StreamingBatchEvent: batch_event, ProducerRunEvent: run_event, BatchRunEvent: batch_run_event}


def logged_line(event, nested: bool = False) -> dict:
    """The line a service logs with `extra=event.log_extra()`, as shipped (JSON)."""
    record = logging.LogRecord("svc", logging.INFO, __file__, 0, "done", (), None)
    record.created = T0.timestamp()
    record.fields = event.log_extra()["fields"]
    line = json.loads(EcsJsonFormatter("svc").format(record))
    if nested:  # as Logstash or an ingest pipeline may expand dotted keys
        body = line.pop(event.FIELD)
        line["meteoflow"] = {event.FIELD.split(".")[1]: body}
    return line


@pytest.mark.parametrize("model", list(EVENTS), ids=lambda m: m.__name__)
@pytest.mark.parametrize("nested", [False, True])
def test_what_a_service_logs_a_reader_validates_back(model, nested):
    event = EVENTS[model]()
    line = logged_line(event, nested)
    assert line["event.action"] == {StreamingBatchEvent: STREAMING_BATCH_ACTION, ProducerRunEvent: PRODUCER_RUN_ACTION,
                                    BatchRunEvent: BATCH_RUN_ACTION}[model]
    logged = model.from_log_line(line)
    assert logged.event == event and logged.at == T0


def test_the_keys_readers_used_to_guess_at_are_refused_by_name():
    line = {"@timestamp": "2026-03-01T12:00:00Z", "event.action": STREAMING_BATCH_ACTION,
            "meteoflow.streaming": {"batchId": 1, "numInputRows": 3, "observations_written": 3}}
    with pytest.raises(InvalidEvent, match="meteoflow.streaming: batch_id: missing; input_rows: missing"):
        StreamingBatchEvent.from_log_line(line)
    with pytest.raises(InvalidEvent, match="producer-run log line: meteoflow.producer: missing"):
        ProducerRunEvent.from_log_line({"@timestamp": "2026-03-01T12:00:00Z"})
    with pytest.raises(InvalidEvent, match="@timestamp: "):
        ProducerRunEvent.from_log_line({**logged_line(run_event()), "@timestamp": "yesterday"})


@PROPERTIES
@given(st.sampled_from(list(EVENTS)), st.data())
def test_any_log_line_is_read_as_its_event_or_refused_naming_a_field(model, data):
    line = logged_line(EVENTS[model]())
    body = dict(line[model.FIELD])
    body.update(data.draw(st.dictionaries(st.sampled_from(keys_of(model) + ["extra"]), hostile, max_size=4)))
    for key in data.draw(st.lists(st.sampled_from(keys_of(model)), max_size=3)):
        body.pop(key, None)
    line = {**line, model.FIELD: body, "@timestamp": data.draw(st.one_of(st.just(line["@timestamp"]), hostile))}
    try:
        logged = model.from_log_line(line)
    except InvalidEvent as exc:
        message = str(exc)
        assert message.startswith(f"{model.ACTION} log line")
        assert any(f"{key}" in message for key in keys_of(model) + ["@timestamp"]), message
    else:
        assert isinstance(logged.event, model) and logged.at.tzinfo is not None


@PROPERTIES
@given(st.one_of(hostile, st.dictionaries(st.sampled_from(["@timestamp", "meteoflow.streaming", "meteoflow"]),
                                          hostile, max_size=3)))
def test_anything_else_as_a_log_line_is_refused(value):
    with pytest.raises(InvalidEvent, match=f"^{STREAMING_BATCH_ACTION} log line"):
        StreamingBatchEvent.from_log_line(value)


def test_collections_keep_their_names():
    assert (ObservationDocument.COLLECTION, ObservationPoint.COLLECTION, ForecastState.COLLECTION) == (
        OBSERVATIONS, OBSERVATIONS, FORECAST_STATE)


# --- an observation's day ----------------------------------------------------------------------
@given(start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
       span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)),
       offset=st.integers(-14, 14))
def test_utc_days_cover_exactly_the_days_a_window_touches(start, span, offset):
    zone = timezone(timedelta(hours=offset))
    end = start + span
    days = utc_days(start.astimezone(zone), end.astimezone(zone))  # the same instants in another zone
    step = timedelta(minutes=17)
    touched = {utc_day(start + step * n) for n in range(int(span / step) + 1)} | {utc_day(end)}
    assert days == sorted(touched) and len(days) == len(set(days))
    assert utc_day(start.astimezone(zone)) == days[0]


def test_an_observation_document_carries_its_utc_day_one_without_is_still_valid_and_a_wrong_day_is_not():
    obs = Observation(region_id="dakar", region_name="Dakar", lat=14.7, lon=-17.4, temp=25.0, humidity=60.0,
                      pressure=1012.0, wind_speed=3.0, source="simulator", batch_id="run-1",
                      observed_at=datetime(2026, 12, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2))),
                      produced_at=datetime(2026, 12, 2, 1, 31, tzinfo=timezone.utc))
    written = ObservationDocument.document(obs, stored_at=datetime(2026, 12, 2, 2, tzinfo=timezone.utc))
    assert written["day"] == "2026-12-02"  # the UTC day, whatever the zone it was observed in
    assert written == ObservationDocument.build(obs, datetime(2026, 12, 2, 2, tzinfo=timezone.utc)).to_document()
    older = {k: v for k, v in written.items() if k != "day"}  # stored before `day` existed
    assert ObservationDocument.from_document(older).day is None
    with pytest.raises(ValueError):
        ObservationDocument.from_document({**written, "day": "1 Dec"})


def test_side_by_side_runs_store_calls_at_once_and_raises_only_when_all_have_ended():
    import threading

    from meteoflow.contracts import side_by_side

    both_running = threading.Barrier(2, timeout=10)  # each call waits for the other: only at once passes

    def write(name):
        both_running.wait()
        return name

    assert side_by_side(lambda: write("observations"), lambda: write("recent")) == ["observations", "recent"]

    ended = threading.Event()

    def fails():
        raise RuntimeError("write refused")

    def slow():
        both_running.wait()  # released below, after the failing call has already failed
        ended.set()

    releaser = threading.Thread(target=lambda: both_running.wait())
    with pytest.raises(RuntimeError, match="write refused"):
        releaser.start()
        side_by_side(fails, slow)
    assert ended.is_set()  # not left running behind the error
    releaser.join()
