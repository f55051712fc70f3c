"""The Silence, Acknowledgement and request models (meteoflow/contracts/alerting.py): what they accept, and
errors that name the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st
from pydantic import ValidationError

from meteoflow.contracts import (
    MAX_AUTHOR_CHARS, MAX_COMMENT_CHARS, SILENCE_MAX_SECONDS, Acknowledgement, AckRequest, Silence, SilenceRequest,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def fields(**changes) -> dict:
    base = dict(silence_id="abc123", rule="region_silence", subject="dakar", starts_at=T0,
                ends_at=T0 + timedelta(hours=2), comment="planned maintenance", author="awa", created_at=T0)
    base.update(changes)
    return base


def error_fields(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.errors()]


@pytest.mark.parametrize("changes, field, words", [
    (dict(rule=None, subject=None), "subject", "at least one matcher"),
    (dict(rule="  ", subject=""), "subject", "at least one matcher"),
    (dict(ends_at=T0), "ends_at", "after starts_at"),
    (dict(ends_at=T0 - timedelta(seconds=1)), "ends_at", "after starts_at"),
    (dict(ends_at=T0 + timedelta(days=30, seconds=1)), "ends_at", "at most 30 days"),
    (dict(ends_at="tomorrow"), "ends_at", "datetime"),
    (dict(comment=""), "comment", "at least 1"),
    (dict(comment="   "), "comment", "at least 1"),
    (dict(comment="x" * (MAX_COMMENT_CHARS + 1)), "comment", "at most"),
    (dict(comment="bell\x07"), "comment", "control characters"),
    (dict(author=""), "author", "at least 1"),
    (dict(author="a" * (MAX_AUTHOR_CHARS + 1)), "author", "at most"),
    (dict(author="two\nlines"), "author", "one line"),
    (dict(rule="Region Silence"), "rule", "rule name"),
    (dict(subject="dak ar"), "subject", "region id"),
    (dict(subject="x" * 129), "subject", "at most"),
    (dict(silence_id="a/b"), "silence_id", "pattern"),
    (dict(starts_at=datetime(9999, 1, 1, tzinfo=timezone.utc)), "starts_at", "out of range"),
    (dict(colour="red"), "colour", "Extra inputs"),
])
def test_a_bad_silence_is_refused_naming_the_field(changes, field, words):
    with pytest.raises(ValidationError) as err:
        Silence(**fields(**changes))
    assert field in error_fields(err.value)
    assert words in str(err.value)


def test_text_is_trimmed_and_naive_times_are_utc():
    s = Silence(**fields(comment="  two\nlines\tok  ", author=" awa ", starts_at=datetime(2026, 11, 26, 12),
                         ends_at="2026-11-26T13:00:00"))
    assert (s.comment, s.author) == ("two\nlines\tok", "awa")
    assert s.starts_at == T0 and s.ends_at == T0 + timedelta(hours=1)
    assert s.starts_at.tzinfo is not None


def test_one_matcher_is_enough():
    assert Silence(**fields(rule=None)).subject == "dakar"
    assert Silence(**fields(subject=None)).rule == "region_silence"


@hypothesis_settings(max_examples=200, deadline=None)
@given(start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
       seconds=st.integers(min_value=1, max_value=SILENCE_MAX_SECONDS),
       offset=st.integers(min_value=-2 * SILENCE_MAX_SECONDS, max_value=2 * SILENCE_MAX_SECONDS),
       expired_after=st.one_of(st.none(), st.integers(min_value=0, max_value=SILENCE_MAX_SECONDS)))
def test_a_silence_is_active_exactly_between_its_start_and_its_end_or_expiry(start, seconds, offset, expired_after):
    end = start + timedelta(seconds=seconds)
    expired_at = None if expired_after is None else start + timedelta(seconds=expired_after)
    s = Silence(**fields(starts_at=start, ends_at=end, created_at=start, expired_at=expired_at))
    again = Silence.model_validate_json(s.model_dump_json())  # as stored in and read from Elasticsearch
    assert again == s
    now = start + timedelta(seconds=offset)
    stop = min(end, expired_at) if expired_at is not None else end
    assert s.is_active(now) == (start <= now < stop)
    assert s.state(now) == ("scheduled" if now < start and now < stop else "active" if s.is_active(now) else "expired")


@hypothesis_settings(max_examples=100, deadline=None)
@given(seconds=st.one_of(st.integers(min_value=-10**9, max_value=0), st.integers(min_value=SILENCE_MAX_SECONDS + 1, max_value=10**9)))
def test_a_silence_of_no_time_or_longer_than_30_days_is_refused(seconds):
    with pytest.raises(ValidationError) as err:
        Silence(**fields(ends_at=T0 + timedelta(seconds=seconds)))
    assert error_fields(err.value) == ["ends_at"]


@pytest.mark.parametrize("changes, field", [
    (dict(), "duration_seconds"),
    (dict(ends_at=T0, duration_seconds=60), "duration_seconds"),
    (dict(duration_seconds=0), "duration_seconds"),
    (dict(duration_seconds=SILENCE_MAX_SECONDS + 1), "duration_seconds"),
    (dict(ends_at="soon"), "ends_at"),
    (dict(duration_seconds=60, author=" "), "author"),
    (dict(duration_seconds=60, silence_id="mine"), "silence_id"),  # the server names silences
])
def test_a_bad_silence_request_names_the_field(changes, field):
    body = {"rule": "region_silence", "comment": "maintenance", "author": "awa", **changes}
    with pytest.raises(ValidationError) as err:
        SilenceRequest(**body)
    assert field in error_fields(err.value)


def test_a_silence_request_takes_an_end_or_a_duration():
    assert SilenceRequest(subject="dakar", duration_seconds=3600, comment="c", author="a").ends_at is None
    assert SilenceRequest(subject="dakar", ends_at=T0, comment="c", author="a").duration_seconds is None


def test_acknowledgements_name_their_bad_fields():
    ack = Acknowledgement(incident_id="region_silence|dakar|20261126T120000.000000Z", author="awa",
                          comment="looking at the producer", at=T0)
    assert Acknowledgement.model_validate_json(ack.model_dump_json()) == ack
    with pytest.raises(ValidationError) as err:
        AckRequest(author="", comment="x" * (MAX_COMMENT_CHARS + 1))
    assert error_fields(err.value) == ["author", "comment"]
    with pytest.raises(ValidationError) as err:
        AckRequest(author="awa")
    assert error_fields(err.value) == ["comment"]
