import json
from datetime import datetime, timedelta, timezone

from elk.shipper.documents import document_id, index_for_topic, to_action
from elk.shipper.service import Backoff, bulk_operations, offsets_to_commit, split_bulk_items
from elk.templates import load_templates
from meteoflow.contracts import STREAMING_BATCH_ACTION
from meteoflow.contracts import OBSERVATION_FIELDS
from meteoflow.settings import load_settings
from tests.fakes.elk_records import dead_letter, log_line, observation, record

S = load_settings(es_index_prefix="mf")
NOW = datetime(2026, 11, 26, 12, 0, 30, tzinfo=timezone.utc)


def test_observation_becomes_a_document_with_lag_and_kafka_coordinates():
    obs = observation(observed_at=NOW - timedelta(seconds=90))
    action = to_action(S, record(S.topic_observations, obs.to_message(), offset=41, partition=2), NOW)
    assert action["_index"] == "mf-observations"
    assert action["_id"] == f"{S.topic_observations}-2-41"
    doc = action["_source"]
    assert doc["lag_seconds"] == 90.0
    assert doc["ingested_at"] == "2026-11-26T12:00:30.000Z"
    assert doc["region_id"] == "dakar" and doc["batch_id"] == "b-1"
    assert doc["location"] == {"lat": 14.69, "lon": -17.44}
    assert doc["kafka"] == {"topic": S.topic_observations, "partition": 2, "offset": 41, "key": "dakar",
                            "timestamp": "2023-11-14T22:13:20.000Z"}


def test_not_json_goes_to_the_deadletter_index_with_the_reason_and_the_same_id():
    action = to_action(S, record(S.topic_observations, b"{not json", offset=5), NOW)
    assert action["_index"] == "mf-deadletter"
    assert action["_id"] == document_id(S.topic_observations, 0, 5)
    doc = action["_source"]
    assert "not JSON" in doc["reason"] and doc["service"] == "shipper"
    assert doc["payload"] == "{not json"
    assert (doc["source_topic"], doc["source_partition"], doc["source_offset"]) == (S.topic_observations, 0, 5)


def test_invalid_observation_is_dead_lettered_naming_the_field():
    bad = json.loads(observation().to_message())
    bad["temp"] = 900
    action = to_action(S, record(S.topic_observations, json.dumps(bad).encode()), NOW)
    assert action["_index"] == "mf-deadletter"
    assert "temp" in action["_source"]["reason"]


def test_non_utf8_value_keeps_its_bytes():
    action = to_action(S, record(S.topic_logs, b"\xff\xfe"), NOW)
    assert action["_index"] == "mf-deadletter"
    assert action["_source"]["payload_base64"] == "//4="


def test_log_line_keeps_its_fields_and_time():
    line = log_line(**{"event.action": STREAMING_BATCH_ACTION, "meteoflow.streaming": {"batch_id": 3}})
    action = to_action(S, record(S.topic_logs, line, key=b"streaming"), NOW)
    doc = action["_source"]
    assert action["_index"] == "mf-logs"
    assert doc["meteoflow.streaming"] == {"batch_id": 3}
    assert doc["@timestamp"] == json.loads(line)["@timestamp"]
    assert doc["ingested_at"] == "2026-11-26T12:00:30.000Z"


def test_log_line_without_time_gets_kafkas():
    action = to_action(S, record(S.topic_logs, b'{"message": "x"}'), NOW)
    assert action["_source"]["@timestamp"] == "2023-11-14T22:13:20.000Z"


def test_dead_letters_are_indexed_as_they_came_and_broken_ones_get_a_reason():
    ok = to_action(S, record(S.topic_deadletter, dead_letter("temp: too hot")), NOW)
    assert ok["_index"] == "mf-deadletter" and ok["_source"]["service"] == "streaming"
    assert ok["_source"]["reason"] == "temp: too hot"
    broken = to_action(S, record(S.topic_deadletter, b'{"reason": "x"}'), NOW)
    assert broken["_source"]["service"] == "shipper"
    assert "not a DeadLetter" in broken["_source"]["reason"] and "service" in broken["_source"]["reason"]


def test_index_for_topic_names_unknown_topics():
    assert index_for_topic(S, S.topic_logs) == "mf-logs"
    try:
        index_for_topic(S, "other")
    except ValueError as exc:
        assert "other" in str(exc)
    else:
        raise AssertionError("unknown topic accepted")


