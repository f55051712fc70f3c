"""One record can cost only itself: property-based tests over the whole pure record path.

Whatever a Kafka value holds (arbitrary bytes, arbitrary JSON, a valid record with one field
mutated into something hostile), each record ends in exactly one of "stored" or
"dead-lettered", no exception escapes any stage, every dead letter fits in a Kafka message,
and every document a stage hands to MongoDB or Elasticsearch can be encoded.

The stages: the producer's batch preparation, the streaming job's validation, MongoDB documents,
hourly statistics and forecast series, and the shipper's Elasticsearch actions for each topic.
Runs are derandomized (the same examples every run, so CI cannot flake); set
METEOFLOW_HYPOTHESIS_EXAMPLES to search longer locally. Inputs found to break a stage are kept
below as @example regression cases.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import bson
from bson.codec_options import CodecOptions
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from elk.shipper.documents import to_action
from meteoflow.kafka import KafkaRecord
from meteoflow.contracts import (
    DEADLETTER_PAYLOAD_LIMIT, DeadLetter, HourlyStats, InvalidDocument, ObservationDocument, ObservationPoint,
)
from meteoflow.settings import load_settings
from producer.run import prepare_batch
from producer.sources.base import SourceResult
from meteoflow.contracts import hourly_stats
from streaming.records import hourly_series, latest_per_region, observation_documents, split_batch, touched_hours

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = load_settings(es_index_prefix="prop")
KAFKA_MAX_MESSAGE_BYTES = 1024 * 1024
EXAMPLES = int(os.environ.get("METEOFLOW_HYPOTHESIS_EXAMPLES", "150"))
PROPERTIES = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.large_base_example])

VALID = {
    "region_id": "dakar", "region_name": "Dakar", "lat": 14.69, "lon": -17.44,
    "observed_at": "2026-12-01T11:00:00Z", "temp": 27.5, "feels_like": 29.0, "humidity": 60.0,
    "pressure": 1012.0, "dew_point": 18.0, "clouds": 20.0, "visibility": 10000.0, "uvi": 3.0,
    "wind_speed": 4.2, "wind_deg": 90.0, "wind_gust": 6.0, "weather_main": "Clear",
    "weather_description": "clear sky", "weather_icon": "01d", "sunrise": "2026-12-01T07:20:00Z",
    "sunset": "2026-12-01T18:40:00Z", "timezone_offset": 0, "source": "simulator",
    "batch_id": "b-1", "produced_at": "2026-12-01T11:00:01Z",
}

# --- hostile values ----------------------------------------------------------------------
extreme_dates = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:30:00Z", "2190-01-01T00:00:00Z",
                     "9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z", "2026-12-01T13:00:01Z",
                     "2026-12-01T11:00:00", "", "2026-13-45T99:99:99Z", "NaN"]),
)
numbers = st.one_of(
    st.integers(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 2**63, -(2**63) - 1]),
)
texts = st.one_of(
    st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=2000),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x" * 70_000, "é" * 40, "\u202e", ""]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(st.text(max_size=10), children, max_size=5)),
    max_leaves=20,
)
hostile = st.one_of(numbers, texts, extreme_dates, json_values, st.just([[[[[[[[[[[]]]]]]]]]]]))


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def as_bytes(value) -> bytes:
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


# --- the properties --------------------------------------------------------------------------
def check_streaming(values: list[bytes | None]) -> None:
    records = [KafkaRecord(key=b"dakar", value=v, topic="weather.observations", partition=0, offset=i)
               for i, v in enumerate(values)]
    split = split_batch(records, NOW)
    stored_offsets = [i for i, v in enumerate(values) if i not in {dl.source_offset for dl in split.dead_letters}]
    # Exactly one outcome per record.
    assert len(split.observations) + len(split.dead_letters) == len(values)
    assert len(stored_offsets) == len(split.observations)
    for letter in split.dead_letters:
        assert letter.reason and letter.service == "streaming"
        message = letter.to_message()
        assert len(message) < KAFKA_MAX_MESSAGE_BYTES // 2, "a dead letter must fit in Kafka with room to spare"
        assert DeadLetter.model_validate_json(message) == letter
        # ...and the shipper indexes it as a dead letter, not as a rejection.
        action = to_action(SETTINGS, KafkaRecord("weather.deadletter", 0, 1, None, message), NOW)
        assert action["_source"].get("service") == "streaming", action["_source"].get("reason")
    docs = observation_documents(split.observations, NOW)
    # What the sink writes can be encoded, and the readers validate it back (as the contract's models).
    stored = [bson.decode(bson.encode(doc.to_document()), CodecOptions(tz_aware=True)) for doc in docs]
    for raw, doc in zip(stored, docs):
        assert ObservationDocument.from_document(raw).id == doc.id
    keys = touched_hours(split.observations)
    stats = hourly_stats(keys, [ObservationPoint.from_document(raw) for raw in stored], NOW)
    assert sum(s.count for s in stats) == len(docs)
    for s in stats:
        assert HourlyStats.from_document(bson.decode(bson.encode(s.to_document()), CodecOptions(tz_aware=True))) == s
    hourly_series((o.observed_at, o.temp) for o in split.observations)
    for when in latest_per_region(split.observations).values():
        assert when <= NOW + timedelta(hours=1)


def check_shipper(value: bytes | None) -> None:
    for topic in ("weather.observations", "pipeline.logs", "weather.deadletter", "unknown.topic"):
        action = to_action(SETTINGS, KafkaRecord(topic, 2, 9, b"k", value, 1_700_000_000_000), NOW)
        assert action["_id"] == f"{topic}-2-9"
        assert action["_bytes"] < KAFKA_MAX_MESSAGE_BYTES * 8
        encoded = json.dumps(action["_source"], allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
        assert len(encoded) == action["_bytes"]


def check_producer(candidate: dict) -> None:
    batch = prepare_batch(SourceResult(records=[candidate]), "openweathermap", "b-1", NOW)
    assert len(batch.observations) + len(batch.dead_letters) == 1
    for letter in batch.dead_letters:
        assert len(letter.to_message()) < KAFKA_MAX_MESSAGE_BYTES // 2


@PROPERTIES
@given(st.lists(st.binary(max_size=300), max_size=8))
@example([b"[" * 100_000])
@example([b'{"temp": ' + b"9" * 5000 + b"}"])
@example([bytes([0xff, 0xfe]) * 200_000])  # 400 KB that is not UTF-8
@example([None, b"", b"null", b"[]", b"\x00"])
def test_any_bytes_end_stored_or_dead_lettered(values):
    check_streaming(values)
    for value in values:
        check_shipper(value)


@PROPERTIES
@given(st.lists(json_values, max_size=6))
def test_any_json_ends_stored_or_dead_lettered(values):
    encoded = [as_bytes(v) for v in values]
    check_streaming(encoded)
    for value in encoded:
        check_shipper(value)


@PROPERTIES
@given(st.sampled_from(sorted(VALID)), hostile)
@example("observed_at", "0001-01-01T00:00:00+14:00")
@example("observed_at", "9999-12-31T23:30:00Z")
@example("observed_at", "2190-06-01T00:00:00Z")
@example("temp", float("nan"))
@example("region_name", "a\x00b")
@example("weather_description", "\ud800")
@example("batch_id", deep(5000))
def test_a_valid_record_with_any_field_mutated_ends_stored_or_dead_lettered(field, value):
    record = {**VALID, field: value}
    check_streaming([as_bytes(record), as_bytes(VALID)])
    check_shipper(as_bytes(record))
    producer_candidate = {k: v for k, v in record.items() if k not in {"source", "batch_id", "produced_at"}}
    check_producer(producer_candidate)


@PROPERTIES
@given(st.sampled_from(sorted(VALID)), hostile)
def test_a_mutated_record_next_to_valid_ones_costs_only_itself(field, value):
    others = [{**VALID, "region_id": f"r{i}", "observed_at": f"2026-12-01T0{i}:00:00Z"} for i in range(3)]
    values = [as_bytes(others[0]), as_bytes({**VALID, field: value}), as_bytes(others[1]), as_bytes(others[2])]
    split = split_batch([KafkaRecord("weather.observations", 0, i, b"k", v) for i, v in enumerate(values)], NOW)
    assert {o.region_id for o in split.observations} >= {"r0", "r1", "r2"}
    assert {dl.source_offset for dl in split.dead_letters} <= {1}


# --- the inputs of issue 12, each named -------------------------------------------------------
def test_a_far_future_reading_is_dead_lettered_and_old_history_stays_valid():
    future = as_bytes({**VALID, "observed_at": "2190-01-01T00:00:00Z"})
    ahead = as_bytes({**VALID, "observed_at": (NOW + timedelta(hours=1, seconds=1)).isoformat()})
    just_in = as_bytes({**VALID, "observed_at": (NOW + timedelta(minutes=59)).isoformat()})
    history = as_bytes({**VALID, "observed_at": "1999-06-01T00:00:00Z", "produced_at": "2026-12-01T00:00:00Z"})
    split = split_batch([KafkaRecord("t", 0, i, b"k", v) for i, v in enumerate([future, ahead, just_in, history])], NOW)
    assert sorted(dl.source_offset for dl in split.dead_letters) == [0, 1]
    assert all("after the time of processing" in dl.reason or "between" in dl.reason for dl in split.dead_letters)
    assert sorted(o.observed_at.year for o in split.observations) == [1999, 2026]


def test_the_window_ahead_is_a_setting():
    relaxed = load_settings(record_max_ahead_seconds=3 * 3600).record_limits
    two_hours = as_bytes({**VALID, "observed_at": (NOW + timedelta(hours=2)).isoformat()})
    assert split_batch([KafkaRecord("t", 0, 0, b"k", two_hours)], NOW, relaxed).observations
    assert split_batch([KafkaRecord("t", 0, 0, b"k", two_hours)], NOW).dead_letters


def test_a_1_mib_hostile_value_yields_a_small_dead_letter_that_keeps_size_and_hash():
    import hashlib

    for hostile_value in (bytes(range(256)) * 4096, b'"' * (1 << 20), b"\x01" * (1 << 20), b"[" * (1 << 20)):
        split = split_batch([KafkaRecord("t", 0, 0, b"k", hostile_value)], NOW)
        (letter,) = split.dead_letters
        assert len(letter.to_message()) < 512 * 1024  # the topic's max message is 1 MiB
        assert letter.payload_size == len(hostile_value) and letter.payload_truncated
        assert letter.payload_sha256 == hashlib.sha256(hostile_value).hexdigest()
        kept = letter.payload.encode() if letter.payload_base64 is None else __import__("base64").b64decode(letter.payload_base64)
        assert hostile_value.startswith(kept) and len(kept) <= DEADLETTER_PAYLOAD_LIMIT


def test_bytes_that_are_not_utf8_are_kept_as_base64_not_expanded():
    value = bytes([0xff, 0xfe]) * 200_000  # 400 KB: was a 1.7 MB dead letter
    (letter,) = split_batch([KafkaRecord("t", 0, 0, b"k", value)], NOW).dead_letters
    assert letter.payload == "" and letter.payload_base64 is not None
    assert len(letter.to_message()) < 100 * 1024


def test_a_dead_letter_whose_failed_at_is_out_of_range_is_rejected_by_the_shipper_not_fatal():
    bad = json.loads(DeadLetter.build(b"x", "why", "streaming").to_message())
    for failed_at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "not a date"):
        action = to_action(SETTINGS, KafkaRecord("weather.deadletter", 0, 3, None, as_bytes({**bad, "failed_at": failed_at})), NOW)
        assert action["_source"]["service"] == "shipper" and "failed_at" in action["_source"]["reason"]


def test_a_log_line_elasticsearch_could_not_parse_is_dead_lettered_not_sent():
    for line in (b'{"message": NaN}', b'{"message": "\\ud800"}', b'{"n": ' + b"1" * 5000 + b"}"):
        action = to_action(SETTINGS, KafkaRecord("pipeline.logs", 0, 1, None, line), NOW)
        assert action["_index"] == "prop-deadletter", line


# --- what the web app reads back ------------------------------------------------------------
@PROPERTIES
@given(st.one_of(json_values, st.datetimes(), st.datetimes(timezones=st.timezones()), extreme_dates,
                 st.integers(), st.floats()))
def test_the_web_app_reads_any_stored_time_as_a_time_or_unknown(value):
    from webapp import views

    when = views.as_utc(value)
    assert when is None or when.tzinfo is not None
    views.iso(value)


@PROPERTIES
@given(st.dictionaries(st.sampled_from(sorted(VALID)), hostile, max_size=8))
def test_the_web_app_shapes_any_stored_observation_or_skips_it(mutation):
    from webapp import views

    stored = {**VALID, "_id": "dakar|x", **mutation}
    try:
        doc = ObservationDocument.from_document(stored)
    except InvalidDocument as exc:
        assert "observations document _id=" in str(exc)
        return
    assert set(views.observation_body(doc)) == set(views.OBSERVATION_KEYS)
