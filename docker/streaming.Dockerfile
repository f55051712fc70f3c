# syntax=docker/dockerfile:1
# Streaming job: `python -m streaming` (Spark Structured Streaming, local mode, JRE 17).
# Build context: the repository root.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies before source: this layer is rebuilt only when the lock changes. Every package
# is hash-checked against requirements.lock (docker/requirements.py takes this service's part).
COPY requirements.lock docker/requirements.py /build/
RUN python /build/requirements.py streaming /build/requirements.lock > /build/requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r /build/requirements.txt

# The Spark Kafka connector matching the installed pyspark, resolved with Maven by the
# same code the native stack uses (stack.install.spark_kafka_jars: Ivy, i.e.
# spark.jars.packages, asks for a -tests jar Maven Central does not serve).
FROM deps AS connector
# Debian's JDK packages fail to configure without the man page folder slim images drop.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
 && rm -rf /var/lib/apt/lists/*
# Only the files that code imports, so editing other sources keeps this layer cached
# (tests/unit/test_compose.py checks the list against the imports of stack.install).
COPY meteoflow/__init__.py meteoflow/settings.py meteoflow/processes.py meteoflow/clock.py meteoflow/errors.py /build/src/meteoflow/
COPY meteoflow/contracts/ /build/src/meteoflow/contracts/
COPY stack/__init__.py stack/install.py stack/process.py stack/pins.py stack/private.py /build/src/stack/
RUN cd /build/src && /opt/venv/bin/python -c "import pyspark; \
from meteoflow.settings import Settings; from stack.install import spark_kafka_jars; \
jars = spark_kafka_jars(Settings(cache_dir='/opt/meteoflow-cache', run_dir='/tmp/run'), pyspark.__version__); \
assert jars, 'no connector jar resolved'; print(*jars, sep='\n')" \
 && rm -rf /opt/meteoflow-cache/m2

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    METEOFLOW_RUN_DIR=/data METEOFLOW_CACHE_DIR=/opt/meteoflow-cache
# procps: Spark's launch scripts call `ps`.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 meteoflow \
 && useradd --system --uid 10001 --gid meteoflow --create-home --home-dir /home/meteoflow --shell /usr/sbin/nologin meteoflow \
 && mkdir /data && chown meteoflow:meteoflow /data
COPY --from=deps /opt/venv /opt/venv
# The connector lands where the job looks for it (streaming.spark.connector_dir: <cache_dir>/spark-kafka/<version>,
# with its completion marker), so the job starts without Maven, any download, or the stack's code.
COPY --from=connector /opt/meteoflow-cache/spark-kafka /opt/meteoflow-cache/spark-kafka
WORKDIR /app
COPY meteoflow/ meteoflow/
COPY streaming/ streaming/
COPY batch/ batch/
COPY docker/healthcheck.py docker/healthcheck.py
USER meteoflow
CMD ["python", "-m", "streaming"]
