"""A SparkSession for the tests and benchmarks: installs what the job expects, then builds the job's own.

The job (streaming/spark.py) only reads the installed Kafka connector and Java; here, on the
development side, they are installed first (Maven, once: the cache keeps them).
"""

from __future__ import annotations

import os

from meteoflow.settings import Settings
from stack.install import java_home, spark_kafka_jars
from streaming import spark as job_spark


def install_spark_prerequisites(settings: Settings) -> None:
    """A JDK 17+ (checked, and exported as JAVA_HOME) and the Kafka connector matching pyspark."""
    import pyspark

    os.environ.setdefault("JAVA_HOME", str(java_home(settings)))
    spark_kafka_jars(settings, pyspark.__version__)


def spark_session(settings: Settings, app_name: str = "meteoflow", extra_conf: dict[str, str] | None = None):
    install_spark_prerequisites(settings)
    return job_spark.spark_session(settings, app_name=app_name, extra_conf=extra_conf)
