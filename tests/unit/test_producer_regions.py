import json

import pytest

from producer.regions import DEFAULT_REGIONS_FILE, RegionsError, load_regions, parse_regions

SENEGAL_CAPITALS = {
    "dakar", "thies", "diourbel", "fatick", "kaolack", "kaffrine", "kolda", "louga", "matam", "saint-louis",
    "sedhiou", "tambacounda", "kedougou", "ziguinchor",
}


def test_default_file_is_the_14_regions_of_senegal():
    regions = load_regions()
    assert {r.id for r in regions} == SENEGAL_CAPITALS
    for region in regions:
        assert region.id.isascii() and region.id == region.id.lower()
        assert 12.0 <= region.lat <= 16.8 and -17.6 <= region.lon <= -11.3, region  # inside Senegal
        assert region.utc_offset_seconds == 0  # Senegal keeps UTC all year
    names = {r.id: r.name for r in regions}
    assert names["thies"] == "Thiès" and names["kedougou"] == "Kédougou"
    dakar = next(r for r in regions if r.id == "dakar")
    assert abs(dakar.lat - 14.69) < 0.05 and abs(dakar.lon + 17.45) < 0.05


def _write(tmp_path, data):
    path = tmp_path / "regions.json"
    path.write_text(json.dumps(data))
    return path


def test_a_latitude_out_of_range_names_the_entry_and_the_field(tmp_path):
    path = _write(tmp_path, {"regions": [
        {"id": "a", "name": "A", "lat": 10, "lon": 10},
        {"id": "b", "name": "B", "lat": 11, "lon": 11},
        {"id": "polar", "name": "P", "lat": 91.5, "lon": 0},
    ]})
    with pytest.raises(RegionsError) as info:
        load_regions(path)
    message = str(info.value)
    assert str(path) in message and "entry 2 (id 'polar')" in message and "lat:" in message and "91.5" in message


def test_a_longitude_out_of_range(tmp_path):
    with pytest.raises(RegionsError, match=r"entry 0 \(id 'x'\): lon: .*less than or equal to 180"):
        load_regions(_write(tmp_path, [{"id": "x", "name": "X", "lat": 0, "lon": 200}]))


def test_duplicate_ids_name_both_entries(tmp_path):
    data = [{"id": "x", "name": "X", "lat": 0, "lon": 0}, {"id": "y", "name": "Y", "lat": 1, "lon": 1},
            {"id": "x", "name": "X again", "lat": 2, "lon": 2}]
    with pytest.raises(RegionsError, match=r"entry 2 \(id 'x'\): id: duplicate of entry 0"):
        load_regions(_write(tmp_path, data))


@pytest.mark.parametrize("entry, expected", [
    ({"name": "No id", "lat": 0, "lon": 0}, r"entry 0: id: missing"),
    ({"id": "bad id!", "name": "X", "lat": 0, "lon": 0}, r"entry 0 \(id 'bad id!'\): id: String should match"),
    ({"id": "x", "name": "X", "lat": "north", "lon": 0}, r"entry 0 \(id 'x'\): lat: Input should be a valid number"),
    ({"id": "x", "name": "X", "lat": 0, "lon": 0, "altitude": 3}, r"entry 0 \(id 'x'\): altitude: unknown field \(got 3\)"),
    ("dakar", r"entry 0: expected an object"),
])
def test_bad_entries(entry, expected):
    with pytest.raises(RegionsError, match=expected):
        parse_regions([entry], where="f.json")


def test_file_problems(tmp_path):
    with pytest.raises(RegionsError, match="regions file not found"):
        load_regions(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "x",')
    with pytest.raises(RegionsError, match="not JSON: .* line 1"):
        load_regions(broken)
    with pytest.raises(RegionsError, match="no regions"):
        load_regions(_write(tmp_path, []))
    with pytest.raises(RegionsError, match="expected a JSON list"):
        load_regions(_write(tmp_path, {"zones": []}))


def test_a_user_file_without_offsets_uses_the_longitude():
    (region,) = parse_regions([{"id": "tokyo", "name": "Tokyo", "lat": 35.68, "lon": 139.69}])
    assert region.utc_offset_seconds == 9 * 3600 and region.coastal is False
    assert DEFAULT_REGIONS_FILE.name == "regions_senegal.json"
