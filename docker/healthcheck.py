"""Container health check of a Meteoflow service: `python /app/docker/healthcheck.py SERVICE`.

Exit 0 when healthy, 1 otherwise, with the reason on stdout (Docker keeps it in
`docker inspect`). What "healthy" means:

- HTTP services (forecasting_api, webapp): `/health` answers 200 on their port.
- Workers without a port: the servers they write to accept connections, and the
  streaming job has started its query (Spark wrote the checkpoint's `metadata`).
  A worker whose process died stops the container anyway, so the check is about
  whether it can do its work.
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from meteoflow.settings import Settings, load_settings


@dataclass(frozen=True)
class Endpoint:
    what: str
    host: str
    port: int


def bootstrap_endpoints(bootstrap: str) -> list[Endpoint]:
    """`kafka:9092,other:9092` -> endpoints (a missing port means Kafka's 9092)."""
    found = []
    for item in filter(None, (part.strip() for part in bootstrap.split(","))):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "9092")
        found.append(Endpoint("Kafka", host.strip("[]"), int(port)))
    return found


def url_endpoint(what: str, url: str, default_port: int) -> Endpoint:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{what} URL {url!r} has no host")
    # mongodb+srv resolves hosts through DNS; the first host of a list is enough to probe.
    host = parts.hostname.split(",")[0]
    return Endpoint(what, host, parts.port or default_port)


def dependencies(service: str, settings: Settings) -> list[Endpoint]:
    """The servers a worker must reach to do its work."""
    kafka = bootstrap_endpoints(settings.kafka_bootstrap)
    mongo = [url_endpoint("MongoDB", settings.mongo_uri.split(",")[0], 27017)]
    es = [url_endpoint("Elasticsearch", settings.es_url, 9200)]
    table = {
        "producer": kafka,
        "streaming": kafka + mongo,
        "rain_model": mongo,
        "alerting": es,
    }
    if service not in table:
        raise ValueError(f"unknown worker {service!r}; known: {', '.join(table)}")
    return table[service]


HTTP_SERVICES = {"forecasting_api": "forecast_api_port", "webapp": "webapp_port"}


def health_url(service: str, settings: Settings) -> str:
    # Inside the container the service listens on every interface; loopback reaches it.
    return f"http://127.0.0.1:{getattr(settings, HTTP_SERVICES[service])}/health"


def streaming_started(checkpoint_dir: Path) -> bool:
    """Spark writes `<checkpoint>/metadata` when the query starts."""
    return (checkpoint_dir / "metadata").is_file() or any(checkpoint_dir.glob("*/metadata"))


def _reachable(endpoint: Endpoint, timeout: float) -> str | None:
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{endpoint.what} at {endpoint.host}:{endpoint.port} unreachable: {exc}"


def check(service: str, settings: Settings, timeout: float = 3.0) -> list[str]:
    """Problems found (empty when healthy)."""
    if service in HTTP_SERVICES:
        url = health_url(service, settings)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return [] if resp.status == 200 else [f"{url} answered {resp.status}"]
        except OSError as exc:
            return [f"{url}: {exc}"]
    problems = [p for p in (_reachable(e, timeout) for e in dependencies(service, settings)) if p]
    if service == "streaming" and not streaming_started(settings.checkpoint_dir):
        problems.append(f"the streaming query has not started (no metadata in {settings.checkpoint_dir})")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: healthcheck.py SERVICE")
        return 2
    problems = check(argv[0], load_settings())
    print("; ".join(problems) or "healthy")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
