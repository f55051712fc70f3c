"""Freshness of a region's data: fresh, late or silent.

One definition for the alerting service (silence alerts) and the web app (badges).
Thresholds are multiples of the expected interval between batches, read from the
`region_silence` section of the alert rules file (elk/alert_rules.yaml).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from meteoflow.contracts import Freshness, Thresholds  # noqa: F401 - defined with the web app's bodies
from meteoflow.settings import Settings


class SilenceRule(BaseModel):
    late_after_intervals: float = Field(2.0, gt=0)
    silent_after_intervals: float = Field(4.0, gt=0)


def load_silence_rule(path: Path) -> SilenceRule:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return SilenceRule()
    return SilenceRule.model_validate(data.get("region_silence") or {})


def thresholds(settings: Settings, rule: SilenceRule | None = None) -> Thresholds:
    rule = rule or load_silence_rule(settings.alert_rules_file)
    interval = settings.effective_interval_seconds
    return Thresholds(
        late_after_seconds=rule.late_after_intervals * interval,
        silent_after_seconds=max(rule.silent_after_intervals, rule.late_after_intervals) * interval,
    )


def classify(last_seen: datetime | None, now: datetime, limits: Thresholds) -> Freshness:
    """last_seen: when the region's latest record arrived (wall clock), or None if never."""
    if last_seen is None:
        return "silent"
    age = (now - last_seen).total_seconds()
    if age > limits.silent_after_seconds:
        return "silent"
    if age > limits.late_after_seconds:
        return "late"
    return "fresh"
