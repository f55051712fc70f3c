import json
import logging
import time

import pytest

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


KEY = "0123456789abcdef" * 2  # a fake OpenWeatherMap key


@pytest.mark.parametrize("text", [
    f"GET https://api.openweathermap.org/data/2.5/weather?q=x&appid={KEY}&units=metric",  # query form
    f"GET /weather?appid={KEY}",  # query form, last parameter
    str({"q": "Dakar", "appid": KEY}),  # Python dict repr: 'appid': '...'
    repr({"params": {"appid": KEY, "units": "metric"}}),  # nested repr
    json.dumps({"q": "Dakar", "appid": KEY}),  # JSON: "appid": "..."
    json.dumps({"q": "Dakar", "appid": KEY}, separators=(",", ":")),  # compact JSON
    json.dumps(json.dumps({"appid": KEY})),  # JSON inside a JSON string: \"appid\": \"...\"
    f"params={{'APPID': '{KEY}'}}",  # any case
])
def test_mask_secrets_hides_the_owm_key_in_every_form(text):
    masked = mask_secrets(text)
    assert KEY not in masked and "***" in masked


def test_masking_keeps_json_valid():
    doc = json.loads(mask_secrets(json.dumps({"appid": KEY, "q": "Dakar"})))
    assert doc == {"appid": "***", "q": "Dakar"}
    inner = json.loads(json.loads(mask_secrets(json.dumps(json.dumps({"appid": KEY, "q": "x"})))))
    assert inner == {"appid": "***", "q": "x"}


@pytest.mark.parametrize("path", ["services/T000/B000/", "workflows/T000/A000/111/", "triggers/T000/111/"])
def test_mask_secrets_hides_every_kind_of_slack_webhook(path):
    token = "s3cr3tT0k3n" * 2
    url = "https://hooks.slack.com/" + path + token  # split so no whole webhook URL sits in the repo
    for text in (f"post {url} failed", repr({"url": url}), json.dumps({"url": url})):
        masked = mask_secrets(text)
        assert token not in masked and "hooks.slack.com/" + path.split("/")[0] + "/***" in masked


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


class SlowProducer:
    """Stands in for the Kafka client: each send takes a while, so the last line is still being
    sent when the queue is already empty."""

    def __init__(self):
        self.sent: list[bytes] = []
        self.flushed_with: list[int] = []

    def send(self, topic, key, value):
        time.sleep(0.1)
        self.sent.append(value)

    def flush(self, timeout=None):
        self.flushed_with.append(len(self.sent))

    def close(self, timeout=None):
        pass


def test_flush_returns_only_after_the_last_line_is_sent():
    producer = SlowProducer()
    handler = KafkaLogHandler(load_settings(), "test", producer_factory=lambda: producer)
    handler.setFormatter(EcsJsonFormatter("test"))
    for i in range(3):
        handler.emit(logging.LogRecord("test", logging.INFO, __file__, 1, f"line {i}", (), None))
    handler.flush(timeout=10)
    # A command that exits right after its last log line (an import's "finished") must not lose it.
    assert producer.flushed_with == [3]
    assert [json.loads(line)["message"] for line in producer.sent] == ["line 0", "line 1", "line 2"]
    handler.close()
