"""Structured JSON logging with ECS field names, to stdout and to Kafka.

Every service calls `setup_logging(service, settings)` once. A line looks like
{"@timestamp": "...Z", "log.level": "info", "message": "...",
 "service.name": "producer", "event.dataset": "meteoflow.producer", ...extra}.
Extra fields passed with `log.info("...", extra={"fields": {...}})` are merged
into the document as they are (use ECS names or a `meteoflow.` prefix).
The Kafka handler never blocks or raises into the service: if Kafka is down the
line is still on stdout. Why not Elastic's `ecs-logging` formatter: README, "The services".
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import re
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

from meteoflow.settings import Settings

# Anything that looks like a secret in a URL or message is masked before it is written.
# The OpenWeatherMap key appears as a query parameter (appid=KEY) and, in a logged dict or JSON
# body, as 'appid': 'KEY' or "appid": "KEY" (also JSON-escaped inside a string: \"appid\": \"KEY\").
# Slack webhooks carry their token in the path: /services/ (incoming webhooks), /workflows/ and
# /triggers/ (Workflow Builder).
_SECRET_PATTERNS = [
    (re.compile(r"(\bappid\\?[\"']?\s*[:=]\s*\\?[\"']?)[^&\s\"'\\,;}]+", re.I), r"\1***"),
    (re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'\\]+", re.I), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+(@)"), r"\1***\2"),
]


def mask_secrets(text: str) -> str:
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text



class EcsJsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def to_document(self, record: logging.LogRecord) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@timestamp": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": mask_secrets(record.getMessage()),
            "service.name": self.service,
            "event.dataset": f"meteoflow.{self.service}",
            "process.pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                doc[key] = json.loads(mask_secrets(json.dumps(value, default=str)))
        if record.exc_info:
            doc["error.type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            doc["error.message"] = mask_secrets(str(record.exc_info[1]))
            doc["error.stack_trace"] = mask_secrets(self.formatException(record.exc_info))
        return doc

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.to_document(record), default=str, separators=(",", ":"))


class KafkaLogHandler(logging.Handler):
    """Sends each formatted line to the `pipeline.logs` topic, keyed by service.

    `emit` only puts the line on a bounded queue; a background thread owns the Kafka
    client. So a service never blocks on logging when Kafka is slow or down: lines
    wait in the queue (the oldest are dropped, and counted, when it is full) and stdout
    keeps every line regardless.
    """

    def __init__(self, settings: Settings, service: str, capacity: int = 10_000, producer_factory=None):
        super().__init__()
        self.settings = settings
        self.service = service
        self.dropped = 0
        self._producer_factory = producer_factory or self._make_producer
        self._unreachable = False  # the last connection attempt failed: flush need not wait
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=capacity)
        self._producer = None
        self._thread = threading.Thread(target=self._run, name="kafka-log-handler", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("kafka"):
            return  # never log the log shipper's own client into itself
        try:
            line = self.format(record).encode()
        except Exception:  # noqa: BLE001 - logging must never take the service down
            return
        while True:
            try:
                self._queue.put_nowait(line)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _make_producer(self):
        from meteoflow.kafka import make_producer  # late import: kafka is optional for formatting

        return make_producer(self.settings, client_id=f"{self.service}-logs", acks=1)

    def _run(self) -> None:
        while True:
            line = self._queue.get()
            if line is None:
                self._queue.task_done()
                break
            while self._producer is None:
                try:
                    self._producer = self._producer_factory()
                    self._unreachable = False
                    # kafka-python closes its producer at exit, and atexit runs the newest first:
                    # registered after it, this flush hands over the last lines (an import's
                    # "finished") before that close, which made their sends fail.
                    atexit.register(self.flush)
                except Exception:  # noqa: BLE001 - Kafka not reachable yet: keep the line, retry
                    self._unreachable = True
                    time.sleep(5)
            try:
                self._producer.send(self.settings.topic_logs, key=self.service.encode(), value=line)
            except Exception:  # noqa: BLE001
                self.dropped += 1
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until every queued line is handed to Kafka, then until Kafka has it.

        "Handed" is counted by task_done after `send`, not by an empty queue: the last line
        leaves the queue before it is sent, and a short-lived command (an import) exiting in
        that gap lost its final "finished" event."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline and not self._unreachable:
            time.sleep(0.02)
        if self._producer is not None:
            try:
                self._producer.flush(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001
                pass

    def close(self) -> None:
        atexit.unregister(self.flush)
        self.flush()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        if self._producer is not None:
            try:
                self._producer.close(timeout=2)
            except Exception:  # noqa: BLE001
                pass
        super().close()


def start_service(service: str, **overrides) -> tuple[Settings, logging.Logger]:
    """What every `python -m <service>` does first: load the settings (a bad one is a one-line
    error naming the variable, and exit code 2) and set up logging."""
    from meteoflow.settings import SettingsError, load_settings

    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings, setup_logging(service, settings)


def setup_logging(service: str, settings: Settings, to_kafka: bool = True, stream=None) -> logging.Logger:
    """Configure the root logger for one service and return the service's logger.

    The JSON lines go to `stream` (default: stdout, which `./run.sh` sends to the service's log)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = EcsJsonFormatter(service)
    stdout = logging.StreamHandler(stream or sys.stdout)
    stdout.setFormatter(formatter)
    root.addHandler(stdout)
    if to_kafka:
        kafka_handler = KafkaLogHandler(settings, service)
        kafka_handler.setFormatter(formatter)
        root.addHandler(kafka_handler)
    root.setLevel(settings.log_level)
    for noisy in ("py4j", "urllib3", "elastic_transport", "cmdstanpy", "prophet", "pymongo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python reports every reconnect attempt at WARNING/ERROR; the services log
    # their own clear error when Kafka is unreachable, so keep only its critical lines.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return logging.getLogger(service)
