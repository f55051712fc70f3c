"""Shared fixtures. Integration tests get the real servers through the same stack code
that ./run.sh uses, on their own ports and run directory so a running demo is untouched."""

from __future__ import annotations

import os
import uuid

import pytest

from meteoflow.settings import REPO_ROOT, Settings, load_settings

# Test stack: default ports shifted by 10000 (METEOFLOW_TEST_PORT_OFFSET to change) and its
# own run directory, so `./run.sh` (or another checkout's tests) can run beside the tests.
PORT_OFFSET = int(os.environ.get("METEOFLOW_TEST_PORT_OFFSET", "10000"))
TEST_OVERRIDES = dict(
    run_dir=REPO_ROOT / ".run" / "test",
    kafka_port=9092 + PORT_OFFSET,
    kafka_controller_port=9093 + PORT_OFFSET,
    es_port=9200 + PORT_OFFSET,
    es_transport_port=9300 + PORT_OFFSET,
    mongo_port=27017 + PORT_OFFSET,
    postgres_port=5432 + PORT_OFFSET,
    forecast_api_port=8000 + PORT_OFFSET,
    webapp_port=8080 + PORT_OFFSET,
    producer_metrics_port=9191 + PORT_OFFSET,
    streaming_metrics_port=9192 + PORT_OFFSET,
    shipper_metrics_port=9193 + PORT_OFFSET,
    alerting_metrics_port=9194 + PORT_OFFSET,
    spark_cluster_port=7077 + PORT_OFFSET,
    spark_cluster_webui_port=8470 + PORT_OFFSET,
    kafka_partitions=3,
    owm_api_key=None,
    slack_webhook_url=None,
)


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    return load_settings(**TEST_OVERRIDES)


@pytest.fixture(scope="session")
def stack(test_settings: Settings):
    """Kafka, Elasticsearch and FerretDB, started (or reused when healthy) for the session.
    Everything the stack runs is installed first, as ./run.sh does: tests that start the
    streaming job as a process (browser pipeline, faults) need the Spark connector and Java."""
    from stack.install import install_all
    from stack.servers import servers
    from stack.spark import install_spark_prerequisites

    install_all(test_settings)
    install_spark_prerequisites(test_settings)  # exports JAVA_HOME for the job processes tests start
    started = []
    try:
        for server in servers(test_settings):
            if server.start() == "started":
                started.append(server)
        yield test_settings
    finally:
        # Servers this session started are stopped; ones it found running are left alone.
        if os.environ.get("METEOFLOW_TEST_KEEP_STACK") != "1":
            for server in reversed(started):
                server.stop()


def isolated_settings(base: Settings, tmp_path, **extra) -> Settings:
    """Settings with names no other test uses: topics, database, index prefix, checkpoints."""
    tag = uuid.uuid4().hex[:10]
    return base.model_copy(
        update=dict(
            topic_observations=f"t{tag}.observations",
            topic_deadletter=f"t{tag}.deadletter",
            topic_logs=f"t{tag}.logs",
            mongo_db=f"t{tag}",
            es_index_prefix=f"t{tag}",
            streaming_checkpoint_dir=tmp_path / "checkpoint",
            archive_uri=(tmp_path / "archive").as_uri(),
            **extra,
        )
    )


@pytest.fixture
def isolated(stack: Settings, tmp_path) -> Settings:
    """Per-test settings over the session stack, with its topics created and templates installed."""
    from elk.templates import install_templates
    from meteoflow.kafka import ensure_topics

    settings = isolated_settings(stack, tmp_path)
    ensure_topics(settings)
    install_templates(settings)
    return settings


@pytest.fixture(scope="session")
def spark(stack: Settings):
    from stack.spark import spark_session

    session = spark_session(stack, app_name="meteoflow-tests")
    yield session
    session.stop()
