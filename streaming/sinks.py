"""The sinks of a micro-batch, each a small piece fed a plain list of records.

Every MongoDB write is an upsert keyed by a deterministic _id, so replaying a batch (after a
crash, or from earliest with a fresh checkpoint) rewrites the same documents. Errors are not
swallowed: a failing write raises, Spark does not commit the batch and retries it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError
from pymongo.database import Database

from meteoflow.contracts import (
    DAILY_STATS, DEADLETTER_ACTION, FORECAST_RUNS, FORECAST_SKILL, FORECAST_SKILL_BUCKETS, FORECAST_STATE, FORECASTS,
    HOURLY_STATS, OBSERVATIONS, RECENT_OBSERVATIONS, REGION_LATEST, REGION_SERIES, SERIES_HOURS, DeadLetter,
    STORE_PROGRESS, HourlyStats, MongoDocument, Observation, ObservationDocument, ObservationPoint, RegionSeries,
    StoreProgress, doc_id, find_by_ids, hour_floor, hourly_stats, point_key, side_by_side, utc_day, valid_documents,
)
from meteoflow.mongo import is_ferretdb
from meteoflow.settings import Settings
from streaming.records import HOUR, SplitBatch, hour_points, merged_values

if TYPE_CHECKING:
    from streaming.daily import DailyStatsSink  # which imports this module

R = TypeVar("R")
LOG = logging.getLogger(__name__)
DEADLETTER_SEND_TIMEOUT_SECONDS = 30
FILL_CHUNK = 5000  # updates per bulk when fill_observation_days gives old observations their day
DUPLICATE_KEY = 11000
STORED_AT = frozenset({"stored_at"})
COMPUTED_AT = frozenset({"computed_at"})


# Each region's documents by time, unique: collection -> (time field, index name). On MongoDB they
# serve the range reads (a region's history, hours, forecast) and guard (region, time) against a
# second document. FerretDB answers those reads with a pass over the collection whatever its indexes
# (its plans say so on SQLite and on PostgreSQL; the stack adds the GIN indexes that do serve it), and
# every _id here is doc_id(region, time), unique already: there they only cost each insert their
# upkeep (~0.8 of PostgreSQL's ~5 CPU-seconds in a 200-region backlog), so they are not made, and a
# store made with them loses them.
REGION_TIME_INDEXES: dict[str, tuple[str, str]] = {
    OBSERVATIONS: ("observed_at", "region_observed_at"),
    HOURLY_STATS: ("hour", "region_hour"),
    DAILY_STATS: ("day", "region_day"),
    FORECASTS: ("target_time", "region_target_time"),
}


def ensure_indexes(db: Database) -> None:
    """Create the indexes the job relies on (once, at its start); a no-op when they exist."""
    ferretdb = is_ferretdb(db)
    for collection, (field, name) in REGION_TIME_INDEXES.items():
        if not ferretdb:
            db[collection].create_index([("region_id", ASCENDING), (field, ASCENDING)], unique=True, name=name)
        elif name in db[collection].index_information():
            db[collection].drop_index(name)
    if not ferretdb:  # a region's days are read by {region_id, day} (find_days); the stack indexes both on FerretDB
        db[OBSERVATIONS].create_index([("region_id", ASCENDING), ("day", ASCENDING)], name="region_day")
    db[FORECAST_STATE].create_index([("needs_forecast", ASCENDING)], name="needs_forecast")
    # Forecast history and skill (streaming/skill.py): retention deletes runs by run_at; the web app
    # reads a region's runs by time; the skill step reads a region's recent buckets.
    db[FORECAST_RUNS].create_index([("region_id", ASCENDING), ("run_at", ASCENDING)], name="region_run_at")
    db[FORECAST_RUNS].create_index([("run_at", ASCENDING)], name="run_at")
    db[FORECAST_SKILL_BUCKETS].create_index([("region_id", ASCENDING), ("target_time", ASCENDING)],
                                            name="region_target_time")
    db[FORECAST_SKILL].create_index([("region_id", ASCENDING), ("window", ASCENDING)], name="region_window")
    fill_observation_days(db)


def upsert_all(collection, models: list[MongoDocument], ignore: frozenset[str] = frozenset()) -> int:
    """Idempotent write keyed by _id: insert what is new, update what changed, skip the rest.

    Equivalent to one upsert per document, but FerretDB (SQLite) upserts cost ~20 ms each while
    a bulk insert of a thousand documents takes tens of ms; a replay then writes nothing.
    `ignore` names bookkeeping fields (stored_at...) that do not make a document "changed".
    Returns how many documents were written.
    """
    return upsert_documents(collection, [m.to_document() for m in models], ignore)


def upsert_documents(collection, docs: list[dict[str, Any]], ignore: frozenset[str] = frozenset(),
                     existing: dict[Any, dict[str, Any]] | None = None) -> int:
    """upsert_all of documents already built (each with its _id). `existing`: the stored documents of
    those _ids (absent = not stored) when the caller has just read them, so they are not read twice."""
    if not docs:
        return 0
    if existing is None:
        existing = {d["_id"]: d for d in find_by_ids(collection, [d["_id"] for d in docs])}
    new = [d for d in docs if d["_id"] not in existing]
    changed = [d for d in docs if d["_id"] in existing and differs(existing[d["_id"]], d, ignore)]
    if new:
        changed += [new[i] for i in insert_new(collection, new)]  # inserted by someone else meanwhile: update
    if changed:
        collection.bulk_write(
            [UpdateOne({"_id": d["_id"]}, {"$set": {k: v for k, v in d.items() if k != "_id"}}, upsert=True)
             for d in changed],
            ordered=False,
        )
    return len(new) + len(changed)


def insert_or_update(collection, docs: list[dict[str, Any]], ignore: frozenset[str] = frozenset()) -> int:
    """For documents new by construction (an observation, a forecast run): one unordered insert; only
    those whose _id exists already (a replay, a correction) take upsert_documents' compare-and-update
    path. Unlike upsert_all it reads nothing first: in FerretDB each _id read is a pass over the
    collection, which for forecast_runs grows with the retention."""
    stored = insert_new(collection, docs)
    if stored:
        upsert_documents(collection, [docs[i] for i in stored], ignore)
    return len(docs)


def insert_new(collection, docs: list[dict[str, Any]]) -> list[int]:
    """Insert every document in one unordered bulk; the indexes of those whose _id already existed
    (they are left as they were). Any other write error raises."""
    if not docs:
        return []
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        duplicates = sorted(e["index"] for e in errors if e.get("code") == DUPLICATE_KEY
                            and _duplicate_id(e, docs[e["index"]]))
        if len(duplicates) != len(errors):
            raise
        return duplicates
    return []


def _duplicate_id(error: dict[str, Any], doc: dict[str, Any]) -> bool:
    # A duplicate of another unique index (not of _id) is a real conflict, not "already stored".
    key = error.get("keyValue")
    return key is None or set(key) == {"_id"}


def differs(stored: dict[str, Any], doc: dict[str, Any], ignore: frozenset[str]) -> bool:
    return any(stored.get(k) != v for k, v in doc.items() if k not in ignore)


class ObservationSink:
    """Inserts the batch's documents in one unordered bulk; only the ones already stored (a replay,
    a corrected record) take the slower compare-and-update path. Then raises store_progress's
    `stored_at` for observations (StoreProgress: what the health sampler reads)."""

    def __init__(self, db: Database):
        self.collection = db[OBSERVATIONS]
        self.progress = db[STORE_PROGRESS]

    def write(self, observations: list[Observation], now: datetime,
              documents: list[dict[str, Any]] | None = None) -> int:
        """`documents`: the observations' documents if already built (SplitBatch.documents)."""
        if documents is None:
            documents = [ObservationDocument.document(o, now) for o in observations]
        docs = list({d["_id"]: d for d in documents}.values())  # a later duplicate in the batch wins
        insert_or_update(self.collection, docs, ignore=STORED_AT)
        if docs:
            self.progress.update_one({"_id": OBSERVATIONS}, StoreProgress.update(now), upsert=True)
        return len(docs)


