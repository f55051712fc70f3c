"""The job's SparkSession: local mode by default (or a cluster: METEOFLOW_SPARK_MASTER), with the installed Kafka connector.

The connector (matching the installed pyspark, Scala 2.13 build) is installed beforehand into
`<cache_dir>/spark-kafka/<version>/jars`: natively by the stack (`stack.install.spark_kafka_jars`,
before it starts this job), in the image at build time. The job itself only reads it, so it
needs neither Maven nor the development stack.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from meteoflow.settings import Settings


def connector_dir(settings: Settings, spark_version: str) -> Path:
    """Where the Spark Kafka connector for `spark_version` is installed (its jars under jars/)."""
    return settings.cache_dir / "spark-kafka" / spark_version


def connector_jars(settings: Settings, spark_version: str | None = None) -> list[Path]:
    """The installed connector's jars, or RuntimeError saying how to install them."""
    if spark_version is None:
        import pyspark

        spark_version = pyspark.__version__
    target = connector_dir(settings, spark_version)
    jars = sorted((target / "jars").glob("*.jar"))
    if not (target / ".complete").exists() or not jars:
        raise RuntimeError(f"the Spark Kafka connector {spark_version} is not installed in {target}: "
                           "./run.sh installs it before it starts the job (stack.spark.install_spark_prerequisites)")
    return jars


# The streaming job's own options (streaming/__main__.py; the benchmarks that time its batches use them
# too): no console progress bar; no warning that AQE is off (it always is for streaming); and a driver
# JVM that compiles with C1 only. The JIT's compiler threads took ~5 of the JVM's ~10 CPU-seconds in
# the job's first batches, while a backlog was being caught up on two cores beside the store; without
# C2 the JVM's CPU halves, and the driver's steady work (planning a trigger, reading a few Kafka
# records) gains little from C2's code (BENCHMARKS.md, 2026-12-05).
STREAMING_CONF = {"spark.ui.showConsoleProgress": "false", "spark.sql.adaptive.enabled": "false",
                  "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"}


def spark_session(settings: Settings, app_name: str = "meteoflow", extra_conf: dict[str, str] | None = None):
    """Build (or return the running) SparkSession for this process."""
    if settings.java_home:  # otherwise Spark runs the `java` on PATH
        os.environ.setdefault("JAVA_HOME", str(settings.java_home))
    # Spark reads these itself; keep the driver on loopback like every other service.
    os.environ.setdefault("SPARK_LOCAL_IP", settings.bind_host)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.jars", ",".join(str(p) for p in connector_jars(settings)))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.host", settings.bind_host)
        .config("spark.driver.bindAddress", settings.bind_host)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        .config("spark.local.dir", str(settings.run_dir / "spark" / "tmp"))
    )
    if not settings.spark_master.startswith("local"):
        # A cluster: executors get the connector through spark.jars and Meteoflow's code from
        # streaming.partitions (a zip, addPyFile); they run PYSPARK_PYTHON, so that interpreter
        # (with the dependencies) must exist at the same path on every worker.
        builder = builder.config("spark.executor.memory", settings.spark_executor_memory)
        if settings.spark_cores_max:
            builder = builder.config("spark.cores.max", str(settings.spark_cores_max))
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
