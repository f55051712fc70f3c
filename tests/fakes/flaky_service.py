"""A real process for supervisor tests: exits 3 with an error until the file `fixed` exists in
its run directory, then stays up. And a log handler keeping the supervisor's JSON lines.

    flaky = FlakyService(settings)           # a stack Service: real pid file, log, Popen
    (settings.run_dir / "fixed").touch()      # the cause is fixed: the next start stays up
"""

from __future__ import annotations

import json
import logging
import sys

from meteoflow.logs import EcsJsonFormatter
from stack.services import Service

_CODE = """
import os, sys, time
if not os.path.exists(sys.argv[1]):
    print("loading record 42", flush=True)
    print("ValueError: bad record 42", file=sys.stderr, flush=True)
    sys.exit(3)
print("fixed: running", flush=True)
time.sleep(600)
"""
ERROR_LINE = "ValueError: bad record 42"
EXIT_CODE = 3


class FlakyService(Service):
    name = "flaky"
    module = "flaky"
    min_uptime_seconds = 0.3
    health_poll_seconds = 0.05

    def command(self):
        return [sys.executable, "-c", _CODE, str(self.settings.run_dir / "fixed")]


class JsonLines(logging.Handler):
    """Keeps each record as the JSON line meteoflow.logs would write for service `service`."""

    def __init__(self, service: str = "supervisor"):
        super().__init__()
        self.setFormatter(EcsJsonFormatter(service))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))

    def of(self, action: str) -> list[dict]:
        return [doc for doc in map(json.loads, list(self.lines)) if doc.get("event.action") == action]
