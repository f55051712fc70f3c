"""SparkSession factory: local mode by default, with the Kafka connector from Maven Central.

The connector version always matches the installed pyspark (Scala 2.13 build);
it is cached under `<cache_dir>/spark-kafka`, so only the first start downloads it.
"""

from __future__ import annotations

import os
import sys

from meteoflow.settings import Settings
from stack.install import java_home, spark_kafka_jars


def kafka_connector_jars(settings: Settings) -> str:
    import pyspark

    return ",".join(str(p) for p in spark_kafka_jars(settings, pyspark.__version__))


def spark_session(settings: Settings, app_name: str = "meteoflow", extra_conf: dict[str, str] | None = None):
    """Build (or return the running) SparkSession for this process."""
    os.environ.setdefault("JAVA_HOME", str(java_home(settings)))
    # Spark reads these itself; keep the driver on loopback like every other service.
    os.environ.setdefault("SPARK_LOCAL_IP", settings.bind_host)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.jars", kafka_connector_jars(settings))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.host", settings.bind_host)
        .config("spark.driver.bindAddress", settings.bind_host)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        .config("spark.local.dir", str(settings.run_dir / "spark" / "tmp"))
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
