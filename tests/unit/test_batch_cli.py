"""`python -m batch`'s flags: each bad one is a one-line error naming it (exit 2), before Spark starts;
and the archive's row shape, which the recompute reads back."""

from __future__ import annotations

from datetime import date

import pytest

from batch.__main__ import parse_args
from streaming.archive import ARCHIVE_COLUMNS, PRECIPITATION_FIELDS, archive_row, archive_schema
from tests.fakes.observations import simulated_observations


def error_of(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_recompute_flags():
    args = parse_args(["recompute", "--from", "2026-01-01", "--to", "2026-01-31", "--region", "saint-louis"])
    assert (args.start, args.end, args.region) == (date(2026, 1, 1), date(2026, 1, 31), "saint-louis")
    assert parse_args(["recompute", "--from", "2026-01-01", "--to", "2026-01-01"]).region is None


@pytest.mark.parametrize("argv, message", [
    (["recompute", "--from", "2026-13-01", "--to", "2026-12-31"], "argument --from: '2026-13-01' is not a date"),
    (["recompute", "--from", "2026-01-01", "--to", "yesterday"], "argument --to: 'yesterday' is not a date"),
    (["recompute", "--from", "2026-02-01", "--to", "2026-01-01"], "argument --to: 2026-01-01 is before --from"),
    (["recompute", "--from", "2026-01-01", "--to", "2026-01-02", "--region", "../etc"], "argument --region: '../etc'"),
    (["recompute", "--to", "2026-01-02"], "--from"),
    ([], "command"),
])
def test_bad_flags_are_named(argv, message, capsys):
    assert message in error_of(argv, capsys)


def test_archive_rows_follow_the_schema_with_precipitation_and_partitions_last():
    obs = simulated_observations(regions=1, hours=1, per_hour=1)[0]
    row = dict(zip(ARCHIVE_COLUMNS, archive_row(obs, partition=2, offset=41)))
    assert [f.name for f in archive_schema().fields][-2:] == ["date", "region_id"]
    assert row["region_id"] == obs.region_id and row["date"] == obs.observed_at.strftime("%Y-%m-%d")
    assert row["temp"] == obs.temp and row["observed_at"] == obs.observed_at
    assert (row["kafka_partition"], row["kafka_offset"]) == (2, 41)
    assert all(name in row for name in PRECIPITATION_FIELDS)


def test_rain_commands(capsys):
    assert parse_args(["train-rain"]).iterations == 30
    assert parse_args(["train-rain", "--iterations", "5"]).iterations == 5
    assert parse_args(["predict-rain"]).command == "predict-rain"
    assert "argument --iterations" in error_of(["train-rain", "--iterations", "0"], capsys)


def test_an_archive_query_that_ended_by_itself_is_a_failure_the_job_exits_on():
    from types import SimpleNamespace

    from meteoflow.settings import load_settings
    from streaming.archive import ArchiveQuery

    archive = ArchiveQuery(load_settings())
    assert archive.failure() is None  # never started
    archive.query = SimpleNamespace(isActive=True, exception=lambda: None)
    assert archive.failure() is None
    archive.query = SimpleNamespace(isActive=False, exception=lambda: ValueError("batch 3 failed"))
    assert str(archive.failure()) == "batch 3 failed"
    archive.query = SimpleNamespace(isActive=False, exception=lambda: None)
    assert "meteoflow-archive query stopped" in str(archive.failure())