def fill_observation_days(db: Database) -> int:
    """Bring a store written before observations carried their `day` up to date, once: give it to every
    observation (and region_latest document) without one, then drop recent_observations, the copy of
    each region's last week those versions read by day instead (a document more per record).
    Returns how many observations were updated.

    Due when recent_observations exists or a region_latest document has no `day` (its region's newest
    observation was stored before it existed): reading region_latest costs nothing, where asking
    observations for a missing `day` is a pass over the whole history."""
    stale = any(not d.get("day") and isinstance(d.get("observed_at"), datetime)  # a damaged one cannot get one
                for d in db[REGION_LATEST].find({}, {"day": 1, "observed_at": 1}))
    if not stale and RECENT_OBSERVATIONS not in db.list_collection_names():
        return 0
    updated = 0
    for collection in (db[OBSERVATIONS], db[REGION_LATEST]):
        ops = [UpdateOne({"_id": d["_id"]}, {"$set": {"day": utc_day(d["observed_at"])}})
               for d in collection.find({"day": None}, {"observed_at": 1}) if isinstance(d.get("observed_at"), datetime)]
        for first in range(0, len(ops), FILL_CHUNK):
            collection.bulk_write(ops[first:first + FILL_CHUNK], ordered=False)
        updated += len(ops) if collection.name == OBSERVATIONS else 0
    db.drop_collection(RECENT_OBSERVATIONS)
    LOG.info("store brought up to date: %d observations given their UTC day, recent_observations dropped", updated)
    return updated


