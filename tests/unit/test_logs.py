import json
import logging
import time

from meteoflow.logs import EcsJsonFormatter, KafkaLogHandler, mask_secrets
from meteoflow.settings import load_settings


def test_ecs_document_has_fields_and_masks_secrets():
    formatter = EcsJsonFormatter("producer")
    record = logging.LogRecord("producer", logging.INFO, __file__, 1,
                               "GET https://api.openweathermap.org/data/2.5/weather?q=x&appid=%s", ("deadbeef" * 4,), None)
    record.fields = {"event.action": "producer-run", "meteoflow.producer": {"records": 14}}
    doc = json.loads(formatter.format(record))
    assert doc["service.name"] == "producer" and doc["log.level"] == "info"
    assert doc["event.action"] == "producer-run" and doc["meteoflow.producer"]["records"] == 14
    assert "deadbeef" not in doc["message"] and "appid=***" in doc["message"]
    assert doc["@timestamp"].endswith("Z")


def test_mask_secrets_covers_webhooks_and_passwords():
    webhook = "https://hooks.slack.com/services/" + "T000/B000/XXXX"  # a fake, split so it reads as one
    text = mask_secrets(f"post {webhook} to mongodb://u:pw@h:1/")
    assert "XXXX" not in text and "pw@" not in text


def test_kafka_handler_never_blocks_when_kafka_is_down():
    settings = load_settings(kafka_bootstrap_servers="127.0.0.1:1")  # nothing listens there
    handler = KafkaLogHandler(settings, "test", capacity=10)
    handler.setFormatter(EcsJsonFormatter("test"))
    started = time.monotonic()
    for i in range(100):
        handler.emit(logging.LogRecord("test", logging.INFO, __file__, 1, f"line {i}", (), None))
    # Emitting is a queue put: no connection attempt on the caller's thread.
    assert time.monotonic() - started < 1.0
    assert handler.dropped >= 89  # bounded queue: the oldest lines give way
