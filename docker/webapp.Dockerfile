# syntax=docker/dockerfile:1
# Web app: the React (Vite) UI built with Node, served with its Python API by
# `python -m webapp` on port 8080. Build context: the repository root.
ARG NODE_IMAGE=node:22.21.1-bookworm-slim
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${NODE_IMAGE} AS frontend
WORKDIR /build
# The lockfile first: `npm ci` installs exactly it, and the layer is reused until it changes.
COPY webapp/frontend/package.json webapp/frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY webapp/frontend/ ./
RUN npm run build

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies before source: this layer is rebuilt only when the lock changes. Every package
# is hash-checked against requirements.lock (docker/requirements.py takes this service's part).
COPY requirements.lock docker/requirements.py /build/
RUN python /build/requirements.py webapp /build/requirements.lock > /build/requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r /build/requirements.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    METEOFLOW_RUN_DIR=/data METEOFLOW_BIND_HOST=0.0.0.0
RUN groupadd --system --gid 10001 meteoflow \
 && useradd --system --uid 10001 --gid meteoflow --create-home --home-dir /home/meteoflow --shell /usr/sbin/nologin meteoflow \
 && mkdir /data && chown meteoflow:meteoflow /data
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY meteoflow/ meteoflow/
COPY webapp/ webapp/
COPY --from=frontend /build/dist webapp/frontend/dist
COPY docker/healthcheck.py docker/healthcheck.py
USER meteoflow
EXPOSE 8080
CMD ["python", "-m", "webapp"]