class MergedStatsSink:
    """Statistics per (region, hour or day) kept exact without reading observations back: each
    document keeps the values its figures come from, by instant (point_key); a batch merges its own
    into them (the same instant replaced: a replay or a correction) and recomputes.

    New keys are inserted in one bulk; only keys already stored are read (by _id) and replaced.
    Documents written before the values were kept are recomputed once from the stored observations.
    A subclass says what a key's values are and how figures are built from them."""

    model: type[MongoDocument]
    values_field: str  # the model's field that keeps the values by instant

    def __init__(self, collection: Collection):
        self.collection = collection

    def batch_values(self, observations: list[Observation]) -> dict[tuple[str, datetime], dict[str, Any]]:
        """The batch's values per key, by point_key; a later duplicate wins (Kafka order), as it does
        for the observation documents."""
        raise NotImplementedError

    def build(self, key: tuple[str, datetime], values: dict[str, Any], now: datetime) -> MongoDocument:
        raise NotImplementedError

    def document(self, key: tuple[str, datetime], values: dict[str, Any], now: datetime) -> dict[str, Any]:
        return self.build(key, values, now).to_document()

    def recompute(self, keys: set[tuple[str, datetime]], now: datetime) -> list[MongoDocument]:
        """The keys' figures (with their values) from the stored observations."""
        raise NotImplementedError

    def write(self, observations: list[Observation], now: datetime) -> int:
        return len(self.write_documents(observations, now))

    def write_documents(self, observations: list[Observation], now: datetime) -> list[dict[str, Any]]:
        """Writes the batch's keys; returns their documents as they now stand (over every stored value)."""
        batch = self.batch_values(observations)
        if not batch:
            return []
        keys = list(batch)
        fresh = [self.document(key, batch[key], now) for key in keys]
        stored = insert_new(self.collection, fresh)
        if not stored:
            return fresh
        merged = self._merge({keys[i]: batch[keys[i]] for i in stored}, now)
        already = set(stored)
        return [doc for i, doc in enumerate(fresh) if i not in already] + merged

    def _merge(self, batch: dict[tuple[str, datetime], dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        ids = [doc_id(*key) for key in batch]
        stored = {s.id: s for s in valid_documents(self.model, find_by_ids(self.collection, ids))}
        before = {i: s.to_document() for i, s in stored.items()}  # what is stored now: written only if changed
        legacy = {key for key in batch if getattr(stored.get(doc_id(*key)), self.values_field, None) is None}
        if legacy:
            stored.update({s.id: s for s in self.recompute(legacy, now)})
        docs = [self.build(key, merged_values(stored.get(doc_id(*key)), self.values_field, values), now).to_document()
                for key, values in sorted(batch.items())]
        changed = [d for d in docs if d["_id"] not in before or differs(before[d["_id"]], d, COMPUTED_AT)]
        if changed:
            self.collection.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in changed],
                                       ordered=False)
        return docs