def _mapped_paths(props: dict, prefix: str = "") -> set[str]:
    paths = set()
    for name, spec in props.items():
        paths.add(prefix + name)
        if "properties" in spec:
            paths |= _mapped_paths(spec["properties"], f"{prefix}{name}.")
    return paths


def _doc_paths(doc: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in doc.items():
        if isinstance(value, dict) and key != "location":
            paths |= _doc_paths(value, f"{prefix}{key}.")
        else:
            paths.add(prefix + key)
    return paths


def test_every_field_the_shipper_writes_is_in_the_strict_templates():
    templates = load_templates("mf")
    obs_map = _mapped_paths(templates["mf-observations"]["template"]["mappings"]["properties"])
    assert set(OBSERVATION_FIELDS) <= obs_map
    full = observation(observed_at=NOW, dew_point=20, clouds=10, visibility=10000, uvi=3, wind_deg=90, wind_gust=8,
                       weather_description="clear sky", weather_icon="01d", sunrise=NOW, sunset=NOW,
                       timezone_offset=0)
    doc = to_action(S, record(S.topic_observations, full.to_message()), NOW)["_source"]
    assert _doc_paths(doc) <= obs_map
    dl_map = _mapped_paths(templates["mf-deadletter"]["template"]["mappings"]["properties"])
    for rec in (record(S.topic_deadletter, dead_letter()), record(S.topic_logs, b"\xff")):
        assert _doc_paths(to_action(S, rec, NOW)["_source"]) <= dl_map
    for name, body in templates.items():
        dynamic = body["template"]["mappings"]["dynamic"]
        assert dynamic in ("strict", False), f"{name} would map unknown fields by guessing"


def test_bulk_items_split_into_acknowledged_retryable_and_refused():
    items = [
        {"index": {"_id": "a", "status": 201}},
        {"index": {"_id": "b", "status": 429, "error": {"type": "es_rejected_execution_exception"}}},
        {"index": {"_id": "c", "status": 400, "error": {"type": "document_parsing_exception", "reason": "bad"}}},
        {"index": {"_id": "d", "status": 503, "error": {"type": "unavailable_shards_exception"}}},
    ]
    ok, retry, refused = split_bulk_items(items)
    assert ok == [0] and retry == [1, 3]
    assert list(refused) == [2] and "document_parsing_exception" in refused[2] and "bad" in refused[2]


def test_bulk_operations_and_commit_offsets():
    actions = [to_action(S, record(S.topic_logs, log_line(), offset=o, partition=o % 2), NOW) for o in range(5)]
    ops = bulk_operations(actions)
    assert ops[0] == {"index": {"_index": "mf-logs", "_id": f"{S.topic_logs}-0-0"}}
    assert len(ops) == 10
    commits = offsets_to_commit([record(S.topic_logs, b"", offset=o, partition=o % 2) for o in range(5)])
    assert {tp.partition: om.offset for tp, om in commits.items()} == {0: 5, 1: 4}


def test_backoff_grows_to_a_cap():
    b = Backoff(initial=0.5, maximum=3)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3, 3]
    b.reset()
    assert b.next() == 0.5


def matches(query: dict, doc: dict) -> bool:
    """Evaluates the one query shape counted_deadletters builds (must_not term) on a document."""
    [(field, value)] = query["bool"]["must_not"]["term"].items()
    got = doc
    for part in field.split("."):
        got = got.get(part, {})
    return got != value


def test_an_invalid_observation_counts_as_one_dead_letter_not_two():
    from meteoflow.contracts import counted_deadletters

    bad = record(S.topic_observations, b'{"temp": 900}', offset=42)
    shippers_copy = to_action(S, bad, NOW)
    streamings = to_action(S, record(S.topic_deadletter, dead_letter(source_offset=42, source_topic=S.topic_observations),
                                     offset=3), NOW)
    poison_log = to_action(S, record(S.topic_logs, b"\xff", offset=9), NOW)
    assert {a["_index"] for a in (shippers_copy, streamings, poison_log)} == {S.index("deadletter")}
    counted = counted_deadletters(S.topic_observations)
    assert [matches(counted, a["_source"]) for a in (shippers_copy, streamings, poison_log)] == [False, True, True]
    # Both documents name the same original record, which is why one of them is enough.
    assert (shippers_copy["_source"]["source_offset"], streamings["_source"]["source_offset"]) == (42, 42)
