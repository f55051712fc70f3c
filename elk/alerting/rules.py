"""The alert rules file (elk/alert_rules.yaml): loaded once and validated, with errors
that name the rule and the field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from meteoflow.errors import field_errors
from meteoflow.forecast_verdict import DegradedThresholds
from meteoflow.freshness import SilenceRule

# Unset timings scale with the evaluation interval (METEOFLOW_ALERT_EVAL_INTERVAL_SECONDS).
FOR_INTERVALS = 1.0  # a condition must be seen by two evaluations in a row before it fires
GROUP_WAIT_INTERVALS = 2.0  # collect what starts in the next two rounds into the first message
GROUP_INTERVAL_INTERVALS = 10.0  # Alertmanager's ratio (group_wait 30 s, group_interval 5 min)


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reminder_after_seconds: float = Field(3600.0, ge=0)
    dashboard_url: str | None = None
    for_seconds: float | None = Field(None, ge=0)
    group_wait_seconds: float | None = Field(None, ge=0)
    group_interval_seconds: float | None = Field(None, ge=0)


class RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    severity: str = Field("warning", pattern=r"^(info|warning|critical)$")
    reminder_after_seconds: float | None = Field(None, ge=0)
    for_seconds: float | None = Field(None, ge=0)  # pending period; unset: defaults.for_seconds


@dataclass(frozen=True)
class Grouping:
    """Alertmanager's group_wait / group_interval, in seconds."""

    wait: float
    interval: float


class RegionSilence(RuleBase, SilenceRule):
    """Extends the web app's SilenceRule (same two thresholds) with what alerting needs."""

    severity: str = Field("critical", pattern=r"^(info|warning|critical)$")
    lookback_hours: float = Field(48.0, gt=0)


class ArrivalLag(RuleBase):
    threshold_seconds: float = Field(5400.0, gt=0)


class StreamingStalled(RuleBase):
    severity: str = Field("critical", pattern=r"^(info|warning|critical)$")
    stalled_after_intervals: float = Field(3.0, gt=0)
    min_stalled_seconds: float = Field(60.0, ge=0)


class DeadletterSpike(RuleBase):
    max_count: int = Field(10, ge=0)
    window_seconds: float = Field(900.0, gt=0)


class CrashLoop(RuleBase):
    """A server or service the supervisor of ./run.sh reports in crash-loop."""

    severity: str = Field("critical", pattern=r"^(info|warning|critical)$")
    # The supervisor logs each exit of a crash-looping process (one retry per
    # METEOFLOW_SUPERVISOR_BACKOFF_MAX_SECONDS); silence this long means it no longer runs.
    window_seconds: float = Field(1800.0, gt=0)


class ConsumerLag(RuleBase):
    """A Kafka consumer (streaming job, shipper) behind the end offsets: its oldest unprocessed record
    is older than the threshold, or its lag grew without a drop over `growing_samples` health samples."""

    threshold_intervals: float = Field(4.0, gt=0)
    min_threshold_seconds: float = Field(180.0, ge=0)
    growing_samples: int = Field(8, ge=2, le=100)
    for_seconds: float | None = Field(60.0, ge=0)  # samples lag the truth by up to one sampling interval


class ServiceDown(RuleBase):
    """A server or service the supervisor of ./run.sh reports not up (held by `./run.sh down NAME`,
    or waiting to be restarted); a crash-looping one is `crash_loop`'s."""

    severity: str = Field("critical", pattern=r"^(info|warning|critical)$")
    for_seconds: float | None = Field(30.0, ge=0)  # a crash the supervisor restarts within this never pages
    ignore: list[str] = []  # services never reported (e.g. one you run elsewhere on purpose)
    impact: dict[str, str] = {}  # what each one's absence means, said first in its message


class StoreBehind(RuleBase):
    """MongoDB's or Elasticsearch's newest observation lies this far behind Kafka's newest record."""

    threshold_intervals: float = Field(3.0, gt=0)
    min_threshold_seconds: float = Field(120.0, ge=0)
    for_seconds: float | None = Field(60.0, ge=0)


class ForecastStale(RuleBase):
    """A region's last successful forecast run is older than this while its observations arrive."""

    stale_after_intervals: float = Field(6.0, gt=0)
    min_stale_seconds: float = Field(600.0, ge=0)


class ForecastDegraded(RuleBase, DegradedThresholds):
    """A region's served forecast, over the last 24 h (every lead time 1-24 h together, from the
    streaming job's forecast_skill): its MAE above persistence's, or its band holding too few of
    the observations. The judgment and its default thresholds are the web pages' too
    (meteoflow.forecast_verdict): min_pairs, mae_margin, min_coverage."""


class ElasticsearchUnavailable(RuleBase):
    """The alerting service cannot read or write Elasticsearch: it says so, from its own memory."""

    severity: str = Field("critical", pattern=r"^(info|warning|critical)$")
    for_seconds: float | None = Field(60.0, ge=0)


