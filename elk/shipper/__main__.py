"""python -m elk.shipper: ship Kafka topics to Elasticsearch until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading

from elk.shipper.service import Shipper
from meteoflow.kafka import ensure_topics
from meteoflow.logs import start_service
from meteoflow.metrics import ShipperMetrics, serve_metrics, service_registry


def main() -> None:
    settings, log = start_service("shipper")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ensure_topics(settings)  # idempotent; consuming a missing topic would stall the client
    registry = service_registry("shipper")
    with serve_metrics("shipper", settings, registry):
        Shipper(settings, stop=stop, metrics=ShipperMetrics(registry)).run()
    log.info("shipper stopped")


if __name__ == "__main__":
    main()
