"""foreachBatch's work on plain records, with in-memory sinks: order of the sinks, what each
receives, that a failing sink fails the batch, and the one progress line per batch."""

import dataclasses
import json
import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from meteoflow.contracts import STREAMING_BATCH_ACTION, StreamingBatchEvent
from meteoflow.logs import EcsJsonFormatter
from streaming.forecasts import ForecastOutcome
from streaming.job import KAFKA_COLUMNS, BatchProcessor, ProgressReporter
from meteoflow.kafka import KafkaRecord
from tests.fakes.observations import simulated_observations

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


class Recorder:
    """Stands in for every sink: records calls in one shared journal."""

    def __init__(self, journal, name, fail=False):
        self.journal, self.name, self.fail = journal, name, fail

    def write(self, items, now=None, documents=None):
        items = list(items)
        if self.fail:
            raise ConnectionError(f"{self.name} unavailable")
        self.journal.append((self.name, items))
        return len(items)

    def write_documents(self, items, now=None):  # the hourly statistics sink's: what it wrote
        self.write(items, now)
        return list(items)

    def mark(self, latest):
        self.journal.append(("mark", latest))

    def refresh(self, force=False):
        self.journal.append(("refresh", force))
        return ForecastOutcome(ok=["dakar"], forecasts_written=6)


def processor(journal, failing=()):
    sinks = {name: Recorder(journal, name, name in failing)
             for name in ("observations", "stats", "deadletters", "latest")}
    return BatchProcessor(sinks["observations"], sinks["stats"], Recorder(journal, "forecasts"),
                          sinks["deadletters"], ProgressReporter(logging.getLogger("test")), latest=sinks["latest"])


def records():
    obs = simulated_observations(regions=2, hours=1, per_hour=2, end=T0)
    out = [KafkaRecord("obs", 0, i, o.key, o.to_message()) for i, o in enumerate(obs)]
    out.insert(1, KafkaRecord("obs", 0, 99, b"dakar", b"{broken"))
    return obs, out


def ran(journal) -> dict[str, list]:
    return {name: items for name, items in journal}


def test_sinks_run_in_order_and_forecasts_are_only_marked():
    journal = []
    obs, recs = records()
    report = processor(journal).process(recs, batch_id=7)
    # No refresh: forecasts run in the job's forecast thread, never on a batch's path.
    names = [name for name, _ in journal]
    assert names[0] == "deadletters" and names[-1] == "mark"  # the chains of writes between, side by side
    assert sorted(names[1:-1]) == ["latest", "observations", "stats"]
    assert names.index("stats") < names.index("latest")  # a chain: each step after the one it needs
    steps = ran(journal)
    assert [dl.source_offset for dl in steps["deadletters"]] == [99]
    assert steps["observations"] == obs and steps["stats"] == obs
    assert [d["_id"] for d in steps["latest"]] == [f"{o.region_id}|{o.observed_at:%Y-%m-%dT%H:%M:%SZ}" for o in obs]
    assert steps["mark"] == {"dakar": obs[-2].observed_at, "thies": obs[-1].observed_at}
    assert (report.batch_id, report.input_rows, report.stored, report.dead_letters) == (7, 5, 4, 1)
    assert report.forecast.ok == 0 and report.forecast.forecasts_written == 0
    assert {"validate", "deadletters", "writes", "observations", "stats", "latest", "mark", "total"} <= set(
        report.durations_ms)


# What still ran when a sink failed: the dead letters gate everything; a chain stops at its failing
# step, the other chains end theirs (idempotent writes, rewritten by the replay); never the mark.
@pytest.mark.parametrize("failing, still_ran", [
    ("deadletters", set()),
    ("observations", {"deadletters", "stats", "latest"}),
    ("stats", {"deadletters", "observations"}),
    ("latest", {"deadletters", "observations", "stats"}),
])
def test_a_failing_sink_fails_the_batch_and_stops_the_later_sinks(failing, still_ran):
    journal = []
    with pytest.raises(ConnectionError):
        processor(journal, failing={failing}).process(records()[1], batch_id=1)
    assert set(ran(journal)) == still_ran


def test_one_progress_line_per_batch_joining_spark_progress(caplog):
    journal = []
    proc = processor(journal)
    report = proc.process(records()[1], batch_id=3)
    proc.reporter.batch_done(report)
    progress = SimpleNamespace(batchId=3, numInputRows=5, processedRowsPerSecond=41.66,
                               durationMs={"triggerExecution": 120},
                               sources=[SimpleNamespace(endOffset=json.dumps({"obs": {"0": 5}}))])
    idle = SimpleNamespace(batchId=4, numInputRows=0, processedRowsPerSecond=0.0, durationMs={}, sources=[])
    with caplog.at_level(logging.INFO, logger="test"):
        proc.reporter.on_progress(progress)
        proc.reporter.on_progress(idle)  # no batch ran: no line
        proc.reporter.on_progress(progress)  # already logged: no second line
    lines = [r for r in caplog.records if getattr(r, "fields", {}).get("event.action") == STREAMING_BATCH_ACTION]
    assert len(lines) == 1
    # The line as shipped (the service's JSON formatter) is what readers validate back.
    shipped = json.loads(EcsJsonFormatter("streaming").format(lines[0]))
    event = StreamingBatchEvent.from_log_line(shipped).event
    assert event.batch_id == 3 and event.input_rows == 5 and event.rows_per_second == 41.7
    assert event.kafka_end_offsets == {"obs": {"0": 5}} and event.durations_ms["spark_trigger"] == 120
    assert (event.stored, event.dead_letters, event.forecast.ok) == (4, 1, 0)  # forecasts: off the batch


def test_a_batch_whose_progress_event_never_came_is_logged_on_flush(caplog):
    reporter = processor([]).reporter
    reporter.batch_done(processor([]).process(records()[1], batch_id=9))
    with caplog.at_level(logging.INFO, logger="test"):
        reporter.flush()
    assert [r.fields["meteoflow.streaming"]["batch_id"] for r in caplog.records if hasattr(r, "fields")] == [9]


def test_a_long_running_job_keeps_bounded_progress_state():
    """Months of batches must not grow a list: reports whose progress event never came are logged
    anyway once 100 newer ones wait, and only the latest 100 progress lines are kept."""
    from streaming.job import RECENT_PROGRESS_LINES, BatchReport

    reporter = ProgressReporter(logging.getLogger("test"))
    for batch_id in range(3 * RECENT_PROGRESS_LINES):
        reporter.batch_done(BatchReport(batch_id=batch_id, input_rows=1, durations_ms={"total": 5.0}))
    assert len(reporter._pending) == RECENT_PROGRESS_LINES
    assert len(reporter.logged) == RECENT_PROGRESS_LINES
    assert [line.batch_id for line in reporter.logged] == list(range(RECENT_PROGRESS_LINES, 2 * RECENT_PROGRESS_LINES))
    reporter.flush()
    assert not reporter._pending and reporter.logged[-1].batch_id == 3 * RECENT_PROGRESS_LINES - 1


def test_the_selected_kafka_columns_are_the_kafka_records_fields_in_order():
    """foreachBatch builds each KafkaRecord from a collected Row by position."""
    assert [column.split(" AS ")[-1] for column in KAFKA_COLUMNS] == [f.name for f in dataclasses.fields(KafkaRecord)]
