"""Executor writes (streaming/partitions.py) on plain records with in-memory sinks: a partition runs
the driver path's steps in the same order and sends back only a small summary; summaries merge into
the batch's report; the code shipped to executors is the packages, named by content."""

import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from meteoflow.contracts import RecordLimits
from meteoflow.settings import load_settings
from streaming.partitions import PartitionSummary, PartitionWriter, code_zip
from streaming.sinks import Stopwatch
from streaming.sinks import BatchSinks
from tests.unit.test_streaming_batch import Recorder, records

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
STEPS = ("deadletters", "observations", "stats", "series", "daily", "latest")  # the driver path's order


def writer():
    return PartitionWriter(load_settings(), RecordLimits(), now=T0)


def sinks(journal, failing=()):
    return BatchSinks(**{name: Recorder(journal, name, name in failing) for name in STEPS})


def test_a_partition_runs_the_driver_paths_steps_in_order_and_returns_only_counts():
    journal = []
    obs, recs = records()
    summary = writer().write(recs, sinks(journal), Stopwatch({}))
    names = [name for name, _ in journal]
    assert names[0] == "deadletters" and sorted(names) == sorted(STEPS)
    assert names.index("stats") < names.index("series") < names.index("latest")  # the driver path's chain
    steps = dict(journal)
    assert [dl.source_offset for dl in steps["deadletters"]] == [99]
    assert steps["observations"] == obs and steps["stats"] == obs and steps["daily"] == obs
    assert steps["series"] == obs  # region series: what the hourly statistics sink wrote (here its input)
    assert [d["region_id"] for d in steps["latest"]] == [o.region_id for o in obs]  # region_latest's documents
    assert (summary.rows, summary.stored, summary.dead_letters, summary.stats_upserted) == (5, 4, 1, 4)
    assert summary.by_topic == {"obs": 5}
    assert summary.latest == {"dakar": obs[-2].observed_at, "thies": obs[-1].observed_at}


CHAIN = ("stats", "series", "latest")  # each after the one before; observations and daily on their own


@pytest.mark.parametrize("failing", STEPS)
def test_a_failing_sink_fails_the_partition_so_spark_retries_it(failing):
    journal = []
    with pytest.raises(ConnectionError):
        writer().write(records()[1], sinks(journal, {failing}), Stopwatch({}))
    stopped = set(CHAIN[CHAIN.index(failing):]) if failing in CHAIN else {failing}
    assert {name for name, _ in journal} == (set() if failing == "deadletters" else set(STEPS) - stopped)


def test_summaries_merge_into_the_batchs_totals():
    later = T0 + timedelta(hours=1)
    parts = [
        PartitionSummary(rows=3, by_topic={"obs": 3}, stored=2, dead_letters=1, stats_upserted=2,
                         latest={"dakar": T0}, durations_ms={"validate": 5.0, "stats": 9.0}, executor="h:1"),
        PartitionSummary(rows=4, by_topic={"obs": 4}, stored=4, stats_upserted=1,
                         latest={"dakar": later, "thies": T0}, durations_ms={"validate": 7.0}, executor="h:2"),
        PartitionSummary(),  # an empty Kafka partition
    ]
    total = PartitionSummary.merge(parts)
    assert (total.rows, total.stored, total.dead_letters, total.stats_upserted) == (7, 6, 1, 3)
    assert total.by_topic == {"obs": 7}
    assert total.latest == {"dakar": later, "thies": T0}
    assert total.durations_ms == {"validate": 7.0, "stats": 9.0}  # parallel: the slowest partition's
    assert total.executor == "h:1,h:2"


def test_the_code_zip_holds_the_packages_and_is_named_by_its_content(tmp_path):
    first = code_zip(tmp_path)
    assert code_zip(tmp_path) == first  # same code, same file: Spark is not asked to add it twice
    names = zipfile.ZipFile(first).namelist()
    assert {"meteoflow/settings.py", "meteoflow/contracts/__init__.py", "streaming/partitions.py",
            "streaming/sinks.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.parametrize("master, mode, expected", [
    ("local[2]", "auto", False), ("spark://127.0.0.1:7077", "auto", True),
    ("local[2]", "on", True), ("spark://127.0.0.1:7077", "off", False),
])
def test_executor_writes_are_on_for_a_cluster_unless_a_setting_says_otherwise(master, mode, expected):
    assert load_settings(spark_master=master, streaming_executor_writes=mode).executor_writes is expected
