"""Scale out: the streaming job's exactness tests on a real Spark standalone cluster (one master and
two workers, separate processes started by stack.spark_cluster from the pyspark distribution), where
every micro-batch is validated and written on the executors (streaming/partitions.py).

The tests themselves are test_streaming_job.py's, run unchanged in a pytest process whose settings
point at the cluster (METEOFLOW_SPARK_MASTER): one Python process holds one SparkContext, and this
session's `spark` fixture is in local mode. The child reuses this session's servers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from meteoflow.settings import REPO_ROOT
from stack.spark_cluster import SparkCluster, alive_workers

pytestmark = pytest.mark.integration

# The ones that check the exactly-once effect: replay, a failing batch, kill -9 mid-batch, dead letters.
EXACTNESS_TESTS = (
    "test_stores_every_record_once_with_exact_stats_forecasts_and_progress_lines",
    "test_malformed_messages_go_to_the_dead_letter_topic_with_reasons",
    "test_a_failing_batch_is_not_committed_and_is_replayed",
    "test_kill_9_mid_batch_then_restart_loses_and_duplicates_nothing",
)
WORKERS = 2
# Two cores per worker and two per application: the tests' Spark session and the job process that
# the kill -9 test starts each get one executor on each worker (an application keeps its executors).
CLUSTER = dict(spark_worker_cores=2, spark_worker_memory="1g")
APPLICATION_ENV = {"METEOFLOW_SPARK_CORES_MAX": "2", "METEOFLOW_SPARK_EXECUTOR_MEMORY": "512m"}


@pytest.fixture(scope="module")
def cluster(stack):
    with SparkCluster(stack.model_copy(update=CLUSTER), workers=WORKERS) as cluster:
        yield cluster


def applications(worker) -> set:
    """The application directories of a worker (one per Spark application it ran executors for)."""
    return set((worker.home / "work").glob("app-*"))


def executor_logs(worker, apps) -> str:
    return "".join(path.read_text(errors="replace") for app in sorted(apps) for path in sorted(app.rglob("stderr")))


def test_exactness_tests_pass_with_the_writes_on_the_executors_of_two_workers(cluster):
    assert len(alive_workers(cluster.settings)) == WORKERS
    workers = [p for p in cluster.processes if p.name.startswith("spark-worker")]
    earlier = {w.name: applications(w) for w in workers}  # the run directory outlives a test session
    env = {**os.environ, **APPLICATION_ENV, "METEOFLOW_SPARK_MASTER": cluster.url,
           "METEOFLOW_STREAMING_EXECUTOR_WRITES": "auto"}  # auto: on, since the master is not local
    tests = [f"tests/integration/test_streaming_job.py::{name}" for name in EXACTNESS_TESTS]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    assert f"{len(EXACTNESS_TESTS)} passed" in result.stdout

    # The partitions were validated and written by executors of both workers, not by the driver.
    logs = {w.name: executor_logs(w, applications(w) - earlier[w.name]) for w in workers}
    assert [name for name, text in logs.items() if "partition of " in text] == [w.name for w in workers]
    assert "dead-lettered" in "".join(logs.values())
