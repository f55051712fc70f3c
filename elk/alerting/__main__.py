"""python -m elk.alerting: evaluate the alert rules until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys
import threading

from elk.alerting.rules import RULE_MODELS, RulesError
from elk.alerting.service import AlertingService
from meteoflow.logs import start_service
from meteoflow.metrics import AlertingMetrics, serve_metrics, service_registry


def main() -> int:
    settings, log = start_service("alerting")
    registry = service_registry("alerting")
    try:
        service = AlertingService(settings, metrics=AlertingMetrics(RULE_MODELS, registry))
    except RulesError as exc:
        log.error("%s", exc)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with serve_metrics("alerting", settings, registry):  # the health samples' gauges too
        service.run(stop)
    log.info("alerting stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
