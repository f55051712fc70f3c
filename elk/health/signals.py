"""Pure functions turning raw readings (offsets, timestamps, state files) into MetricSample
documents. No I/O here: the adapters in elk/health/sources.py take the readings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from meteoflow.contracts import ForecastSkill, ForecastState, MetricSample, SupervisorState
from meteoflow.forecast_verdict import SkillFigures

# --- Spark's checkpoint ---------------------------------------------------------------------
# <checkpoint>/offsets/<batchId>: "v1", a line of batch metadata, then one JSON line per source
#   with the offsets the batch reads UP TO (exclusive), e.g. {"weather.observations":{"0":74,"1":85}}.
# <checkpoint>/commits/<batchId>: written once the batch's output is done. So the processed
# offsets are those of the newest batch id present in both.


class CheckpointError(ValueError):
    """A checkpoint file that is not in the format Spark writes."""


def parse_offset_log(text: str) -> dict[str, dict[int, int]]:
    """Offsets of one `offsets/<batchId>` file: {topic: {partition: next offset to process}}."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("v"):
        raise CheckpointError("an offset log starts with its version line (v1)")
    offsets: dict[str, dict[int, int]] = {}
    for line in lines[2:]:  # after the version and the batch metadata: one line per source
        if line.strip() == "-":  # a source without offsets in this batch
            continue
        try:
            source = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"source offsets are not JSON: {exc.msg}") from None
        if not isinstance(source, dict):
            continue  # not a Kafka source
        for topic, partitions in source.items():
            if not isinstance(partitions, dict):
                raise CheckpointError(f"offsets of {topic!r} are not a partition map")
            for partition, offset in partitions.items():
                offsets.setdefault(topic, {})[int(partition)] = int(offset)
    return offsets


def _batch_ids(directory: Path) -> set[int]:
    if not directory.is_dir():
        return set()
    return {int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_file()}


def latest_committed_batch(checkpoint: Path) -> int | None:
    """The newest batch id with both an offset log and a commit, or None (nothing processed yet)."""
    both = _batch_ids(checkpoint / "offsets") & _batch_ids(checkpoint / "commits")
    return max(both) if both else None


def committed_offsets(checkpoint: Path, topic: str) -> dict[int, int] | None:
    """Offsets of `topic` the streaming job processed (exclusive end), or None when no batch
    was committed yet (then it has processed nothing: its lag is every record)."""
    batch = latest_committed_batch(checkpoint)
    if batch is None:
        return None
    return parse_offset_log((checkpoint / "offsets" / str(batch)).read_text()).get(topic, {})


# --- consumer lag ---------------------------------------------------------------------------
@dataclass
class PartitionReading:
    """One partition of a topic as the Kafka adapter saw it."""

    beginning: int  # oldest offset still in the log
    end: int  # offset the next record will get
    position: int | None  # where the consumer will read next (None: it has no offset there)
    oldest_unprocessed_at: datetime | None = None  # timestamp of the record at the position


@dataclass
class ConsumerReading:
    consumer: str
    partitions: dict[tuple[str, int], PartitionReading] = field(default_factory=dict)


def next_to_process(p: PartitionReading) -> int:
    """The offset the consumer reads next: no offset (or one retention removed) means the oldest kept
    (both consumers start at the earliest offset); one beyond the end counts as caught up."""
    if p.position is None or p.position < p.beginning:
        return p.beginning
    return min(p.position, p.end)


def unprocessed(p: PartitionReading) -> int:
    return max(0, p.end - next_to_process(p))


def consumer_lag_sample(now: datetime, reading: ConsumerReading) -> MetricSample:
    """Lag in records (sum over partitions) and in seconds (age of the oldest unprocessed record;
    0 when caught up, None when lagging but that record's time could not be read)."""
    lag = sum(unprocessed(p) for p in reading.partitions.values())
    behind = [p for p in reading.partitions.values() if unprocessed(p) > 0]
    if not behind:
        seconds: float | None = 0.0
    else:
        times = [p.oldest_unprocessed_at for p in behind if p.oldest_unprocessed_at is not None]
        seconds = max(0.0, (now - min(times)).total_seconds()) if times else None
    started = any(p.position is not None for p in reading.partitions.values())
    return MetricSample(timestamp=now, kind="consumer_lag", subject=reading.consumer, lag_records=lag,
                        lag_seconds=seconds, partitions=len(reading.partitions), consumer_started=started)


# --- end-to-end staleness -------------------------------------------------------------------
def store_staleness_samples(now: datetime, kafka_newest: datetime | None,
                            stores: dict[str, datetime | None]) -> list[MetricSample]:
    """One sample for Kafka (its newest record) and one per store behind it.

    staleness_seconds = how far the store's newest lies behind Kafka's newest (0 when it is not
    behind; absent when either has nothing yet); age_seconds = now - the store's newest."""
    samples = [MetricSample(timestamp=now, kind="store_staleness", subject="kafka", newest_at=kafka_newest,
                            staleness_seconds=0.0 if kafka_newest else None, age_seconds=_age(now, kafka_newest))]
    for store, newest in stores.items():
        staleness = None
        if kafka_newest is not None and newest is not None:
            staleness = max(0.0, (kafka_newest - newest).total_seconds())
        samples.append(MetricSample(timestamp=now, kind="store_staleness", subject=store, newest_at=newest,
                                    staleness_seconds=staleness, age_seconds=_age(now, newest)))
    return samples


def _age(now: datetime, when: datetime | None) -> float | None:
    return None if when is None else max(0.0, (now - when).total_seconds())


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# --- services (supervisor state file of ./run.sh) ---------------------------------------------
def service_samples(now: datetime, state: SupervisorState) -> list[MetricSample]:
    samples = []
    for name, proc in sorted(state.processes.items()):
        up = proc.state == "up"
        samples.append(MetricSample(
            timestamp=now, kind="service", subject=name, state=proc.state, up=int(up),
            uptime_seconds=_age(now, utc(proc.since)) if up else 0.0, restarts=proc.restarts,
            last_exit_code=proc.last_exit_code, last_error=proc.last_error))
    return samples


# --- forecast age ---------------------------------------------------------------------------
def forecast_age_samples(now: datetime, states: list[ForecastState]) -> list[MetricSample]:
    """One sample per region of the forecast_state collection: age of its last successful run
    (absent when it never had one)."""
    return [MetricSample(timestamp=now, kind="forecast_age", subject=state.region_id,
                         model_run_at=state.last_success_at, age_seconds=_age(now, state.last_success_at),
                         forecast_status=state.status)
            for state in sorted(states, key=lambda s: s.region_id)]


# --- forecast skill ---------------------------------------------------------------------------
def forecast_skill_samples(now: datetime, skills: list[ForecastSkill]) -> list[MetricSample]:
    """One sample per region of its 24 h skill, every lead time together (SkillFigures: the same
    figures the web pages judge); a region without any pair has no figures."""
    by_region: dict[str, list[ForecastSkill]] = {}
    for skill in skills:
        if skill.window == "24h":
            by_region.setdefault(skill.region_id, []).append(skill)
    samples = []
    for region_id, rows in sorted(by_region.items()):
        figures = SkillFigures.of(rows)
        samples.append(MetricSample(
            timestamp=now, kind="forecast_skill", subject=region_id, skill_pairs=figures.pairs,
            model_mae=figures.model_mae, persistence_mae=figures.persistence_mae, coverage=figures.coverage,
            band_level=figures.band_level))
    return samples
