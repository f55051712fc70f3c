"""The dead-letter message (topic weather.deadletter) and how dead letters are counted."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from meteoflow.clock import utc_now
from meteoflow.contracts.common import plausible_utc

# --- dead letters (topic weather.deadletter) -----------------------------------------
# A dead letter must always fit in Kafka (1 MiB per message by default), whatever it carries:
# the payload is cut to this many bytes, the original's size and SHA-256 are kept instead.
DEADLETTER_PAYLOAD_LIMIT = 64 * 1024
DEADLETTER_PAYLOAD_LIMIT_MAX = 256 * 1024  # JSON escaping can grow text 6x: 1.5 MiB would not fit
MAX_REASON_CHARS = 2000
MAX_KEY_CHARS = 256


def _utf8_text(data: bytes, truncated: bool) -> str | None:
    """The bytes as text, or None when they are not UTF-8. A cut may have split the last
    character (up to 3 bytes of it): those are dropped rather than calling the payload binary."""
    for drop in range(4 if truncated else 1):
        try:
            return data[: len(data) - drop].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _bounded(text: str, limit: int) -> str:
    """At most `limit` characters of encodable text (a lone surrogate would fail serialization)."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class DeadLetter(BaseModel):
    """A record that was rejected somewhere, with (a bounded copy of) the original payload and why."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    service: str  # who rejected it: producer, streaming, shipper
    failed_at: datetime
    payload: str  # the original bytes as UTF-8 text when they are text ("" when they are not)
    payload_base64: str | None = None  # the original bytes, base64, when they were not UTF-8
    payload_size: int | None = None  # bytes of the original payload
    payload_sha256: str | None = None  # of the whole original payload, to find it in Kafka or a file
    payload_truncated: bool = False  # payload/payload_base64 hold only its first bytes
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    key: str | None = None

    @field_validator("failed_at")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        return plausible_utc(value)

    @classmethod
    def build(cls, raw: bytes | str | dict | None, reason: str, service: str,
              max_payload_bytes: int = DEADLETTER_PAYLOAD_LIMIT, **where: Any) -> "DeadLetter":
        """Never raises, whatever `raw` holds, and what it builds fits in a Kafka message."""
        data = _payload_bytes(raw)
        fields: dict[str, Any] = {}
        if data is not None:
            truncated = len(data) > max_payload_bytes
            cut = data[:max_payload_bytes]
            text = _utf8_text(cut, truncated)
            fields = dict(payload_size=len(data), payload_sha256=hashlib.sha256(data).hexdigest(),
                          payload_truncated=truncated,
                          payload_base64=base64.b64encode(cut).decode() if text is None else None)
        else:
            text = None
        if where.get("key") is not None:
            where["key"] = _bounded(str(where["key"]), MAX_KEY_CHARS)
        return cls(reason=_bounded(str(reason), MAX_REASON_CHARS), service=service,
                   failed_at=utc_now(), payload=text or "", **fields, **where)

    def to_message(self) -> bytes:
        return self.model_dump_json().encode()


def _payload_bytes(raw: bytes | str | dict | None) -> bytes | None:
    if raw is None:
        return None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, dict):
        try:
            return json.dumps(raw, default=str).encode("utf-8", "backslashreplace")
        except (TypeError, ValueError, RecursionError):
            return f"<a {type(raw).__name__} that is not serializable as JSON>".encode()
    return str(raw).encode("utf-8", "backslashreplace")


# --- counting dead letters: one per rejected record -----------------------------------
# An invalid observation is rejected twice: the streaming job dead-letters it (that dead letter
# is shipped from the dead-letter topic) AND the shipper (or Logstash), validating the same
# observations-topic record with the same code, routes it to the dead-letter index too, so that
# Elasticsearch accounts for every Kafka offset. That second document (kafka.topic = the
# observations topic) is an index-side copy and counts leave it out. Every other dead-letter
# document is one rejected record (producer, streaming job, or the shipper for the topics only
# it reads). The web app, the deadletter_spike rule and the Kibana panel count this way.
def counted_deadletters(observations_topic: str) -> dict[str, Any]:
    """Elasticsearch query of the dead-letter documents that count (one per rejected record)."""
    return {"bool": {"must_not": {"term": {"kafka.topic": observations_topic}}}}


def counted_deadletters_kql(observations_topic: str) -> str:
    """The same filter in Kibana's query language."""
    return f'not kafka.topic : "{observations_topic}"'
