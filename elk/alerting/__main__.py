"""python -m elk.alerting: evaluate the alert rules until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys
import threading

from elk.alerting.rules import RulesError
from elk.alerting.service import AlertingService
from meteoflow.logs import start_service


def main() -> int:
    settings, log = start_service("alerting")
    try:
        service = AlertingService(settings)
    except RulesError as exc:
        log.error("%s", exc)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.run(stop)
    log.info("alerting stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
