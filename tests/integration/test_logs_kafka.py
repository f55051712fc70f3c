"""The Kafka log handler against the real Kafka: a short command's last lines reach `pipeline.logs`
even when it exits the moment it logs them (an import's "finished" event was lost this way)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from meteoflow.settings import REPO_ROOT, Settings
from tests.integration.test_producer_kafka import read_topic, subprocess_env

pytestmark = pytest.mark.integration

LINES = 20
# Connects first (as an import has, by its last event), then logs a burst and returns at once: the
# interpreter exits while the handler's thread is still sending.
BURST = f"""
import logging
from meteoflow.logs import setup_logging
from meteoflow.settings import load_settings
log = setup_logging("exit-probe", load_settings())
log.info("connected")
for handler in logging.getLogger().handlers:
    handler.flush()
for i in range({LINES}):
    log.info("line %d", i)
log.info("last line")
"""


def test_lines_logged_just_before_exit_all_reach_the_logs_topic(isolated: Settings, tmp_path):
    settings = isolated.model_copy(update={"run_dir": tmp_path / "run"})
    done = subprocess.run([sys.executable, "-c", BURST], env=subprocess_env(settings), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    messages = [json.loads(m.value)["message"] for m in read_topic(settings, settings.topic_logs, LINES + 2)]
    assert messages[-1] == "last line"
    assert messages == ["connected"] + [f"line {i}" for i in range(LINES)] + ["last line"]
