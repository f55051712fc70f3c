"""`python -m webapp`: serve the web app and its API on settings.bind_host:settings.webapp_port."""

from __future__ import annotations

import faulthandler
import signal
import sys

import uvicorn

from meteoflow.logs import start_service
from meteoflow.metrics import service_registry
from webapp.app import create_app


def main() -> int:
    settings, log = start_service("webapp")
    # `kill -USR1 <pid>` writes every thread's stack to the log: for a request that hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    app = create_app(settings, registry=service_registry("webapp"))
    log.info("web app on http://%s:%s/", settings.bind_host, settings.webapp_port)
    uvicorn.run(app, host=settings.bind_host, port=settings.webapp_port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