RULE_MODELS: dict[str, type[RuleBase]] = {
    "region_silence": RegionSilence,
    "arrival_lag": ArrivalLag,
    "streaming_stalled": StreamingStalled,
    "deadletter_spike": DeadletterSpike,
    "crash_loop": CrashLoop,
    "consumer_lag": ConsumerLag,
    "service_down": ServiceDown,
    "store_behind": StoreBehind,
    "forecast_stale": ForecastStale,
    "forecast_degraded": ForecastDegraded,
    "elasticsearch_unavailable": ElasticsearchUnavailable,
}


class Matcher(BaseModel):
    """Matches conditions of `rule`, and of `subject` when given (a region id, service, consumer or store)."""

    model_config = ConfigDict(extra="forbid")
    rule: str
    subject: str | None = None

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value not in RULE_MODELS:
            raise ValueError(f"unknown rule {value!r}; known: {', '.join(sorted(RULE_MODELS))}")
        return value

    def matches(self, rule: str, subject: str) -> bool:
        return rule == self.rule and (self.subject is None or subject == self.subject)


class Inhibition(BaseModel):
    """Alertmanager's inhibit rule: while a condition matching `source` holds (pending or firing),
    conditions matching `target` are held back: the source names their cause."""

    model_config = ConfigDict(extra="forbid")
    source: list[Matcher] = Field(min_length=1)
    target: list[Matcher] = Field(min_length=1)
    equal_subject: bool = False  # only targets with the same subject as the source
    why: str = ""

    def holds(self, source: tuple[str, str], target: tuple[str, str]) -> bool:
        if source == target:
            return False  # never itself
        if self.equal_subject and source[1] != target[1]:
            return False
        return any(m.matches(*source) for m in self.source) and any(m.matches(*target) for m in self.target)


class AlertRules(BaseModel):
    defaults: Defaults = Defaults()
    region_silence: RegionSilence = RegionSilence()
    arrival_lag: ArrivalLag = ArrivalLag()
    streaming_stalled: StreamingStalled = StreamingStalled()
    deadletter_spike: DeadletterSpike = DeadletterSpike()
    crash_loop: CrashLoop = CrashLoop()
    consumer_lag: ConsumerLag = ConsumerLag()
    service_down: ServiceDown = ServiceDown()
    store_behind: StoreBehind = StoreBehind()
    forecast_stale: ForecastStale = ForecastStale()
    forecast_degraded: ForecastDegraded = ForecastDegraded()
    elasticsearch_unavailable: ElasticsearchUnavailable = ElasticsearchUnavailable()
    inhibit: list[Inhibition] = []

    def reminder_after(self, rule: str) -> float:
        own = getattr(self, rule).reminder_after_seconds
        return self.defaults.reminder_after_seconds if own is None else own

    def pending_for(self, rule: str, eval_interval: float) -> float:
        """How long a condition of `rule` must hold before its incident fires."""
        return _first_set(getattr(self, rule).for_seconds, self.defaults.for_seconds, FOR_INTERVALS * eval_interval)

    def grouping(self, eval_interval: float) -> Grouping:
        d = self.defaults
        return Grouping(wait=_first_set(d.group_wait_seconds, GROUP_WAIT_INTERVALS * eval_interval),
                        interval=_first_set(d.group_interval_seconds, GROUP_INTERVAL_INTERVALS * eval_interval))


def _first_set(*values: float | None) -> float:
    return next(v for v in values if v is not None)


class RulesError(ValueError):
    """The rules file is wrong; the message names the file, the rule and the field."""


def parse_rules(data: object, where: str = "alert rules") -> AlertRules:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(f"{where}: expected a mapping of rule name -> settings, got {type(data).__name__}")
    known = {"defaults", "inhibit", *RULE_MODELS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RulesError(f"{where}: unknown rule(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    problems = []
    parsed: dict = {}
    for name, section in data.items():
        if name == "inhibit":
            parsed[name] = _parse_inhibit(section, problems)
            continue
        model = Defaults if name == "defaults" else RULE_MODELS[name]
        if section is None:
            section = {}
        if not isinstance(section, dict):
            problems.append(f"rule {name!r}: expected a mapping of settings, got {type(section).__name__}")
            continue
        try:
            parsed[name] = model.model_validate(section)
        except ValidationError as exc:
            problems += [f"rule {name!r}, field {e.field!r}: {e.detail}" for e in field_errors(exc, default_field="(rule)")]
    if problems:
        raise RulesError(f"{where}: " + "; ".join(problems))
    return AlertRules(**parsed)


def _parse_inhibit(section: object, problems: list[str]) -> list[Inhibition]:
    if section is None:
        return []
    if not isinstance(section, list):
        problems.append(f"'inhibit': expected a list of {{source, target}} entries, got {type(section).__name__}")
        return []
    found = []
    for n, entry in enumerate(section):
        try:
            found.append(Inhibition.model_validate(entry))
        except ValidationError as exc:
            problems += [f"'inhibit' entry {n}, field {e.field!r}: {e.detail}"
                         for e in field_errors(exc, default_field="(entry)")]
    return found


def load_rules(path: Path) -> AlertRules:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RulesError(f"{path}: alert rules file not found (set METEOFLOW_ALERT_RULES_FILE)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from None
    return parse_rules(data, str(path))
