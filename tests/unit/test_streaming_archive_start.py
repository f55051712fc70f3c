"""The archive query waits for the main query to catch up (streaming.archive.ArchiveQuery.start_when):
driven here with a fake clock and a fake query, so nothing depends on timing; the real queries are
in tests/integration/test_streaming_job.py."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

from meteoflow.settings import Settings
from streaming.archive import ArchiveQuery, caught_up

WAIT = 10  # seconds any event below may take before the test fails: never reached when it passes


class RecordingArchive(ArchiveQuery):
    """ArchiveQuery whose start() only records that it happened (no Spark)."""

    def __init__(self, fail: Exception | None = None):
        super().__init__(Settings(archive_trigger_seconds=300))
        self.started_on: list[str] = []
        self.began = threading.Event()
        self.fail = fail

    def start(self, stream, available_now=False):
        if self.fail is not None:
            raise self.fail
        self.started_on.append(stream)
        self.query = SimpleNamespace(isActive=True, exception=lambda: None, stop=lambda: None)
        self.began.set()
        return self.query


class Readiness:
    """ready() for start_when: answers `answer`, and says when it has been asked `times` times."""

    def __init__(self, times: int = 3):
        self.answer = False
        self.asked = 0
        self.times = times
        self.asked_enough = threading.Event()

    def __call__(self) -> bool:
        self.asked += 1
        if self.asked >= self.times:
            self.asked_enough.set()
        return self.answer


def test_it_starts_once_the_main_query_has_caught_up():
    archive, ready, now = RecordingArchive(), Readiness(), [0.0]
    archive.start_when(lambda: "stream", ready, clock=lambda: now[0], poll_seconds=0.001)
    assert ready.asked_enough.wait(WAIT)
    assert archive.started_on == [] and archive.failure() is None  # behind: waiting, not failed
    ready.answer = True
    assert archive.began.wait(WAIT)
    assert archive.started_on == ["stream"]
    archive.stop()


def test_a_main_query_that_never_catches_up_delays_it_one_archive_interval_at_most():
    archive, ready, now = RecordingArchive(), Readiness(), [0.0]
    archive.start_when(lambda: "stream", ready, clock=lambda: now[0], poll_seconds=0.001)
    now[0] = 299.0
    ready.asked_enough.clear(), setattr(ready, "asked", 0)
    assert ready.asked_enough.wait(WAIT) and archive.started_on == []
    now[0] = 300.0
    assert archive.began.wait(WAIT)
    archive.stop()


def test_stopping_before_it_started_means_it_never_starts():
    archive, ready = RecordingArchive(), Readiness()
    archive.start_when(lambda: "stream", ready, clock=lambda: 0.0, poll_seconds=0.001)
    assert ready.asked_enough.wait(WAIT)
    archive.stop()  # joins the waiting thread
    ready.answer = True
    assert archive.started_on == [] and archive.query is None and archive.failure() is None


def test_a_start_that_fails_is_the_archives_failure():
    archive, ready = RecordingArchive(fail=ValueError("no such scheme: s4a")), Readiness()
    ready.answer = True
    archive.start_when(lambda: "stream", ready, clock=lambda: 0.0, poll_seconds=0.001)
    archive._starter.join(WAIT)
    assert str(archive.failure()) == "no such scheme: s4a"


def test_caught_up_means_the_last_trigger_read_everything_there_was_when_it_was_planned():
    def query(end, latest, as_text=None):
        def offsets(by_partition):
            value = {"weather.observations": {str(p): o for p, o in enumerate(by_partition)}}
            return {None: value, "json": json.dumps(value), "python": str(value)}[as_text]

        return SimpleNamespace(lastProgress={"numInputRows": 0, "sources": [
            {"description": "KafkaV2[Subscribe[weather.observations]]", "endOffset": offsets(end),
             "latestOffset": None if latest is None else offsets(latest)}]})

    assert not caught_up(None)  # not started
    assert not caught_up(SimpleNamespace(lastProgress=None))  # no trigger finished yet
    assert not caught_up(query([6666, 6666, 6666], [11200, 11200, 11200]))  # capped: a backlog is left
    assert caught_up(query([11200, 11200, 11200], [11200, 11200, 11200]))
    assert caught_up(query([11200, 11200, 11200], [11200, 11200, 11200], as_text="json"))
    assert caught_up(query([11200, 11200, 11200], [11200, 11200, 11200], as_text="python"))  # as pyspark gives it
    assert not caught_up(query([6666, 6666, 6666], [11200, 11200, 11200], as_text="python"))
    assert not caught_up(query([5, 5, 5], None))  # a source that does not say how far the topic goes