class HourlyStatsSink(MergedStatsSink):
    """min/max/mean/count per (region, hour), each document keeping its temps by instant."""

    model = HourlyStats
    values_field = "temps"

    def __init__(self, db: Database):
        super().__init__(db[HOURLY_STATS])
        self.observations = db[OBSERVATIONS]

    def batch_values(self, observations: list[Observation]) -> dict[tuple[str, datetime], dict[str, float]]:
        return hour_points(observations)

    def build(self, key: tuple[str, datetime], values: dict[str, float], now: datetime) -> HourlyStats:
        return HourlyStats.build(*key, values, now)

    def document(self, key: tuple[str, datetime], values: dict[str, float], now: datetime) -> dict[str, Any]:
        return HourlyStats.document(*key, values, now)  # the hot path: one per new (region, hour)

    def recompute(self, keys: set[tuple[str, datetime]], now: datetime) -> list[HourlyStats]:
        """The hours' stats from the stored observations (the design before temps were kept)."""
        hours = [hour for _, hour in keys]
        stored = self.observations.find(
            {"region_id": {"$in": sorted({region for region, _ in keys})},
             "observed_at": {"$gte": min(hours), "$lt": max(hours) + HOUR}},
            ObservationPoint.projection(),
        )
        return hourly_stats(keys, valid_documents(ObservationPoint, stored), computed_at=now)


class RegionLatestSink:
    """Keeps region_latest: per region, the newest observation document stored (by observed_at;
    among equal instants the later record, as in observations). Read back: one small document per
    region, never the history."""

    def __init__(self, db: Database):
        self.collection = db[REGION_LATEST]

    def write(self, documents: list[dict[str, Any]]) -> int:
        newest = newest_documents(documents)
        if not newest:
            return 0
        found = find_by_ids(self.collection, list(newest), {"observed_at": 1})
        stored = {d["_id"]: d.get("observed_at") for d in found}
        # New regions in one insert (a FerretDB upsert costs ~20 ms each: a backlog's first batch
        # brings every region); the others replaced only if this batch has a newer observation.
        new = [{**doc, "_id": region} for region, doc in newest.items() if region not in stored]
        raced = [new[i]["_id"] for i in insert_new(self.collection, new)]
        ops = [ReplaceOne({"_id": region}, {**doc, "_id": region}, upsert=True) for region, doc in newest.items()
               if region in raced or (region in stored and _not_after(stored[region], doc["observed_at"]))]
        if ops:
            self.collection.bulk_write(ops, ordered=False)
        return len(new) - len(raced) + len(ops)


