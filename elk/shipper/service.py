"""The shipper's I/O: consume the three topics, bulk-index, commit after acknowledgement.

Offsets are committed only once Elasticsearch acknowledged every document of the
batch (indexed, or dead-lettered with the reason when Elasticsearch refused it
for good). While Elasticsearch is unreachable the batch is retried with backoff
and nothing is committed, so a crash at any point means re-shipping, which the
deterministic `_id` makes harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from elastic_transport import TransportError
from elasticsearch import ApiError
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from elk.shipper.documents import SHIPPER_SERVICE, rejection_action, to_action
from meteoflow.clock import utc_now
from meteoflow.es import make_es_client
from meteoflow.kafka import KafkaRecord, all_topics, make_consumer
from meteoflow.metrics import ShipperMetrics
from meteoflow.settings import Settings

log = logging.getLogger("shipper")

# Elasticsearch refused the document itself: retrying cannot help, dead-letter it.
PERMANENT_STATUSES = {400}


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    current: float = field(default=0.0, init=False)

    def next(self) -> float:
        self.current = self.initial if self.current == 0 else min(self.maximum, self.current * self.factor)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def bulk_operations(actions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for action in actions:
        ops.append({action["_op_type"]: {"_index": action["_index"], "_id": action["_id"]}})
        ops.append(action["_source"])
    return ops


def split_bulk_items(items: list[dict[str, Any]]) -> tuple[list[int], list[int], dict[int, str]]:
    """Positions of acknowledged, retryable and permanently refused items (with the reason)."""
    ok, retry, refused = [], [], {}
    for pos, item in enumerate(items):
        result = next(iter(item.values()))
        status = result.get("status", 500)
        if 200 <= status < 300:
            ok.append(pos)
        elif status in PERMANENT_STATUSES:
            error = result.get("error") or {}
            refused[pos] = f"elasticsearch refused the document ({status} {error.get('type', 'error')}): {error.get('reason', '')}"
        else:
            retry.append(pos)
    return ok, retry, refused


# Elasticsearch refuses a bulk request above http.max_content_length (100 MB) with a 413 that no
# retry can fix; a batch of large log lines could reach it, so requests are cut well below.
MAX_BULK_BYTES = 8 * 1024 * 1024


def bulk_chunks(actions: list[tuple[KafkaRecord, dict[str, Any]]], max_bytes: int = MAX_BULK_BYTES):
    """Consecutive runs of actions whose records add up to at most `max_bytes` (at least one each)."""
    chunk: list[tuple[KafkaRecord, dict[str, Any]]] = []
    size = 0
    for rec, action in actions:
        cost = action["_bytes"] + 100  # the document and its action line
        if chunk and size + cost > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append((rec, action))
        size += cost
    if chunk:
        yield chunk


def offsets_to_commit(records: Iterable[KafkaRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    highest: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        highest[tp] = max(highest.get(tp, -1), rec.offset)
    return {tp: OffsetAndMetadata(off + 1, "", -1) for tp, off in highest.items()}


class Shipper:
    def __init__(self, settings: Settings, es=None, group_id: str | None = None,
                 sleep: Callable[[float], None] | None = None, stop: threading.Event | None = None,
                 metrics: ShipperMetrics | None = None):
        self.settings = settings
        self.es = es or make_es_client(settings, max_retries=0, retry_on_timeout=False, request_timeout=30)
        self.group_id = group_id or f"{settings.es_index_prefix}-shipper"
        self.stop = stop or threading.Event()
        self._sleep = sleep or self.stop.wait
        self.counts: Counter[str] = Counter()
        self.metrics = metrics or ShipperMetrics()

    # --- indexing ---------------------------------------------------------------------
    def ship(self, records: list[KafkaRecord]) -> bool:
        """Index records until Elasticsearch acknowledged all. False only if stopped first."""
        now = utc_now()
        actions = [(rec, to_action(self.settings, rec, now)) for rec in records]
        return all(self._ship_until_acknowledged(chunk, now) for chunk in bulk_chunks(actions))

    def _own_dead_letter(self, action: dict[str, Any]) -> bool:
        """Is this the dead letter the shipper made of a record (not one shipped from the topic)?"""
        return action["_index"] == self.settings.index("deadletter") and action["_source"].get("service") == SHIPPER_SERVICE

    def _ship_until_acknowledged(self, pending: list[tuple[KafkaRecord, dict[str, Any]]], now: datetime) -> bool:
        backoff = Backoff()
        while pending:
            if self.stop.is_set():
                return False
            try:
                response = self.es.bulk(operations=bulk_operations(a for _, a in pending))
            except (TransportError, ApiError) as exc:
                self.metrics.es_errors.labels("unavailable").inc()
                wait = backoff.next()
                log.warning("elasticsearch unavailable (%s); retrying %d documents in %.1f s",
                            type(exc).__name__, len(pending), wait)
                self._sleep(wait)
                continue
            ok, retry, refused = split_bulk_items(response["items"])
            for pos in ok:
                action = pending[pos][1]
                self.counts[action["_index"]] += 1
                self.metrics.indexed.labels(action["_index"]).inc()
                if self._own_dead_letter(action):
                    self.metrics.dead_letters.inc()
            still = [pending[pos] for pos in retry]
            for pos, reason in refused.items():
                rec, action = pending[pos]
                if self._own_dead_letter(action):
                    # Even the dead-letter form was refused: say so loudly rather than loop forever.
                    log.error("could not index record %s even as a dead letter: %s", action["_id"], reason,
                              extra={"fields": {"meteoflow.shipper": {"id": action["_id"], "reason": reason}}})
                    self.counts["lost_loudly"] += 1
                    self.metrics.lost.inc()
                    continue
                self.counts["refused"] += 1
                still.append((rec, rejection_action(self.settings, rec, reason, now)))
            pending = still
            if retry:
                self.metrics.es_errors.labels("not_acknowledged").inc(len(retry))
                wait = backoff.next()
                log.warning("%d documents not acknowledged; retrying in %.1f s", len(retry), wait)
                self._sleep(wait)
        return True

    # --- consuming --------------------------------------------------------------------
    def make_consumer(self):
        return make_consumer(
            self.settings, self.group_id, *all_topics(self.settings),
            max_poll_records=self.settings.shipper_batch_size,
            client_id=f"{self.group_id}-consumer",
        )

    def run(self, consumer=None, report_every: float = 60.0) -> None:
        consumer = consumer or self.make_consumer()
        log.info("shipping %s to %s as group %s", ", ".join(all_topics(self.settings)),
                 self.settings.es_url, self.group_id)
        last_report = time.monotonic()
        try:
            while not self.stop.is_set():
                try:
                    polled = consumer.poll(timeout_ms=500, max_records=self.settings.shipper_batch_size)
                except KafkaError as exc:
                    self.metrics.kafka_errors.labels("poll").inc()
                    log.warning("kafka poll failed (%s); retrying", exc)
                    self.stop.wait(1.0)
                    continue
                records = [KafkaRecord.of(r) for batch in polled.values() for r in batch]
                if records:
                    began = time.monotonic()
                    for topic, n in Counter(r.topic for r in records).items():
                        self.metrics.consumed.labels(topic).inc(n)
                    if not self.ship(records):
                        break  # stopped before acknowledgement: not committed, re-shipped next time
                    self.metrics.batch_duration.observe(time.monotonic() - began)
                    try:
                        consumer.commit(offsets_to_commit(records))
                        self.metrics.last_commit.set_to_current_time()
                    except (CommitFailedError, KafkaError) as exc:
                        self.metrics.kafka_errors.labels("commit").inc()
                        # The group moved on (e.g. a long outage): these records come back and
                        # overwrite themselves, since their _id is deterministic.
                        log.warning("offset commit failed (%s); records will be re-shipped", type(exc).__name__)
                if time.monotonic() - last_report >= report_every:
                    self._report()
                    last_report = time.monotonic()
        finally:
            self._report()
            consumer.close()

    def _report(self) -> None:
        if self.counts:
            log.info("shipped %s", dict(self.counts),
                     extra={"fields": {"event.action": "shipper-report", "meteoflow.shipper": dict(self.counts)}})
            self.counts.clear()
