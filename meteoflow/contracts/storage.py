"""Where things are stored and under which id, and the MongoDB documents themselves.

Every MongoDB collection has one model here. Writers build the model and store
`to_document()`; readers turn what they read back into the model with `from_document()`
(or `valid_documents()`, which skips and logs a malformed document, naming the collection
and its _id, so one bad document costs only itself). Unknown fields are ignored on reading,
so a reader is not broken by a writer that adds one.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Callable, ClassVar, Iterable, Iterator, Literal, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from meteoflow.contracts.common import UtcTime
from meteoflow.contracts.forecasting import ForecastModel, Prediction
from meteoflow.contracts.observation import (
    Latitude, Longitude, Observation, RegionId, describe_exception,
)
from meteoflow.errors import describe_errors

log = logging.getLogger("meteoflow.contracts")
MALFORMED_DOCUMENT_ACTION = "malformed-document"  # event.action of the warning about a skipped document

# --- MongoDB collections (written by streaming, read by the web app and the health sampler) ---
OBSERVATIONS = "observations"  # ObservationDocument
HOURLY_STATS = "hourly_stats"  # HourlyStats
FORECASTS = "forecasts"  # ForecastDocument
FORECAST_STATE = "forecast_state"  # ForecastState
FORECAST_RUNS = "forecast_runs"  # ForecastRun: every run kept (retention), not only the latest
FORECAST_SKILL = "forecast_skill"  # ForecastSkill: served forecast vs baselines, per region/lead/window
FORECAST_SKILL_BUCKETS = "forecast_skill_buckets"  # ForecastSkillBucket: one observed hour per region, every lead
FORECAST_SKILL_TARGETS = "forecast_skill_targets"  # ForecastTargets: the runs still awaiting observations
DAILY_STATS = "daily_stats"  # DailyStats: per region and UTC day (streaming job and batch recompute)
RAIN_MODELS = "rain_models"  # RainModelEvaluation: one per trained model (batch train-rain)
RAIN_PREDICTIONS = "rain_predictions"  # RainPrediction: each region's latest rain chance (batch predict-rain)
REGION_LATEST = "region_latest"  # RegionLatest: each region's newest observation, kept by the streaming job
# The copy of each region's last days that earlier versions kept beside observations (one more document
# per record); a store that has it gets `day` on its observations and loses it (streaming.sinks.fill_observation_days).
RECENT_OBSERVATIONS = "recent_observations"
RECENT_HOURS = 168  # the longest window the region page offers (24, 48, 72 or 168 h)
REGION_SERIES = "region_series"  # RegionSeries: each region's recent hourly means, kept by the streaming job
STORE_PROGRESS = "store_progress"  # StoreProgress: when the streaming job last stored into a collection
SERIES_HOURS = RECENT_HOURS + 24  # how far back (before its newest hour) a region's series goes


def doc_id(region_id: str, when: datetime) -> str:
    """Deterministic MongoDB _id, so writes are idempotent upserts."""
    return f"{region_id}|{when.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def point_key(when: datetime) -> str:
    """Key of an observation inside its hour's HourlyStats.temps: epoch seconds, the resolution of
    its document's _id (two records of one second are one document, so one temp)."""
    return str(int(when.timestamp()))


def kafka_doc_id(topic: str, partition: int, offset: int) -> str:
    """Elasticsearch _id of a shipped Kafka record: reshipping overwrites, never duplicates."""
    return f"{topic}-{partition}-{offset}"


