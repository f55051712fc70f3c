"""python -m elk.alerting: evaluate the alert rules until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys
import threading

from elk.alerting.rules import RulesError
from elk.alerting.service import AlertingService
from meteoflow.logs import setup_logging
from meteoflow.settings import load_settings


def main() -> int:
    settings = load_settings()
    log = setup_logging("alerting", settings)
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
