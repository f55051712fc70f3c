import json
from datetime import datetime, timezone

import pytest

from meteoflow.contracts import InvalidRecord, Observation, validate_observation


def record(**changes):
    base = dict(
        region_id="dakar",
        region_name="Dakar",
        lat=14.69,
        lon=-17.44,
        observed_at="2026-11-26T12:00:00Z",
        temp=27.5,
        humidity=60,
        pressure=1012,
        wind_speed=4.2,
        source="simulator",
        batch_id="b-1",
        produced_at="2026-11-26T12:00:01Z",
    )
    base.update(changes)
    return base


def test_round_trip_through_kafka_bytes():
    obs = validate_observation(record())
    again = validate_observation(obs.to_message())
    assert again == obs
    assert obs.key == b"dakar"
    assert json.loads(obs.to_message())["observed_at"] == "2026-11-26T12:00:00Z"
    assert obs.observed_at == datetime(2026, 11, 26, 12, tzinfo=timezone.utc)


def test_offsets_are_normalized_to_utc():
    obs = validate_observation(record(observed_at="2026-11-26T13:00:00+01:00"))
    assert obs.observed_at == datetime(2026, 11, 26, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ("[1, 2]", "not a JSON object"),
        (record(temp=900), "temp"),
        (record(temp="warm"), "temp"),
        (record(lat=91), "lat"),
        (record(humidity=-1), "humidity"),
        (record(source="satellite"), "source"),
        (record(observed_at="2026-11-26T12:00:00"), "observed_at"),
        (record(unexpected=1), "unexpected"),
    ],
)
def test_invalid_payloads_name_the_problem(payload, reason):
    with pytest.raises(InvalidRecord) as err:
        validate_observation(payload)
    assert reason in err.value.reason


def test_missing_field_is_named():
    data = record()
    del data["pressure"]
    with pytest.raises(InvalidRecord, match="pressure: missing"):
        validate_observation(data)


def test_schema_lists_every_contract_field():
    for name in ("region_id", "observed_at", "temp", "feels_like", "dew_point", "uvi", "wind_gust",
                 "weather_icon", "sunrise", "sunset", "timezone_offset", "source", "batch_id", "produced_at"):
        assert name in Observation.model_fields
