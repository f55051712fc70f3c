import json
from datetime import datetime, timezone

import pytest

from producer.regions import Region
from producer.run import prepare_batch
from producer.sources.replay import UNKNOWN_REGION, ReplayFileError, ReplaySource
from tests.fakes.owm_server import CURRENT, ONECALL, Request, default_body

DAKAR = Region(id="dakar", name="Dakar", lat=14.6928, lon=-17.4467, timezone_offset=0)
KOLDA = Region(id="kolda", name="Kolda", lat=12.8939, lon=-14.9406, timezone_offset=0)
MATAM = Region(id="matam", name="Matam", lat=15.6559, lon=-13.2554, timezone_offset=0)
NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)


def onecall(region, dt):
    body = default_body(Request(ONECALL, {"lat": str(region.lat), "lon": str(region.lon)}))
    body["current"]["dt"] = dt
    return body


@pytest.fixture
def replay_file(tmp_path):
    lines = [
        json.dumps({"region_id": "dakar", "response": onecall(DAKAR, 1767225600)}),  # line 1
        json.dumps({"region_id": "kolda", "response": default_body(
            Request(CURRENT, {"lat": str(KOLDA.lat), "lon": str(KOLDA.lon)}))}),
        "",  # blank lines are fine
        '{"region_id": "dakar", "response": {"current": ',  # line 4: cut short
        json.dumps({"response": onecall(DAKAR, 1)}),  # line 5: no region id
        json.dumps({"region_id": "atlantis", "response": onecall(DAKAR, 1767225600)}),  # line 6
        json.dumps({"region_id": "dakar", "response": onecall(DAKAR, 1767229200)}),  # line 7: dakar's 2nd
        json.dumps({"region_id": "kolda", "response": {"cod": 200, "hello": "world"}}),  # line 8: wrong shape
    ]
    path = tmp_path / "recorded.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_rounds_report_bad_lines_by_number_and_end(replay_file):
    source = ReplaySource(replay_file, interval_seconds=1.0)
    regions = [DAKAR, KOLDA, MATAM]

    first = source.fetch(regions, NOW)
    assert [(r["region_id"], r["observed_at"].hour) for r in first.records] == [("dakar", 0), ("kolda", 12)]
    reasons = sorted(f.reason for f in first.failures)
    assert any("line 4: not JSON" in r for r in reasons)
    assert any("line 5: no 'region_id'" in r for r in reasons)
    assert any("line 6: region 'atlantis' is not in the regions file" in r for r in reasons)
    assert any(f.region_id == "matam" and "no recorded response" in f.reason for f in first.failures)
    assert {f.region_id for f in first.failures} == {UNKNOWN_REGION, "atlantis", "matam"}
    assert not source.exhausted

    second = source.fetch(regions, NOW)
    assert [(r["region_id"], r["observed_at"].hour) for r in second.records] == [("dakar", 1)]
    (bad_shape,) = second.failures
    assert bad_shape.region_id == "kolda" and "line 8" in bad_shape.reason and "not a One Call" in bad_shape.reason
    assert source.exhausted

    # every unusable line with content ends up in the dead-letter topic, with its text
    letters = prepare_batch(first, "replay", "b", NOW).dead_letters + prepare_batch(second, "replay", "b", NOW).dead_letters
    assert len(letters) == 4
    assert any(d.payload == '{"region_id": "dakar", "response": {"current":' for d in letters)
    for obs in prepare_batch(first, "replay", "b", NOW).observations:
        assert obs.source == "replay"


def test_a_missing_replay_file():
    with pytest.raises(ReplayFileError, match="replay file not found"):
        ReplaySource("/nonexistent/recorded.jsonl", 1.0)
