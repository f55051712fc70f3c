"""NOAA ISD-Lite: the documented fixed-width format parsed column by column (any line parses or is
rejected naming its column), records to observations, stations to the nearest region."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from meteoflow.contracts import validate_observation
from producer.regions import Region, load_regions
from producer.sources.isd import (
    COLUMN_NAMES, IsdLineError, IsdSkip, Station, format_line, load_stations, nearest_region, observation_fields,
    parse_line, parse_station_arg, station_of_file,
)

DAKAR = Region(id="dakar", name="Dakar", lat=14.69, lon=-17.45, coastal=True, timezone_offset=0)
# A wet-season evening at Dakar-Yoff as NOAA writes it: 27.5 C, dew point 24.0, 1010.5 hPa, 240 deg at 4.6 m/s,
# 7 oktas, 5.2 mm in the hour, no 6-hour total.
LINE = "2024 08 15 18   275   240 10105   240    46     7    52 -9999"
VALUES = dict(year=2024, month=8, day=15, hour=18, air_temperature=275, dew_point=240, sea_level_pressure=10105,
              wind_direction=240, wind_speed=46, sky_cover=7, precipitation_1h=52, precipitation_6h=-9999)


def test_a_documented_line_is_read_with_its_scales():
    assert format_line(VALUES) == LINE and len(LINE) == 61
    record = parse_line(LINE + "\n")
    assert record.observed_at == datetime(2024, 8, 15, 18, tzinfo=timezone.utc)
    assert (record.air_temperature, record.dew_point, record.sea_level_pressure) == (27.5, 24.0, 1010.5)
    assert (record.wind_direction, record.wind_speed, record.sky_cover) == (240, 4.6, 7)
    assert (record.precipitation_1h, record.precipitation_6h) == (5.2, None)


def test_trace_precipitation_is_zero_and_missing_is_none():
    record = parse_line(format_line({**VALUES, "precipitation_1h": -1, "dew_point": -9999}))
    assert record.precipitation_1h == 0.0 and record.dew_point is None


@pytest.mark.parametrize("line, column", [
    (LINE[:13] + "  27.5" + LINE[19:], "air_temperature"),
    (LINE.replace("2024 08", "2024 13"), "month"),
    (LINE.replace("08 15", "02 30"), "day"),
    (LINE[:11] + "24" + LINE[13:], "hour"),
    (LINE[:40], "wind_speed"),
    (LINE + "  extra", "line"),
    (LINE[:31] + "   400" + LINE[37:], "wind_direction"),
    (LINE[:49] + "    -5" + LINE[55:], "precipitation_1h"),
    ("2024-08 15 18" + LINE[13:], "month"),
    ("20x4" + LINE[4:], "year"),
])
def test_a_bad_line_is_rejected_naming_its_column(line, column):
    with pytest.raises(IsdLineError) as info:
        parse_line(line)
    assert info.value.column == column and str(info.value).startswith(column)


_coded = st.one_of(st.just(-9999), st.integers(-9999, 99999))


@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_any_text_parses_or_is_rejected_with_a_column(line):
    try:
        parse_line(line)
    except IsdLineError as exc:
        assert exc.column in COLUMN_NAMES + ("line",) and exc.reason


@hsettings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"year": st.integers(1901, 2199), "month": st.integers(1, 12),
                              "day": st.integers(1, 31), "hour": st.integers(0, 23),
                              **{name: _coded for name in COLUMN_NAMES[4:]}}))
def test_any_line_in_the_format_parses_or_is_rejected_with_a_column(values):
    line = format_line(values)
    try:
        record = parse_line(line)
    except IsdLineError as exc:
        assert exc.column in COLUMN_NAMES
        return
    assert record.observed_at.hour == values["hour"]
    if values["air_temperature"] != -9999:
        assert record.air_temperature == values["air_temperature"] / 10


@hsettings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.characters(codec="ascii"))
def test_one_corrupted_character_still_parses_or_names_a_column(position, char):
    line = LINE[:position] + char + LINE[position + 1:]
    try:
        parse_line(line)
    except IsdLineError as exc:
        assert exc.column in COLUMN_NAMES + ("line",)


def test_a_record_becomes_a_valid_observation_with_its_rain():
    fields = observation_fields(parse_line(LINE), DAKAR)
    obs = validate_observation({**fields, "source": "noaa_isd", "batch_id": "backfill-x",
                                "produced_at": datetime(2026, 1, 1, tzinfo=timezone.utc)})
    assert obs.rain_1h == 5.2 and obs.precipitation_reported is True and obs.clouds == 87.5
    assert 80 <= obs.humidity <= 82 and obs.region_id == "dakar"


def test_missing_required_values_skip_the_record_and_unmeasured_rain_is_unknown():
    with pytest.raises(IsdSkip, match="sea_level_pressure missing"):
        observation_fields(parse_line(format_line({**VALUES, "sea_level_pressure": -9999})), DAKAR)
    fields = observation_fields(parse_line(format_line({**VALUES, "precipitation_1h": -9999})), DAKAR)
    assert fields["rain_1h"] is None and fields["precipitation_reported"] is False


def test_stations_from_the_history_file_a_small_csv_or_the_command_line(tmp_path):
    history = tmp_path / "isd-history.csv"
    history.write_text('"USAF","WBAN","STATION NAME","CTRY","STATE","ICAO","LAT","LON","ELEV(M)","BEGIN","END"\n'
                       '"616410","99999","DAKAR/YOFF","SG","","GOOY","+14.740","-017.490","+0024.0","19730101","20250101"\n'
                       '"616990","99999","NO COORDINATES","SG","","","","","","19730101","20250101"\n')
    assert load_stations(history) == {"616410-99999": Station("616410-99999", 14.74, -17.49)}
    small = tmp_path / "stations.csv"
    small.write_text("station,lat,lon\n616950-99999,12.55,-16.27\n")
    assert load_stations(small)["616950-99999"].lat == 12.55
    bad = tmp_path / "bad.csv"
    bad.write_text("station,lat,lon\n616950-99999,95,-16.27\n")
    with pytest.raises(ValueError, match=r"line 2 \(station 616950-99999\): LAT '95' is outside"):
        load_stations(bad)
    assert parse_station_arg("616410-99999=14.74,-17.49") == Station("616410-99999", 14.74, -17.49)
    with pytest.raises(ValueError, match="expected USAF-WBAN=LAT,LON"):
        parse_station_arg("616410-99999")
    assert station_of_file(tmp_path / "616410-99999-2024.gz") == "616410-99999"


def test_a_station_maps_to_the_nearest_region_within_the_limit():
    regions = load_regions()
    assert nearest_region(Station("yoff", 14.74, -17.49), regions, 50).id == "dakar"
    assert nearest_region(Station("zig", 12.55, -16.27), regions, 50).id == "ziguinchor"
    with pytest.raises(ValueError, match=r"station bamako .* km from the nearest region .* limit is 50 km"):
        nearest_region(Station("bamako", 12.64, -8.0), regions, 50)


# --- Global Hourly CSV --------------------------------------------------------------------------
GH_HEADER = '"STATION","DATE","SOURCE","LATITUDE","LONGITUDE","ELEVATION","NAME","REPORT_TYPE","CALL_SIGN",' \
            '"QUALITY_CONTROL","WND","CIG","VIS","TMP","DEW","SLP","AA1"'
GH_ROW = '"61641099999","2024-08-15T18:00:00","4","14.7397","-17.49","24.0","DAKAR YOFF, SG","FM-12","99999",' \
         '"V020","240,1,N,0046,1","99999,9,9,N","010000,1,N,1","+0275,1","+0240,1","10105,1","01,0052,9,1"'


def test_a_global_hourly_row_is_read_like_an_isd_lite_line(tmp_path):
    from producer.sources.isd import file_rows, global_hourly_station

    path = tmp_path / "61641099999.csv"
    missing = GH_ROW.replace('"+0275,1"', '"+9999,9"').replace('"10105,1"', '"10105,7"')
    path.write_text("\n".join([GH_HEADER, GH_ROW, missing, GH_ROW.replace('"240,1,N', '"24x,1,N')]) + "\n")
    assert global_hourly_station(path) == Station("61641099999", 14.7397, -17.49)
    rows = list(file_rows(path))
    record = rows[0][2]()
    assert (record.air_temperature, record.dew_point, record.sea_level_pressure) == (27.5, 24.0, 1010.5)
    assert (record.wind_direction, record.wind_speed, record.precipitation_1h) == (240, 4.6, 5.2)
    assert record.observed_at == datetime(2024, 8, 15, 18, tzinfo=timezone.utc)
    second = rows[1][2]()
    assert second.air_temperature is None and second.sea_level_pressure is None  # missing; erroneous quality
    with pytest.raises(IsdLineError) as info:
        rows[2][2]()
    assert info.value.column == "WND" and rows[2][0] == 4


@hsettings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=120))
def test_any_global_hourly_row_parses_or_names_a_column(line):
    from producer.sources.isd import parse_global_hourly

    header = next(iter([GH_HEADER.replace('"', "").split(",")]))
    try:
        parse_global_hourly(header, line)
    except IsdLineError as exc:
        assert exc.column in set(header) | set(COLUMN_NAMES) | {"line"}
