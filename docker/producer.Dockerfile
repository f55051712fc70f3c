# syntax=docker/dockerfile:1
# Producer: `python -m producer` (OpenWeatherMap, simulator or replay -> Kafka).
# Build context: the repository root (see compose.yaml).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies before source: this layer is rebuilt only when the lock changes. Every package
# is hash-checked against requirements.lock (docker/requirements.py takes this service's part).
COPY requirements.lock docker/requirements.py /build/
RUN python /build/requirements.py producer /build/requirements.lock > /build/requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r /build/requirements.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    METEOFLOW_RUN_DIR=/data
RUN groupadd --system --gid 10001 meteoflow \
 && useradd --system --uid 10001 --gid meteoflow --create-home --home-dir /home/meteoflow --shell /usr/sbin/nologin meteoflow \
 && mkdir /data && chown meteoflow:meteoflow /data
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY meteoflow/ meteoflow/
COPY producer/ producer/
COPY docker/healthcheck.py docker/healthcheck.py
USER meteoflow
CMD ["python", "-m", "producer"]