def newest_documents(documents: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each region's newest observation document (by observed_at; among equal instants the later one,
    as in observations)."""
    newest: dict[str, dict[str, Any]] = {}
    for doc in documents:
        region = doc["region_id"]
        if region not in newest or doc["observed_at"] >= newest[region]["observed_at"]:
            newest[region] = doc
    return newest


class RegionSeriesSink:
    """Keeps region_series (RegionSeries): per region, the mean of each hour of its last SERIES_HOURS,
    taken from the hourly statistics the batch has just merged (each over every stored observation of
    its hour, so a replay writes the same). Reads only the touched regions' documents, by _id.

    A region without one is new (its hours are all in this batch) unless region_latest knows it: data
    stored before this collection existed, whose window is then read once from its hourly statistics,
    by _id. So it runs before RegionLatestSink (which would know the region from this very batch)."""

    def __init__(self, db: Database):
        self.collection = db[REGION_SERIES]
        self.hourly = db[HOURLY_STATS]
        self.latest = db[REGION_LATEST]

    def write(self, hourly: list[dict[str, Any]], documents: list[dict[str, Any]], now: datetime) -> int:
        """`hourly`: the batch's HourlyStats documents as merged; `documents`: its observation documents."""
        hours: dict[str, dict[str, float]] = {}
        for doc in hourly:
            hours.setdefault(doc["region_id"], {})[point_key(doc["hour"])] = RegionSeries.mean(doc["temp_mean"])
        newest = newest_documents(documents)
        regions = sorted(set(hours) & set(newest))
        if not regions:
            return 0
        stored = {s.id: s for s in valid_documents(RegionSeries, find_by_ids(self.collection, regions))}
        before = {region: series.to_document() for region, series in stored.items()}
        known = find_by_ids(self.latest, [r for r in regions if r not in stored], {"observed_at": 1})
        for doc in known:  # a late batch: the region's window ends at its newest stored observation
            if not _not_after(doc.get("observed_at"), newest[doc["_id"]]["observed_at"]):
                newest[doc["_id"]] = {**newest[doc["_id"]], "observed_at": _aware(doc["observed_at"])}
        seeds = self._stored_hours({d["_id"]: newest[d["_id"]]["observed_at"] for d in known})
        docs = [RegionSeries.merged(region, stored.get(region), {**seeds.get(region, {}), **hours[region]},
                                    newest[region], now).to_document() for region in regions]
        new = [d for d in docs if d["_id"] not in before]
        raced = {new[i]["_id"] for i in insert_new(self.collection, new)}
        ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs
               if d["_id"] in raced or (d["_id"] in before and differs(before[d["_id"]], d, COMPUTED_AT))]
        if ops:
            self.collection.bulk_write(ops, ordered=False)
        return len(docs)

    def _stored_hours(self, last: dict[str, datetime]) -> dict[str, dict[str, float]]:
        """The hourly means already stored for each region's window (the SERIES_HOURS before last[region]),
        read region by region: each a few hundred reads by _id, never a pass over hourly_stats."""
        means: dict[str, dict[str, float]] = {}
        for region, when in sorted(last.items()):
            ids = [doc_id(region, hour_floor(when) - timedelta(hours=back)) for back in range(SERIES_HOURS + 1)]
            found = find_by_ids(self.hourly, ids, HourlyStats.summary_projection())
            means[region] = {point_key(s.hour): RegionSeries.mean(s.temp_mean) for s in valid_documents(HourlyStats, found)}
        return means


def _not_after(stored: Any, when: datetime) -> bool:
    """Whether a stored observed_at is not after `when` (a damaged one always is replaced)."""
    if not isinstance(stored, datetime):
        return True
    return _aware(stored) <= when


def _aware(stored: datetime) -> datetime:
    return stored if stored.tzinfo else stored.replace(tzinfo=timezone.utc)


def backfill_region_latest(db: Database) -> int:
    """Fill region_latest from the stored observations when it is empty (data stored before it
    existed): one pass, at the job's start. Returns how many regions it wrote."""
    if db[REGION_LATEST].find_one({}, {"_id": 1}) is not None or db[OBSERVATIONS].find_one({}, {"_id": 1}) is None:
        return 0
    newest: dict[str, dict[str, Any]] = {}
    for doc in valid_documents(ObservationDocument, db[OBSERVATIONS].find({})):
        if doc.region_id not in newest or doc.observed_at >= newest[doc.region_id].observed_at:
            newest[doc.region_id] = doc
    return RegionLatestSink(db).write([d.to_document() for d in newest.values()])


