"""python -m elk.shipper: ship Kafka topics to Elasticsearch until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading

from elk.shipper.service import Shipper
from meteoflow.kafka import ensure_topics
from meteoflow.logs import start_service


def main() -> None:
    settings, log = start_service("shipper")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ensure_topics(settings)  # idempotent; consuming a missing topic would stall the client
    Shipper(settings, stop=stop).run()
    log.info("shipper stopped")


if __name__ == "__main__":
    main()