def bson_millis(when: datetime | None) -> datetime | None:
    """BSON dates keep milliseconds: truncate first, so what is written equals what is read back."""
    return None if when is None else when.replace(microsecond=when.microsecond // 1000 * 1000)


class InvalidDocument(ValueError):
    """A stored document that does not match its collection's model; the message names the
    collection, the document's _id and each bad field."""


Finite = Annotated[float, Field(allow_inf_nan=False)]


class MongoDocument(BaseModel):
    """A document of the collection `COLLECTION`, keyed by `id` (stored as `_id`)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    COLLECTION: ClassVar[str]

    id: str = Field(alias="_id", min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _bson_dates_are_utc(cls, data: Any) -> Any:
        # A client without tz_aware=True reads BSON dates as naive datetimes; they are UTC.
        if isinstance(data, Mapping):
            return {k: v.replace(tzinfo=timezone.utc) if isinstance(v, datetime) and v.tzinfo is None else v
                    for k, v in data.items()}
        return data

    def to_document(self) -> dict[str, Any]:
        """The document to store: datetimes stay datetimes (BSON dates), cut to milliseconds."""
        return _bson_ready(self.model_dump(by_alias=True))

    @classmethod
    def from_document(cls, doc: Any):
        """The model of a stored document, or InvalidDocument saying which field is wrong.

        Total: whatever the document holds, nothing else is raised."""
        where = f"{cls.COLLECTION} document"
        if not isinstance(doc, Mapping):
            raise InvalidDocument(f"{where}: not a document (got {type(doc).__name__})")
        where += f" _id={_short(doc.get('_id'))}"
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            raise InvalidDocument(f"{where}: {describe_errors(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - content no validator foresaw still costs only this document
            raise InvalidDocument(f"{where}: {describe_exception(exc)}") from None

    @classmethod
    def projection(cls) -> dict[str, int]:
        """A find() projection of exactly the model's fields."""
        return {(f.alias or name): 1 for name, f in cls.model_fields.items()}


def _bson_ready(value: Any) -> Any:
    # Nested too (a ForecastRun's points), so every stored date reads back equal.
    if isinstance(value, datetime):
        return bson_millis(value)
    if isinstance(value, dict):
        return {k: _bson_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # BSON has arrays only: a tuple reads back as a list
        return [_bson_ready(v) for v in value]
    return value


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - an id whose repr fails is still named by its type
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


D = TypeVar("D", bound=MongoDocument)
R = TypeVar("R")


def iter_valid(model: type[D], docs: Iterable[Any], logger: logging.Logger | None = None) -> Iterator[D]:
    """The documents that match `model`; each one that does not is skipped with a warning that
    names the collection, its _id and the bad fields (event.action "malformed-document")."""
    for doc in docs:
        try:
            yield model.from_document(doc)
        except InvalidDocument as exc:
            (logger or log).warning("skipped a malformed document: %s", exc, extra={"fields": {
                "event.action": MALFORMED_DOCUMENT_ACTION,
                "meteoflow.document": {"collection": model.COLLECTION, "reason": str(exc)}}})


def valid_documents(model: type[D], docs: Iterable[Any], logger: logging.Logger | None = None) -> list[D]:
    return list(iter_valid(model, docs, logger))


# Up to this many ids are read one find_one each rather than with one `$in` (see find_by_ids). A read
# by _id costs ~1.3 ms at any size (the _id index on PostgreSQL, SQLite's own key); a `$in` is a pass
# decoding the whole collection: 2.6 s for 200 ids among 60,000 documents, more as history grows
# (benchmarks/store_id_index_bench.py).
PER_ID_READS = 1000
# Those reads wait on the store, not on this process: a few at a time (each on its own pooled
# connection) take the time of the slowest rather than the sum.
PARALLEL_READS = 8


class _StorePool:
    """Threads that run store calls side by side; made again in a forked child (a Spark worker)."""

    def __init__(self, size: int, name: str):
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self.size, self.name = size, name

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix=self.name)
                self._pid = os.getpid()
            return self._pool

    def map(self, call: Callable[[Any], R], keys: list[Any]) -> list[R]:
        """call(key) of every key, in the keys' order; one key runs in the caller's thread."""
        if len(keys) < 2:
            return [call(key) for key in keys]
        return list(self.executor().map(call, keys))


_reads = _StorePool(PARALLEL_READS, "store-read")
# A batch's independent chains of sinks (observations; hourly stats -> series -> latest; daily stats):
# the store spreads them over both cores, where one after the other leaves one idle. Their own pool,
# so a write that reads (find_by_ids) never waits for a thread its caller holds.
_writes = _StorePool(3, "store-write")


def side_by_side(*calls: Callable[[], R]) -> list[R]:
    """Run independent store calls at the same time; their results in order. Every call has ended
    when this returns or raises (the error of the first that failed). A call must not use
    side_by_side itself (it could wait for a thread its caller holds)."""
    futures = [_writes.executor().submit(call) for call in calls]
    wait(futures)
    return [future.result() for future in futures]


def find_by_ids(collection: Any, ids: list[Any], projection: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """The documents with these _ids. FerretDB pushes only a single `_id` equality down to its
    storage as an indexed read: every other filter, `$in` included, reads the whole collection. So up
    to PER_ID_READS ids are read one by one (cost independent of the collection's size), more with
    one `$in`."""
    ids = list(dict.fromkeys(ids))
    if len(ids) <= PER_ID_READS:
        found = _reads.map(lambda i: collection.find_one({"_id": i}, projection), ids)
        return [d for d in found if d is not None]
    return list(collection.find({"_id": {"$in": ids}}, projection))


# --- observations -----------------------------------------------------------------------
UTC_DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def utc_day(when: datetime) -> str:
    """The UTC day of `when`, "YYYY-MM-DD" (an observation document's `day`)."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d")


def utc_days(start: datetime, end: datetime) -> list[str]:
    """Every UTC day from `start`'s to `end`'s, both included, oldest first."""
    first = start.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    count = (end.astimezone(timezone.utc) - first).days + 1
    return [utc_day(first + timedelta(days=n)) for n in range(max(count, 0))]


class ObservationDocument(MongoDocument, Observation):
    """An observation as stored: _id "<region_id>|<observed_at>", unique (region_id, observed_at), and
    its UTC `day`.

    Why `day`: FerretDB hands an equality on a top-level string to its backend (where the stack's
    indexes on `region_id` and `day` serve it) but filters a range (observed_at) itself, after decoding
    every document the backend returned, and decoding is most of a read's cost. So the readers of a
    region's recent days ask {"region_id": r, "day": d} for each day they need (find_days), and only
    those days' documents are decoded, whatever the history stored (measured: 25 ms against 119 ms for
    a week)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    COLLECTION: ClassVar[str] = OBSERVATIONS

    stored_at: UtcTime | None = None  # when the streaming job stored it (None: written before it recorded one)
    day: str | None = Field(None, pattern=UTC_DAY_PATTERN)  # None: stored before it existed; the job fills it

    @classmethod
    def build(cls, obs: Observation, stored_at: datetime) -> "ObservationDocument":
        return cls(**obs.model_dump(), _id=doc_id(obs.region_id, obs.observed_at), stored_at=stored_at,
                   day=utc_day(obs.observed_at))

    @staticmethod
    def document(obs: Observation, stored_at: datetime) -> dict[str, Any]:
        """`build(obs, stored_at).to_document()` without validating `obs` a second time (it is an
        Observation already): the streaming job's hot path, a third of its time per record before."""
        doc = {"_id": doc_id(obs.region_id, obs.observed_at), **obs.model_dump(),
               "stored_at": stored_at.astimezone(timezone.utc), "day": utc_day(obs.observed_at)}
        return {k: bson_millis(v) if isinstance(v, datetime) else v for k, v in doc.items()}

    def observation(self) -> Observation:
        """The observation itself, without what storing it added."""
        return Observation(**self.model_dump(include=set(Observation.model_fields)))


class RegionLatest(ObservationDocument):
    """A region's newest observation document (by observed_at), _id = region_id: one per region,
    replaced by the streaming job as it stores newer ones. The web app reads every region's latest
    from this small collection instead of sorting each region's history."""

    COLLECTION: ClassVar[str] = REGION_LATEST

    @classmethod
    def of(cls, doc: ObservationDocument) -> "RegionLatest":
        return cls(**{**doc.model_dump(), "id": doc.region_id})


class StoreProgress(MongoDocument):
    """When the streaming job last stored documents into a collection (_id = the collection's name): the
    newest `stored_at` there, raised by every batch (`$max`, so executors writing partitions side by
    side cannot lower it). The health sampler reads this one document where it sorted the whole
    collection by stored_at, a pass over the history at every sample on FerretDB (4 s at 36,000
    observations)."""

    COLLECTION: ClassVar[str] = STORE_PROGRESS

    stored_at: UtcTime

    @staticmethod
    def update(stored_at: datetime) -> dict[str, Any]:
        """The update that records a batch stored at `stored_at`."""
        return {"$max": {"stored_at": bson_millis(stored_at.astimezone(timezone.utc))}}


def find_days(collection: Any, region_id: str, days: Iterable[str],
              projection: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """A region's observation documents of `days` (UTC "YYYY-MM-DD"), one read per day (see
    ObservationDocument): documents stored before `day` existed are not found until the job fills it."""
    return find_region_days(collection, [(region_id, day) for day in days], projection)


def find_region_days(collection: Any, keys: Iterable[tuple[str, str]],
                     projection: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """The observation documents of each (region_id, UTC day) key, one indexed read per key, a few at a
    time (see find_days), in the keys' order."""
    found = _reads.map(lambda key: list(collection.find({"region_id": key[0], "day": key[1]}, projection)),
                       list(keys))
    return [doc for docs in found for doc in docs]


class ObservationPoint(MongoDocument):
    """The part of an observation document the streaming job reads back (hourly statistics,
    forecast history): read with `projection()`, so the rest of the document is not transferred."""

    COLLECTION: ClassVar[str] = OBSERVATIONS

    region_id: RegionId
    observed_at: UtcTime
    temp: Finite
    lat: Latitude
    lon: Longitude


# --- hourly statistics ------------------------------------------------------------------
class HourlyStats(MongoDocument):
    """min/max/mean/count of `temp` for one region and hour: _id "<region_id>|<hour>"."""

    COLLECTION: ClassVar[str] = HOURLY_STATS

    region_id: RegionId
    hour: UtcTime  # start of the hour
    temp_min: Finite
    temp_max: Finite
    temp_mean: Finite
    count: int = Field(ge=1)
    computed_at: UtcTime
    # The temps the figures come from, by point_key(observed_at): a later batch merges its own into
    # them and recomputes, without reading the hour's observations back. None: written before it was kept.
    temps: dict[str, Finite] | None = None

    @classmethod
    def build(cls, region_id: str, hour: datetime, temps: list[float] | Mapping[str, float],
              computed_at: datetime) -> "HourlyStats":
        """From the hour's temps: a list, or (to be kept in the document) a mapping by point_key."""
        values = list(temps.values()) if isinstance(temps, Mapping) else list(temps)
        return cls(_id=doc_id(region_id, hour), region_id=region_id, hour=hour, temp_min=min(values),
                   temp_max=max(values), temp_mean=math.fsum(values) / len(values), count=len(values),
                   computed_at=computed_at, temps=dict(temps) if isinstance(temps, Mapping) else None)

    @staticmethod
    def document(region_id: str, hour: datetime, temps: Mapping[str, float], computed_at: datetime) -> dict[str, Any]:
        """`build(region_id, hour, temps, computed_at).to_document()` for temps already validated
        (an Observation's): the streaming job's hot path, one per new (region, hour)."""
        values = list(temps.values())
        return {"_id": doc_id(region_id, hour), "region_id": region_id,
                "hour": bson_millis(hour.astimezone(timezone.utc)), "temp_min": min(values),
                "temp_max": max(values), "temp_mean": math.fsum(values) / len(values), "count": len(values),
                "computed_at": bson_millis(computed_at.astimezone(timezone.utc)), "temps": dict(temps)}

    @classmethod
    def summary_projection(cls) -> dict[str, int]:
        """Everything but `temps` (what a reader of the figures needs)."""
        return {k: v for k, v in cls.projection().items() if k != "temps"}


def hour_floor(when: datetime) -> datetime:
    return when.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def hourly_stats(keys: Iterable[tuple[str, datetime]], stored: Iterable[Any], computed_at: datetime) -> list[HourlyStats]:
    """min/max/mean/count of `temp` for exactly `keys` (region, hour), from stored observations (any
    objects with region_id, observed_at and temp): recomputed, not incremented, so a replayed batch
    gives the same numbers; and the web app's window computes the same figures the job stores."""
    temps: dict[tuple[str, datetime], dict[str, float]] = {key: {} for key in set(keys)}
    for point in stored:
        key = (point.region_id, hour_floor(point.observed_at))
        if key in temps:
            temps[key][point_key(point.observed_at)] = point.temp
    # An hour with nothing stored cannot happen after a successful upsert; it is left out.
    return [HourlyStats.build(region_id, hour, values, computed_at)
            for (region_id, hour), values in sorted(temps.items()) if values]


# --- each region's hourly series ---------------------------------------------------------
PointKey = Annotated[str, Field(pattern=r"^-?[0-9]{1,12}$")]  # point_key(): epoch seconds


class RegionSeries(MongoDocument):
    """One region's hourly mean temperatures over its last SERIES_HOURS (before its newest hour),
    _id = region_id: what the forecast step fits and scores against, kept by the streaming job from
    the hourly statistics it merges, so a refresh reads one document per region instead of its week
    of observations. Complete: a region's first document holds every stored hour of its window."""

    COLLECTION: ClassVar[str] = REGION_SERIES

    region_id: RegionId
    lat: Latitude  # of the newest observation
    lon: Longitude
    last_observed_at: UtcTime  # the newest observation the hours include
    hours: dict[PointKey, Finite]  # point_key(start of the hour) -> the hour's mean temp (HourlyStats.temp_mean)
    computed_at: UtcTime

    @staticmethod
    def mean(temp_mean: float) -> float:
        """An hour's mean as the series keeps it (as streaming.records.hourly_means rounds it)."""
        return round(temp_mean, 4)

    @classmethod
    def merged(cls, region_id: str, stored: "RegionSeries | None", hours: Mapping[str, float],
               newest: Mapping[str, Any], computed_at: datetime) -> "RegionSeries":
        """`stored` (None: none yet) with `hours` replacing the same hours; position and last_observed_at
        from `newest` (an observation document) unless the stored one is later; hours older than
        SERIES_HOURS before the newest hour dropped."""
        last, lat, lon = newest["observed_at"], newest["lat"], newest["lon"]
        if stored is not None and stored.last_observed_at > last:
            last, lat, lon = stored.last_observed_at, stored.lat, stored.lon
        merged = {**(stored.hours if stored is not None else {}), **hours}
        oldest = int((hour_floor(last) - timedelta(hours=SERIES_HOURS)).timestamp())
        return cls(_id=region_id, region_id=region_id, lat=lat, lon=lon, last_observed_at=last,
                   hours={k: v for k, v in sorted(merged.items(), key=lambda kv: int(kv[0])) if int(k) >= oldest},
                   computed_at=computed_at)

    def points(self) -> list[tuple[datetime, float]]:
        """(start of the hour, mean temp), oldest first."""
        return sorted((datetime.fromtimestamp(int(k), timezone.utc), v) for k, v in self.hours.items())


# --- daily statistics -------------------------------------------------------------------
class DailyPoint(ObservationPoint):
    """What daily statistics read of an observation (stored document or archive row).
    rain_1h/snow_1h are None where the observation carried none (or predates them)."""

    humidity: Finite
    wind_speed: Finite
    rain_1h: Finite | None = Field(None, ge=0)
    snow_1h: Finite | None = Field(None, ge=0)


# One observation inside its day's DailyStats.readings: temp, humidity, wind_speed and precipitation
# (rain_1h + snow_1h; None when it reported neither, OpenWeatherMap's way of saying dry).
DayReading = tuple[Finite, Finite, Finite, Annotated[float, Field(ge=0, allow_inf_nan=False)] | None]


def day_reading(point: Any) -> DayReading:
    """The DayReading of an Observation or DailyPoint."""
    rain, snow = getattr(point, "rain_1h", None), getattr(point, "snow_1h", None)
    precipitation = None if rain is None and snow is None else (rain or 0.0) + (snow or 0.0)
    return (point.temp, point.humidity, point.wind_speed, precipitation)


class DailyStats(MongoDocument):
    """One region's UTC day: _id "<region_id>|<day>T00:00:00Z".

    precipitation_mm is rain + snow over the day: each hour counts the mean of its observations'
    `rain_1h + snow_1h` (each already the last hour's total, so four readings an hour are not four
    hours of rain), summed over the hours. precipitation_hours says how many hours had a reading;
    the others count as 0 (OpenWeatherMap leaves rain out when it is dry)."""

    COLLECTION: ClassVar[str] = DAILY_STATS

    region_id: RegionId
    day: UtcTime  # start of the UTC day
    temp_min: Finite
    temp_max: Finite
    temp_mean: Finite
    humidity_mean: Finite
    wind_speed_mean: Finite
    precipitation_mm: Finite = Field(ge=0)
    precipitation_hours: int = Field(ge=0, le=24)
    count: int = Field(ge=1)
    computed_at: UtcTime
    # The readings the figures come from, by point_key(observed_at): like HourlyStats.temps, a later
    # batch merges its own into them and recomputes without reading the day back. None: written before.
    # Keys are parsed back into instants (the hour of a precipitation reading): a damaged key makes
    # the document invalid, so it is recomputed from the observations instead of failing a batch.
    readings: dict[PointKey, DayReading] | None = None

    @classmethod
    def build(cls, region_id: str, day: datetime, points: list[DailyPoint], computed_at: datetime) -> "DailyStats":
        """From the day's points (at least one; two of one second are one document, so one reading)."""
        return cls.from_readings(region_id, day, {point_key(p.observed_at): day_reading(p) for p in points},
                                 computed_at)

    @classmethod
    def from_readings(cls, region_id: str, day: datetime, readings: Mapping[str, DayReading],
                      computed_at: datetime) -> "DailyStats":
        """From the day's readings by point_key (at least one). Exact sums (fsum): any order, same numbers."""
        values = list(readings.values())
        hourly_precip: dict[int, list[float]] = {}
        for key, (_, _, _, precipitation) in readings.items():
            if precipitation is not None:
                hourly_precip.setdefault(int(key) // 3600, []).append(precipitation)
        precipitation_mm = math.fsum(math.fsum(v) / len(v) for v in hourly_precip.values())
        temps = [v[0] for v in values]
        return cls(_id=doc_id(region_id, day), region_id=region_id, day=day, temp_min=min(temps),
                   temp_max=max(temps), temp_mean=math.fsum(temps) / len(temps),
                   humidity_mean=math.fsum(v[1] for v in values) / len(values),
                   wind_speed_mean=math.fsum(v[2] for v in values) / len(values),
                   precipitation_mm=round(precipitation_mm, 3), precipitation_hours=len(hourly_precip),
                   count=len(values), computed_at=computed_at, readings=dict(readings))

    @classmethod
    def summary_projection(cls) -> dict[str, int]:
        """Everything but `readings` (what a reader of the figures needs)."""
        return {k: v for k, v in cls.projection().items() if k != "readings"}


# --- rain model (batch/rain.py) -----------------------------------------------------------
RainModelName = Literal["decision_tree", "gbt"]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class RainModelEvaluation(MongoDocument):
    """One trained rain classifier and its evaluation on the time-based hold-out (the hours from
    `train_until` on): _id "<model>|<trained_at>". `selected`: the one predict-rain serves (the
    best AUC of its training run)."""

    COLLECTION: ClassVar[str] = RAIN_MODELS

    model: RainModelName
    trained_at: UtcTime
    lead_hours: int = Field(ge=1)
    train_until: UtcTime
    train_rows: int = Field(ge=1)
    test_rows: int = Field(ge=1)
    rain_share: Probability  # share of hold-out hours followed by rain
    auc: Probability | None  # None when the hold-out holds one class only
    accuracy: Probability
    true_negatives: int = Field(ge=0)
    false_positives: int = Field(ge=0)
    false_negatives: int = Field(ge=0)
    true_positives: int = Field(ge=0)
    training_seconds: Finite = Field(ge=0)
    model_uri: str = Field(min_length=1)
    selected: bool
    label_basis: str = Field(description="What counted as rain in the training data")

    @staticmethod
    def make_id(model: str, trained_at: datetime) -> str:
        return f"{model}|{bson_millis(trained_at).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


class RainPrediction(MongoDocument):
    """A region's latest chance of rain in the `lead_hours` after `from_hour`: _id = region_id."""

    COLLECTION: ClassVar[str] = RAIN_PREDICTIONS

    region_id: RegionId
    from_hour: UtcTime  # the last hour of observations the features come from
    lead_hours: int = Field(ge=1)
    probability: Probability
    model: RainModelName
    model_trained_at: UtcTime
    predicted_at: UtcTime


# --- forecasts --------------------------------------------------------------------------
BASELINE_MODELS: tuple[str, ...] = ("persistence", "climatology")


class ForecastDocument(MongoDocument):
    """One forecast point of a region's latest model run: _id "<region_id>|<target_time>".

    The stored names are the web API's (and Prophet's): yhat, yhat_lower, yhat_upper. The
    forecasting API calls the same numbers temperature, lower and upper (its documented body);
    `from_prediction` is the one place where they are renamed."""

    COLLECTION: ClassVar[str] = FORECASTS

    region_id: RegionId
    target_time: UtcTime
    yhat: Finite  # forecast temperature, deg C
    yhat_lower: Finite  # uncertainty band
    yhat_upper: Finite
    model_run_at: UtcTime
    horizon_hours: int | None = Field(None, ge=1)  # None: written before it was recorded
    model: ForecastModel | None = None  # which forecast is served; None: written before it was recorded

    @classmethod
    def from_prediction(cls, region_id: str, prediction: Prediction, model_run_at: datetime,
                        horizon_hours: int, model: ForecastModel = "prophet") -> "ForecastDocument":
        target = prediction.timestamp
        target = (target if target.tzinfo else target.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        return cls(_id=doc_id(region_id, target), region_id=region_id, target_time=target,
                   yhat=prediction.temperature, yhat_lower=prediction.lower, yhat_upper=prediction.upper,
                   model_run_at=model_run_at, horizon_hours=horizon_hours, model=model)


ForecastStatus = Literal["ok", "skipped", "error", "failed"]

SkillWindow = Literal["24h", "7d"]
LeadHours = Annotated[int, Field(ge=1, le=240)]


class ForecastRunPoint(BaseModel):
    """One point of a kept forecast run."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    target_time: UtcTime
    yhat: Finite
    yhat_lower: Finite
    yhat_upper: Finite
    # Same hour yesterday's observed hourly mean (the climatology baseline), when known at run time.
    climatology: Finite | None = None
    # What was served at this point (a baseline at the leads where it beats the model); None: the run's model.
    model: ForecastModel | None = None
    # The forecasting API's own forecast of this point, kept whether or not it was served, so the model's
    # skill is measured while a baseline is served; None: the API was not asked (too little history).
    api_yhat: Finite | None = None

    def served_model(self, run_model: ForecastModel) -> ForecastModel:
        return self.model or run_model

    def api_forecast(self, run_model: ForecastModel) -> float | None:
        """The API's forecast of this point; a point written before api_yhat was recorded had it as yhat
        whenever the model was served."""
        if self.api_yhat is not None:
            return self.api_yhat
        return None if self.served_model(run_model) in BASELINE_MODELS else self.yhat


class ForecastRun(MongoDocument):
    """One forecast run of one region, kept for `forecast_runs_retention_days`: _id "<region_id>|<run_at>"
    (run_at to the millisecond, e.g. "dakar|2026-12-02T06:00:00.123Z").

    `forecasts` keeps only each region's latest run (cheap to read); this keeps them all, so past
    forecasts can be drawn against what happened and skill can be measured."""

    COLLECTION: ClassVar[str] = FORECAST_RUNS

    region_id: RegionId
    run_at: UtcTime  # model_run_at of the run
    origin: UtcTime  # the region's last observation the run was made from
    model: ForecastModel  # the forecasting API's label when it was asked, else the baseline served
    horizon_hours: int = Field(ge=1)
    band_level: float = Field(gt=0, lt=1)  # nominal coverage of [yhat_lower, yhat_upper], e.g. 0.95
    points: list[ForecastRunPoint]
    # The origin hour's observed mean: the persistence baseline's forecast for every target.
    persistence: Finite | None = None

    @staticmethod
    def make_id(region_id: str, run_at: datetime) -> str:
        # To the millisecond (as stored): two runs of a region within one second (a batch and the retry
        # timer) are two runs, not one overwriting the other.
        when = bson_millis(run_at.astimezone(timezone.utc))
        return f"{region_id}|{when.strftime('%Y-%m-%dT%H:%M:%S')}.{when.microsecond // 1000:03d}Z"


class ForecastLeadPair(BaseModel):
    """What was forecast for one target hour at one lead time: the newest kept run whose origin hour
    lies `lead_hours` before the target (the forecast served at that lead, and the forecasting API's
    own forecast whether or not it was served)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    lead_hours: LeadHours
    run_at: UtcTime
    model: ForecastModel
    yhat: Finite
    yhat_lower: Finite
    yhat_upper: Finite
    band_level: float = Field(gt=0, lt=1)
    persistence: Finite | None  # the baselines' forecasts of the same target (None: unknown at run time)
    climatology: Finite | None
    api_yhat: Finite | None = None  # the forecasting API's forecast (None: not asked)


class ForecastSkillBucket(MongoDocument):
    """One observed hour of one region and what each lead time had forecast for it: _id
    "<region_id>|<target_time>". A replayed observation or run rewrites the same bucket (and the
    same lead in it), so nothing is counted twice. The rolling windows of `forecast_skill` are
    sums over at most 168 of them per region; kept 7 days."""

    COLLECTION: ClassVar[str] = FORECAST_SKILL_BUCKETS

    region_id: RegionId
    target_time: UtcTime  # start of the observed hour
    observed: Finite  # the hour's mean temperature
    leads: list[ForecastLeadPair]
    updated_at: UtcTime


class ForecastTargets(MongoDocument):
    """The runs of one region whose targets may still be observed at a lead of 1-24 h: the newest
    run of each of its last 25 origin hours (the newest and the 24 before it), _id = region_id. Small on purpose: the skill step reads
    it instead of searching forecast_runs, which keeps every run."""

    COLLECTION: ClassVar[str] = FORECAST_SKILL_TARGETS

    region_id: RegionId
    runs: list[ForecastRun]


class ForecastSkill(MongoDocument):
    """How the served forecast did against the baselines, for one region, lead time and rolling
    window: _id "<region_id>|<window>|<lead_hours>". Maintained incrementally as observations
    arrive (never by a query over all history). MAE and bias in deg C; bias = mean(forecast - observed);
    coverage = share of observations inside the served band. model_* is the served forecast (a baseline
    where one is served); api_* the forecasting API's own forecast, scored whether or not served, which
    is what the per-lead choice of what to serve compares with the baselines."""

    COLLECTION: ClassVar[str] = FORECAST_SKILL

    region_id: RegionId
    window: SkillWindow
    lead_hours: LeadHours
    count: int = Field(ge=0)  # forecast/observation pairs in the window
    model_mae: Finite | None
    model_bias: Finite | None
    persistence_mae: Finite | None
    persistence_bias: Finite | None
    climatology_mae: Finite | None  # same hour yesterday
    climatology_bias: Finite | None
    coverage: float | None = Field(ge=0, le=1)
    band_level: float = Field(gt=0, lt=1)
    updated_at: UtcTime
    api_count: int = Field(0, ge=0)  # the pairs where the API's forecast is known
    api_mae: Finite | None = None
    api_bias: Finite | None = None

    @staticmethod
    def make_id(region_id: str, window: str, lead_hours: int) -> str:
        return f"{region_id}|{window}|{lead_hours}"


class ForecastState(MongoDocument):
    """Where a region's forecasting stands: _id = region_id.

    Written piecewise: `mark_update` when a batch touches the region, then a ForecastAttempt's
    `to_update` once the forecasting API was (or could not be) asked."""

    COLLECTION: ClassVar[str] = FORECAST_STATE

    region_id: RegionId
    needs_forecast: bool
    last_observed_at: UtcTime  # the region's newest observation when it was marked
    status: ForecastStatus | None = None  # None: never attempted yet
    last_error: str | None = None  # error, failed: what went wrong
    reason: str | None = None  # skipped: why
    last_attempt_at: UtcTime | None = None
    last_success_at: UtcTime | None = None  # model_run_at of its latest forecasts
    forecast_origin: UtcTime | None = None  # the newest observation its latest forecasts were made from

    def refit_due(self, now: datetime, min_seconds: float) -> bool:
        """Whether a marked region is refit now: at once unless its last attempt succeeded, otherwise when
        its data has moved `min_seconds` past that forecast's origin or the forecast is that old."""
        if self.status != "ok" or self.forecast_origin is None or self.last_success_at is None:
            return True
        return ((self.last_observed_at - self.forecast_origin).total_seconds() >= min_seconds
                or (now - self.last_success_at).total_seconds() >= min_seconds)

    @staticmethod
    def mark_update(region_id: str, last_observed_at: datetime) -> dict[str, Any]:
        """The upsert that marks a region as needing a forecast (never moving last_observed_at back)."""
        return {"$set": {"region_id": region_id, "needs_forecast": True},
                "$max": {"last_observed_at": bson_millis(last_observed_at)}}


class ForecastAttempt(BaseModel):
    """What one attempt sets on a region's ForecastState."""

    model_config = ConfigDict(frozen=True)

    status: ForecastStatus
    needs_forecast: bool
    last_attempt_at: datetime
    last_error: str | None = None
    reason: str | None = None
    last_success_at: datetime | None = None
    forecast_origin: datetime | None = None

    @classmethod
    def ok(cls, at: datetime, origin: datetime | None = None) -> "ForecastAttempt":
        """Forecast at `at` from the region's observations up to `origin`."""
        return cls(status="ok", needs_forecast=False, last_attempt_at=at, last_success_at=at, forecast_origin=origin)

    @classmethod
    def skipped(cls, at: datetime, reason: str) -> "ForecastAttempt":
        return cls(status="skipped", needs_forecast=False, last_attempt_at=at, reason=reason)

    @classmethod
    def error(cls, at: datetime, message: str) -> "ForecastAttempt":
        return cls(status="error", needs_forecast=False, last_attempt_at=at, last_error=message)

    @classmethod
    def failed(cls, at: datetime, message: str) -> "ForecastAttempt":
        """The API could not answer: the region stays marked, its last reason and success are kept."""
        return cls(status="failed", needs_forecast=True, last_attempt_at=at, last_error=message)

    def to_update(self) -> dict[str, Any]:
        fields = self.model_dump(exclude={name for name in ("last_success_at", "forecast_origin")
                                          if getattr(self, name) is None})
        if self.status == "failed":
            fields.pop("reason")
        return {"$set": {k: bson_millis(v) if isinstance(v, datetime) else v for k, v in fields.items()}}