class DeadLetterSink:
    """Publishes rejected records; waits for every ack and raises if one fails, so the batch
    is retried rather than losing a record."""

    def __init__(self, settings: Settings, log: logging.Logger, producer=None,
                 timeout: float = DEADLETTER_SEND_TIMEOUT_SECONDS):
        self.settings = settings
        self.log = log
        self._producer = producer
        self.timeout = timeout

    @property
    def producer(self):
        if self._producer is None:
            from meteoflow.kafka import make_producer

            self._producer = make_producer(self.settings, client_id="streaming-deadletter",
                                           max_block_ms=int(self.timeout * 1000))
        return self._producer

    def write(self, dead_letters: Iterable[DeadLetter]) -> int:
        dead_letters = list(dead_letters)
        if not dead_letters:
            return 0
        futures = [
            self.producer.send(self.settings.topic_deadletter,
                               key=dl.key.encode() if dl.key is not None else None, value=dl.to_message())
            for dl in dead_letters
        ]
        self.producer.flush(timeout=self.timeout)
        for future in futures:
            future.get(timeout=self.timeout)  # raises KafkaError if not acknowledged
        for dl in dead_letters:
            self.log.warning(
                "dead-lettered %s[%s]@%s: %s", dl.source_topic, dl.source_partition, dl.source_offset, dl.reason,
                extra={"fields": {"event.action": DEADLETTER_ACTION, "meteoflow.deadletter": {
                    "reason": dl.reason, "source_topic": dl.source_topic, "source_partition": dl.source_partition,
                    "source_offset": dl.source_offset, "key": dl.key}}},
            )
        return len(dead_letters)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


@dataclass(frozen=True)
class SinkCounts:
    dead_letters: int
    stored: int
    stats_upserted: int


@dataclass(frozen=True)
class BatchSinks:
    """Where a split batch goes, in this order: the one list of write steps, run by the driver
    (streaming/job.py) on a whole micro-batch and by each executor (streaming/partitions.py) on its
    partition. Daily statistics and region_latest are optional for callers that keep only the core
    sinks (some unit tests)."""

    observations: ObservationSink
    stats: HourlyStatsSink
    deadletters: DeadLetterSink
    daily: DailyStatsSink | None = None
    latest: RegionLatestSink | None = None
    series: RegionSeriesSink | None = None

    def write(self, split: SplitBatch, now: datetime, watch: "Stopwatch") -> SinkCounts:
        """Writes every step. The dead letters first; then three chains side by side, each step after
        the one it needs: observations; hourly stats -> region series -> region_latest; daily stats.
        The store works on several at once instead of waiting for each in turn (it leaves a core idle
        otherwise); a failure in any fails the batch, which is replayed (every write is idempotent).
        Each step's own time goes to `watch`, and the chains' together as "writes"."""
        dead_letters = self.deadletters.write(split.dead_letters)
        watch.lap("deadletters")

        def hourly_chain() -> list[dict[str, Any]]:
            hourly = watch.timed("stats", lambda: self.stats.write_documents(split.observations, now))
            if self.series is not None:  # from the hours just merged; before region_latest (RegionSeriesSink)
                watch.timed("series", lambda: self.series.write(hourly, split.documents, now))
            if self.latest is not None:
                watch.timed("latest", lambda: self.latest.write(split.documents))
            return hourly

        chains = [lambda: watch.timed("observations", lambda: self.observations.write(
            split.observations, now, split.documents)), hourly_chain]
        if self.daily is not None:  # streaming/daily.py: the touched (region, day) keys
            chains.append(lambda: watch.timed("daily", lambda: self.daily.write(split.observations, now)))
        stored, hourly, *_ = side_by_side(*chains)
        watch.lap("writes")
        return SinkCounts(dead_letters, stored, len(hourly))


class Stopwatch:
    """A batch's timings in ms: `lap(name)` the time since the previous lap, `timed(name, call)` one
    call's own (steps that run side by side each get theirs)."""

    def __init__(self, durations: dict[str, float]):
        self.durations = durations
        self.start = time.perf_counter()
        self._last = self.start

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.durations[name] = round((now - self._last) * 1000, 1)
        self._last = now

    def timed(self, name: str, call: Callable[[], R]) -> R:
        began = time.perf_counter()
        try:
            return call()
        finally:
            self.durations[name] = round((time.perf_counter() - began) * 1000, 1)

    def total(self) -> None:
        self.durations["total"] = round((time.perf_counter() - self.start) * 1000, 1)
