import json
from datetime import datetime, timedelta, timezone

from meteoflow.kafka import KafkaRecord
from meteoflow.contracts import HourlyStats, ObservationDocument, ObservationPoint, doc_id, point_key
from meteoflow.contracts import hour_floor, hourly_stats
from streaming.records import hourly_series, latest_per_region, observation_documents, split_batch, touched_hours
from tests.fakes.observations import simulated_observations

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def rec(value, offset=0, key=b"dakar"):
    return KafkaRecord(key=key, value=value, topic="weather.observations", partition=1, offset=offset)


def good(**changes):
    data = simulated_observations(regions=1, hours=1, per_hour=1, end=T0)[0].to_json_dict()
    data.update(changes)
    return json.dumps(data).encode()


def test_split_keeps_valid_records_and_dead_letters_the_rest_with_where_and_why():
    missing = json.loads(good())
    del missing["temp"]
    batch = [
        rec(good(), 0),
        rec(b"{not json", 1),
        rec(json.dumps(missing).encode(), 2),
        rec(good(humidity="wet"), 3),
        rec(good(temp=900), 4),
        rec(None, 5),
        rec(b"\xff\xfe", 6),
    ]
    split = split_batch(batch)
    assert len(split.observations) == 1
    reasons = {dl.source_offset: dl.reason for dl in split.dead_letters}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert reasons[1].startswith("not JSON")
    assert "temp: missing" in reasons[2]
    assert reasons[3].startswith("humidity:")
    assert reasons[4].startswith("temp:") and "900" in reasons[4]
    assert "tombstone" in reasons[5]
    assert "UTF-8" in reasons[6]
    bad_json = next(dl for dl in split.dead_letters if dl.source_offset == 1)
    assert (bad_json.payload, bad_json.source_topic, bad_json.source_partition, bad_json.key, bad_json.service) == (
        "{not json", "weather.observations", 1, "dakar", "streaming")
    binary = next(dl for dl in split.dead_letters if dl.source_offset == 6)
    assert binary.payload_base64 == "//4="


def test_observation_documents_have_deterministic_ids_bson_dates_and_dedupe_within_a_batch():
    obs = simulated_observations(regions=2, hours=2, per_hour=2, end=T0)
    stored_at = T0 + timedelta(minutes=5)
    docs = observation_documents(obs + obs[:3], stored_at)
    assert len(docs) == len(obs)
    first = next(d for d in docs if d.id == doc_id(obs[0].region_id, obs[0].observed_at))
    stored = first.to_document()
    assert stored["_id"] == first.id and "id" not in stored
    assert isinstance(stored["observed_at"], datetime) and stored["observed_at"].tzinfo is not None
    assert stored["stored_at"] == stored_at and stored["temp"] == obs[0].temp
    assert ObservationDocument.from_document(stored) == first  # what the sink writes, a reader validates back
    assert first.observation() == obs[0]


def point(region_id, observed_at, temp):
    return ObservationPoint(_id=doc_id(region_id, observed_at), region_id=region_id, observed_at=observed_at,
                            temp=temp, lat=14.7, lon=-17.4)


def points(docs):
    return [ObservationPoint.from_document(d.to_document()) for d in docs]


def test_hourly_stats_recompute_exactly_the_touched_keys_from_stored_documents():
    stored = [
        point("a", T0, 20.0),
        point("a", T0 + timedelta(minutes=30), 24.0),
        point("a", T0 + timedelta(minutes=59, seconds=59), 22.0),
        point("a", T0 + timedelta(hours=1), 99.0),  # next hour: untouched
        point("b", T0, 10.0),  # untouched region
    ]
    stats = hourly_stats({("a", T0)}, stored, computed_at=T0)
    # The hour keeps its temps by instant, so a later batch merges into it without a read-back.
    temps = {point_key(p.observed_at): p.temp for p in stored[:3]}
    assert stats == [HourlyStats(_id=doc_id("a", T0), region_id="a", hour=T0, temp_min=20.0, temp_max=24.0,
                                 temp_mean=22.0, count=3, computed_at=T0, temps=temps)]


def test_hourly_stats_are_the_same_when_the_batch_is_replayed():
    obs = simulated_observations(regions=2, hours=3, per_hour=4, end=T0)
    docs = observation_documents(obs, T0)
    keys = touched_hours(obs)
    once = hourly_stats(keys, points(docs), T0)
    # a replay upserts the same _ids, so the stored set is unchanged and so are the stats
    replayed = {d.id: d for d in docs + observation_documents(obs, T0)}.values()
    assert hourly_stats(keys, points(replayed), T0) == once
    assert sum(s.count for s in once) == len(obs)


def test_touched_hours_and_hour_floor_work_in_utc():
    local = datetime(2026, 3, 1, 13, 45, tzinfo=timezone(timedelta(hours=1)))
    assert hour_floor(local) == T0
    obs = simulated_observations(regions=2, hours=2, per_hour=2, end=T0)
    assert touched_hours(obs) == {(r, T0 - timedelta(hours=h)) for r in ("dakar", "thies") for h in (1, 2)}


def test_hourly_series_averages_each_hour_oldest_first():
    points = [(T0 + timedelta(minutes=30), 12.0), (T0, 10.0), (T0 - timedelta(hours=1), 8.0)]
    series = hourly_series(points)
    assert [(p.ds, p.y) for p in series] == [("2026-03-01T11:00:00Z", 8.0), ("2026-03-01T12:00:00Z", 11.0)]


def test_latest_per_region():
    obs = simulated_observations(regions=2, hours=3, per_hour=1, end=T0)
    assert latest_per_region(obs) == {"dakar": T0 - timedelta(hours=1), "thies": T0 - timedelta(hours=1)}
