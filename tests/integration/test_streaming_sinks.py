"""The streaming sinks against the real FerretDB and Kafka, without Spark (fast)."""

import json
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from pymongo.errors import DuplicateKeyError

from meteoflow.contracts import (
    DAILY_STATS, DailyPoint, DailyStats, FORECAST_RUNS, FORECAST_STATE, FORECASTS, HOURLY_STATS, OBSERVATIONS, RECENT_HOURS, RECENT_OBSERVATIONS, REGION_LATEST,
    REGION_SERIES, STORE_PROGRESS, DeadLetter, ForecastDocument, ForecastState, ObservationDocument, RegionLatest, RegionSeries, doc_id,
    hour_floor, point_key, utc_day,
)
from kafka.errors import KafkaError

from meteoflow.kafka import make_consumer, make_producer
from meteoflow.mongo import database, is_ferretdb, make_mongo_client
from streaming.forecasts import ForecastRefresher
from streaming.records import SplitBatch, hourly_means, latest_per_region, observation_documents
from streaming.sinks import DeadLetterSink, HourlyStatsSink, ObservationSink, RegionLatestSink, ensure_indexes
from streaming.sinks import REGION_TIME_INDEXES
from streaming.sinks import fill_observation_days
from tests.fakes.observations import recompute_hourly_stats, simulated_observations, stored_hourly_stats
from tests.fakes.forecast_server import FakeForecastServer

pytestmark = pytest.mark.integration
NOW = datetime.now(timezone.utc)
log = logging.getLogger("test-streaming")


@pytest.fixture
def db(isolated):
    client = make_mongo_client(isolated)
    db = database(isolated, client)
    ensure_indexes(db)
    ensure_indexes(db)  # idempotent
    yield db
    client.drop_database(isolated.mongo_db)
    client.close()


def test_observations_and_stats_are_idempotent_and_unique(db):
    obs = simulated_observations(regions=3, hours=5, per_hour=4)
    sink, stats = ObservationSink(db), HourlyStatsSink(db)
    for _ in range(2):  # a replay rewrites the same documents
        assert sink.write(obs, NOW) == len(obs)
        assert stats.write(obs, NOW) == 15
    assert db[OBSERVATIONS].count_documents({}) == len(obs)
    assert stored_hourly_stats(db) == recompute_hourly_stats(obs)
    doc = ObservationDocument.from_document(
        db[OBSERVATIONS].find_one({"_id": doc_id(obs[0].region_id, obs[0].observed_at)}))
    assert doc.observation() == obs[0] and doc.stored_at == NOW.replace(microsecond=NOW.microsecond // 1000 * 1000)
    with pytest.raises(DuplicateKeyError):  # (region, observed_at) is unique by its _id
        db[OBSERVATIONS].insert_one({"_id": doc_id(obs[0].region_id, obs[0].observed_at), "region_id": "x"})


def test_on_ferretdb_the_region_time_indexes_are_not_kept_as_they_serve_no_read_there(db):
    """FerretDB answers a region's range read with a pass whatever the indexes (checked in its plan), so
    ensure_indexes does not make the (region, time) ones, and drops them from a store made with them."""
    assert is_ferretdb(db)
    for collection, (field, name) in REGION_TIME_INDEXES.items():
        assert name not in db[collection].index_information()
        db[collection].create_index([("region_id", 1), (field, 1)], unique=True, name=name)  # an older store
        db[collection].insert_one({"_id": doc_id("dakar", NOW), "region_id": "dakar", field: NOW})
        query = {"find": collection, "filter": {"region_id": "dakar", field: {"$gte": NOW - timedelta(days=1)}}}
        plan = json.dumps(db.command("explain", query, verbosity="queryPlanner")["queryPlanner"])
        used = re.findall(r'"Index Name": "([^"]+)"', plan)  # PostgreSQL's plan; SQLite's says USING INDEX
        assert all(index.endswith("_gin") for index in used) and "USING INDEX" not in plan, plan
    ensure_indexes(db)
    for collection, (_, name) in REGION_TIME_INDEXES.items():
        assert name not in db[collection].index_information()
        assert db[collection].count_documents({}) == 1


def test_a_corrected_record_replaces_the_stored_one_and_its_hour_is_recomputed(db):
    obs = simulated_observations(regions=2, hours=2, per_hour=2)
    ObservationSink(db).write(obs, NOW)
    HourlyStatsSink(db).write(obs, NOW)
    corrected = obs[0].model_copy(update={"temp": obs[0].temp + 10})
    ObservationSink(db).write([corrected], NOW)
    HourlyStatsSink(db).write([corrected], NOW)
    assert db[OBSERVATIONS].count_documents({}) == len(obs)
    assert db[OBSERVATIONS].find_one({"_id": doc_id(obs[0].region_id, obs[0].observed_at)})["temp"] == corrected.temp
    assert stored_hourly_stats(db) == recompute_hourly_stats([corrected] + obs[1:])


def test_stats_of_a_partial_batch_cover_everything_stored_for_that_hour(db):
    obs = simulated_observations(regions=1, hours=2, per_hour=4)
    ObservationSink(db).write(obs[:5], NOW)
    HourlyStatsSink(db).write(obs[:5], NOW)
    ObservationSink(db).write(obs[5:], NOW)  # the second half of hour 2 arrives later
    HourlyStatsSink(db).write(obs[5:], NOW)
    assert stored_hourly_stats(db) == recompute_hourly_stats(obs)


def test_forecasts_survive_an_api_outage_and_catch_up(db, isolated):
    obs = simulated_observations(regions=3, hours=30, per_hour=1)
    short = simulated_observations(regions=4, hours=3, per_hour=1)[3::4]  # kaolack: 3 hours only
    ObservationSink(db).write(obs + short, NOW)
    with FakeForecastServer() as api:
        settings = isolated.model_copy(update={"forecast_api_url_override": api.url, "forecast_horizon_hours": 6})
        refresher = ForecastRefresher(db, settings)
        refresher.mark(latest_per_region(obs + short))
        api.set_mode("fail")
        outcome = refresher.refresh()
        assert sorted(outcome.failed) == ["dakar", "saint-louis", "thies"] and "HTTP 500" in outcome.failed["dakar"]
        # Too little history for the model: a persistence forecast, labelled, served even while the API is down.
        assert outcome.ok == ["kaolack"] and not outcome.skipped
        assert {f["model"] for f in db[FORECASTS].find()} == {"persistence"}
        assert db[FORECASTS].count_documents({"region_id": "kaolack"}) == 6
        state = {s.id: s for s in map(ForecastState.from_document, db[FORECAST_STATE].find())}
        assert state["dakar"].needs_forecast is True and state["dakar"].status == "failed"
        assert state["kaolack"].needs_forecast is False and state["kaolack"].status == "ok"

        # In back-off: a batch does not wait on the API again, the regions stay marked for the timer.
        assert refresher.refresh().deferred == 3 and len(api.requests) == 1

        api.set_mode("ok")
        outcome = refresher.refresh(force=True)  # what the timer does: no new input needed
        assert sorted(outcome.ok) == ["dakar", "saint-louis", "thies"] and not outcome.skipped
        assert len(api.requests) == 2  # one call per refresh, all regions together
    last = max(o.observed_at for o in obs)
    stored = list(db[FORECASTS].find({"region_id": {"$ne": "kaolack"}}))
    assert len(stored) == 3 * 6 and {f["model"] for f in stored} == {"prophet"}
    for f in map(ForecastDocument.from_document, stored):
        assert f.target_time > last and f.yhat_lower <= f.yhat <= f.yhat_upper and f.horizon_hours == 6
    state = ForecastState.from_document(db[FORECAST_STATE].find_one({"_id": "dakar"}))
    assert (state.status, state.last_error, state.last_success_at) == ("ok", None, stored[0]["model_run_at"])
    assert db[FORECAST_STATE].count_documents({"needs_forecast": True}) == 0
    assert refresher.refresh().attempted is False  # nothing left to do

    # Three hours later: the new run replaces the region's forecasts, none left behind in the past.
    later = simulated_observations(regions=1, hours=3, per_hour=1, end=last + timedelta(hours=4))
    ObservationSink(db).write(later, NOW)
    with FakeForecastServer() as api:
        refresher = ForecastRefresher(db, settings.model_copy(update={"forecast_api_url_override": api.url}))
        refresher.mark(latest_per_region(later))
        assert refresher.refresh().ok == ["dakar"]
    dakar = list(db[FORECASTS].find({"region_id": "dakar"}))
    assert len(dakar) == 6 and all(f["target_time"] > last + timedelta(hours=3) for f in dakar)
    assert db[FORECASTS].count_documents({}) == 4 * 6
    assert db[FORECAST_RUNS].count_documents({}) == 5  # kaolack's, the three of the catch-up, dakar's new one


def test_a_region_fed_every_few_seconds_is_refit_once_per_interval(db, isolated):
    # The refit bound (forecast_refit_min_seconds): new observations seconds apart leave the region
    # marked, without asking the API, until its data or its forecast is a whole interval older.
    obs = simulated_observations(regions=1, hours=30, per_hour=1)
    ObservationSink(db).write(obs, NOW)
    last = max(o.observed_at for o in obs)
    clock = [NOW]
    with FakeForecastServer() as api:
        settings = isolated.model_copy(update={"forecast_api_url_override": api.url, "forecast_horizon_hours": 6,
                                               "forecast_refit_min_seconds": 60.0})
        refresher = ForecastRefresher(db, settings, clock=lambda: clock[0])
        refresher.mark(latest_per_region(obs))
        assert refresher.refresh().ok == ["dakar"] and len(api.requests) == 1
        state = ForecastState.from_document(db[FORECAST_STATE].find_one({"_id": "dakar"}))
        assert state.forecast_origin == last

        def observe(seconds_after_last: float) -> None:
            new = obs[-1].model_copy(update={"observed_at": last + timedelta(seconds=seconds_after_last)})
            ObservationSink(db).write([new], NOW)
            refresher.mark(latest_per_region([new]))

        observe(10)
        clock[0] += timedelta(seconds=30)
        outcome = refresher.refresh()
        assert (outcome.attempted, outcome.deferred, len(api.requests)) == (False, 1, 1)
        assert db[FORECAST_STATE].count_documents({"needs_forecast": True}) == 1  # still marked: not lost
        clock[0] += timedelta(seconds=30)  # the forecast is now a whole interval old: refit
        assert refresher.refresh().ok == ["dakar"] and len(api.requests) == 2
        observe(10 + 60)  # a whole interval of new data: refit at once, whatever the clock says
        assert refresher.refresh().ok == ["dakar"] and len(api.requests) == 3
        observe(10 + 61)
        assert refresher.refresh().deferred == 1 and refresher.refresh(force=True).ok == ["dakar"]
        assert len(api.requests) == 4 and db[FORECAST_STATE].count_documents({"needs_forecast": True}) == 0


def test_dead_letters_reach_the_topic(isolated):
    sink = DeadLetterSink(isolated, log)
    dl = DeadLetter.build(b"{oops", "not JSON: Expecting property name", "streaming", source_topic="t",
                          source_partition=0, source_offset=7, key="dakar")
    try:
        assert sink.write([dl]) == 1
    finally:
        sink.close()
    consumer = make_consumer(isolated, None, isolated.topic_deadletter, consumer_timeout_ms=5000)
    values = [json.loads(m.value) for _, m in zip(range(1), consumer)]
    consumer.close()
    assert [(v["payload"], v["reason"], v["source_offset"], v["key"]) for v in values] == [
        ("{oops", "not JSON: Expecting property name", 7, "dakar")]


def test_dead_letters_of_hostile_1_mib_values_fit_in_the_topic(isolated):
    """A 1 MiB value Kafka accepted (text of quotes, bytes that are not UTF-8) yields a dead letter
    that the real broker takes too: before, a 400 KB binary value became a 1.7 MB dead letter."""
    from meteoflow.kafka import KafkaRecord
    from streaming.records import split_batch

    hostile = [b'"' * (1024 * 1024 - 200), bytes([0xff, 0xfe]) * (512 * 1024 - 100), b"[" * (1024 * 1024 - 200)]
    producer = make_producer(isolated, "test-hostile")
    try:
        metas = [producer.send(isolated.topic_observations, value=v).get(timeout=30) for v in hostile]
    finally:
        producer.close(timeout=5)
    split = split_batch([KafkaRecord(isolated.topic_observations, m.partition, m.offset, None, v)
                         for v, m in zip(hostile, metas)])
    assert len(split.dead_letters) == 3 and not split.observations
    sink = DeadLetterSink(isolated, log)
    try:
        assert sink.write(split.dead_letters) == 3
    finally:
        sink.close()
    consumer = make_consumer(isolated, None, isolated.topic_deadletter, consumer_timeout_ms=5000)
    letters = [(json.loads(m.value)["payload_size"], len(m.value)) for _, m in zip(range(3), consumer)]
    consumer.close()
    assert sorted(original for original, _ in letters) == sorted(len(v) for v in hostile)
    assert max(size for _, size in letters) < 512 * 1024, letters


def test_a_dead_letter_that_cannot_be_written_raises(isolated):
    # The real client refusing the record (too large for this producer) stands for any failed send.
    producer = make_producer(isolated, "test-deadletter", max_request_size=64)
    dl = DeadLetter.build(b"x" * 200, "not JSON", "streaming")
    try:
        with pytest.raises(KafkaError):
            DeadLetterSink(isolated, log, producer=producer, timeout=5).write([dl])
    finally:
        producer.close(timeout=5)


def test_a_malformed_stored_document_costs_only_itself(db, isolated, caplog):
    """A hand-written observation and region state the job cannot read are skipped and logged;
    the statistics and forecasts of everything else are still written."""
    obs = simulated_observations(regions=1, hours=30, per_hour=1)
    ObservationSink(db).write(obs, NOW)
    last = obs[-1].observed_at
    broken_at = last.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=59, seconds=59)
    db[OBSERVATIONS].insert_one({"_id": "dakar|broken", "region_id": "dakar", "temp": "hot",
                                 "observed_at": broken_at, "day": utc_day(broken_at)})  # read by its day
    db[FORECAST_STATE].insert_one({"_id": "ghost", "region_id": "ghost", "needs_forecast": True,
                                   "last_observed_at": "yesterday"})
    with FakeForecastServer() as api, caplog.at_level(logging.WARNING):
        settings = isolated.model_copy(update={"forecast_api_url_override": api.url, "forecast_horizon_hours": 6})
        assert HourlyStatsSink(db).write(obs[-1:], NOW) == 1
        refresher = ForecastRefresher(db, settings)
        refresher.mark(latest_per_region(obs))
        outcome = refresher.refresh()
    assert outcome.ok == ["dakar"] and not (outcome.failed or outcome.errors or outcome.skipped)
    assert stored_hourly_stats(db) == recompute_hourly_stats(obs[-1:])  # the hour without the broken one
    assert db[FORECASTS].count_documents({"region_id": "dakar"}) == 6
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "observations document _id='dakar|broken': temp:" in warnings
    assert "forecast_state document _id='ghost': last_observed_at:" in warnings


def test_each_batch_raises_store_progress_which_the_health_sampler_reads_instead_of_sorting_observations(db):
    from elk.health.sources import MongoHealthSource

    def millis(when):  # as BSON keeps it
        return when.replace(microsecond=when.microsecond // 1000 * 1000)

    source = MongoHealthSource(db)
    obs = simulated_observations(regions=2, hours=3, per_hour=1)
    db[OBSERVATIONS].insert_one({"_id": "old|1", "region_id": "old", "observed_at": NOW, "stored_at": NOW})
    assert source.newest_observation_at() == millis(NOW)  # no mark yet (an older job's store): sorted
    stored_at = NOW + timedelta(minutes=5)
    ObservationSink(db).write(obs, stored_at)
    marked = millis(stored_at)
    assert db[STORE_PROGRESS].find_one({"_id": OBSERVATIONS})["stored_at"] == marked
    ObservationSink(db).write(obs[:1], NOW)  # an executor's older batch time (written side by side) does not lower it
    assert source.newest_observation_at() == marked
    ObservationSink(db).write([], NOW + timedelta(hours=1))  # an empty batch stored nothing: no mark
    assert source.newest_observation_at() == marked
    # read from that one document: the hand-written observation stored later is not seen
    db[OBSERVATIONS].insert_one({"_id": "old|2", "region_id": "old", "observed_at": NOW,
                                 "stored_at": NOW + timedelta(hours=2)})
    assert source.newest_observation_at() == marked


def test_region_latest_keeps_each_regions_newest_observation_whatever_the_batch_order(db):
    obs = simulated_observations(regions=3, hours=4, per_hour=2)
    newest = {o.region_id: o for o in sorted(obs, key=lambda o: o.observed_at)}
    sink = RegionLatestSink(db)
    late, early = obs[len(obs) // 2:], obs[:len(obs) // 2]
    for batch in (late, early, late):  # an older batch after a newer one, then a replay
        sink.write([ObservationDocument.document(o, NOW) for o in batch])
    stored = {d["_id"]: RegionLatest.from_document(d) for d in db[REGION_LATEST].find()}
    assert {r: d.observation() for r, d in stored.items()} == newest
    corrected = newest["dakar"].model_copy(update={"temp": newest["dakar"].temp + 3})  # same instant, later record
    db[REGION_LATEST].update_one({"_id": "thies"}, {"$set": {"observed_at": "damaged"}})
    sink.write([ObservationDocument.document(o, NOW) for o in (corrected, newest["thies"])])
    assert RegionLatest.from_document(db[REGION_LATEST].find_one({"_id": "dakar"})).temp == corrected.temp
    assert RegionLatest.from_document(db[REGION_LATEST].find_one({"_id": "thies"})).observation() == newest["thies"]


def test_hourly_stats_of_documents_written_before_temps_were_kept_are_recomputed_once(db):
    obs = simulated_observations(regions=1, hours=2, per_hour=4)
    ObservationSink(db).write(obs, NOW)
    HourlyStatsSink(db).write(obs[:4], NOW)
    db[HOURLY_STATS].update_many({}, {"$unset": {"temps": ""}})  # as an older version wrote them
    HourlyStatsSink(db).write(obs[4:], NOW)
    HourlyStatsSink(db).write(obs[3:5], NOW)  # touches the legacy hour: recomputed from observations
    assert stored_hourly_stats(db) == recompute_hourly_stats(obs)
    assert all(isinstance(d.get("temps"), dict) for d in db[HOURLY_STATS].find())


def test_a_store_written_before_daily_statistics_gets_its_recent_whole_days_at_the_jobs_start(db):
    from streaming.daily import SEED_SPAN, DailyStatsSink, daily_stats, day_floor, seed_daily_stats, touched_days

    obs = simulated_observations(regions=2, hours=24 * 10, per_hour=2)
    docs = [d.to_document() for d in observation_documents(obs, NOW)]
    sink = ObservationSink(db)
    sink.write(obs, NOW, docs)
    RegionLatestSink(db).write(docs)
    newest = max(o.observed_at for o in obs)
    first_whole_day = day_floor(newest - SEED_SPAN) + timedelta(days=1)
    kept = [DailyPoint.from_document(d) for d in docs if d["observed_at"] >= first_whole_day]
    want = {d.id: d.model_dump(exclude={"computed_at"}) for d in daily_stats(touched_days(kept), kept, NOW)}

    assert seed_daily_stats(db) == len(want) == 2 * 8
    got = {d["_id"]: DailyStats.from_document(d).model_dump(exclude={"computed_at"}) for d in db[DAILY_STATS].find()}
    assert got == want
    assert seed_daily_stats(db) == 0  # once: the job keeps them from then on

    # The next batch merges into the seeded day: still every observation of it, none read back.
    later = simulated_observations(regions=2, hours=2, per_hour=2, end=newest + timedelta(hours=2))
    sink.write(later, NOW)
    DailyStatsSink(db).write(later, NOW)
    today = [DailyPoint.from_document(d) for d in db[OBSERVATIONS].find({"observed_at": {"$gte": day_floor(newest)}})]
    for stats in daily_stats(touched_days(later), today, NOW):
        assert DailyStats.from_document(db[DAILY_STATS].find_one({"_id": stats.id})).model_dump(
            exclude={"computed_at"}) == stats.model_dump(exclude={"computed_at"})


def test_observations_carry_their_day_and_the_window_read_by_day_equals_the_range_reads(db, isolated):
    from webapp.store import Store

    obs = simulated_observations(regions=2, hours=24 * 9, per_hour=2)
    sink, stats, latest = ObservationSink(db), HourlyStatsSink(db), RegionLatestSink(db)
    docs = [d.to_document() for d in observation_documents(obs, NOW)]
    sink.write(obs, NOW, docs)
    stats.write(obs, NOW)
    latest.write(docs)
    corrected = obs[-1].model_copy(update={"temp": obs[-1].temp + 3.5})
    sink.write([corrected], NOW)
    stats.write([corrected], NOW)
    assert db[OBSERVATIONS].count_documents({}) == len(obs)
    assert db[OBSERVATIONS].find_one({"_id": doc_id(corrected.region_id, corrected.observed_at)})["temp"] == \
        corrected.temp
    # Each document carries its UTC day, which the readers ask for by equality (see ObservationDocument);
    # region_latest's copies too (fill_observation_days looks there).
    assert all(d["day"] == utc_day(d["observed_at"]) for d in db[OBSERVATIONS].find())
    assert all(d["day"] == utc_day(d["observed_at"]) for d in db[REGION_LATEST].find())
    newest = max(o.observed_at for o in obs)

    # The web app's window read by day equals the range queries over the whole history; so it does for
    # a store written before `day` existed, before and after the job fills it.
    store = Store(isolated)
    try:
        region = obs[0].region_id

        def windows_equal_the_history():
            for hours in (24, 48, RECENT_HOURS):
                start, end = newest - timedelta(hours=hours, minutes=20), newest
                recent, hourly = store.recent_window(region, start, end)
                assert recent and [d.id for d in recent] == [d.id for d in store.observations(region, start, end)]
                full = {h.id: (h.temp_min, h.temp_max, round(h.temp_mean, 9), h.count)
                        for h in store.hourly_stats(region, start, end)}
                assert {h.id: (h.temp_min, h.temp_max, round(h.temp_mean, 9), h.count) for h in hourly} == full

        windows_equal_the_history()
        assert fill_observation_days(db) == 0  # nothing to do: region_latest has its days, no old copy
        # Nor when a damaged region_latest document (which can never get a day) is all that lacks one: the
        # pass over the history is not made (it would give this hand-written observation its day).
        db[REGION_LATEST].insert_one({"_id": "ghost", "observed_at": "yesterday"})
        db[OBSERVATIONS].insert_one({**{k: v for k, v in docs[0].items() if k != "day"}, "_id": "ghost|1"})
        assert fill_observation_days(db) == 0 and "day" not in db[OBSERVATIONS].find_one({"_id": "ghost|1"})
        db[REGION_LATEST].delete_one({"_id": "ghost"})
        db[OBSERVATIONS].delete_one({"_id": "ghost|1"})
        for collection in (OBSERVATIONS, REGION_LATEST):
            db[collection].update_many({}, {"$unset": {"day": ""}})
        windows_equal_the_history()
        assert fill_observation_days(db) == len(obs) and fill_observation_days(db) == 0
        assert all(d["day"] == utc_day(d["observed_at"]) for d in db[OBSERVATIONS].find())
        assert all(d["day"] == utc_day(d["observed_at"]) for d in db[REGION_LATEST].find())
        windows_equal_the_history()
    finally:
        store.close()

    # A store with the week's copy the earlier versions kept loses it (the observations have their days).
    db[RECENT_OBSERVATIONS].insert_many([{k: v for k, v in d.items() if k != "day"} for d in docs[:5]])
    assert fill_observation_days(db) == 0
    assert RECENT_OBSERVATIONS not in db.list_collection_names()
    assert db[OBSERVATIONS].count_documents({}) == len(obs)


def test_days_stored_before_their_readings_were_kept_are_recomputed_once_from_their_observations(db):
    from streaming.daily import DailyStatsSink, daily_stats, day_floor, touched_days

    def key_of(o):
        return o.region_id, day_floor(o.observed_at)

    obs = simulated_observations(regions=2, hours=24 * 10, per_hour=2)
    sink, latest = ObservationSink(db), RegionLatestSink(db)
    docs = [d.to_document() for d in observation_documents(obs, NOW)]
    sink.write(obs, NOW, docs)
    latest.write(docs)
    newest = max(o.observed_at for o in obs)

    # A live batch's days and an old day's, each read by (region, day), both exact.
    daily = DailyStatsSink(db)
    live = [o for o in obs if o.observed_at >= newest - timedelta(hours=3)]
    old = [o for o in obs if o.observed_at <= min(o.observed_at for o in obs) + timedelta(hours=3)]
    for batch in (live, old):
        keys = touched_days(batch)
        daily.write(list({key_of(o): o for o in batch}.values()), NOW)  # an older version's document
        db[DAILY_STATS].update_many({}, {"$unset": {"readings": ""}})  # of each day: one reading, none kept
        daily.write(batch, NOW)
        want = {d.id: d.model_dump(exclude={"computed_at"})
                for d in daily_stats(keys, [DailyPoint.from_document(d) for d in docs], NOW)}
        got = {d["_id"]: DailyStats.from_document(d).model_dump(exclude={"computed_at"})
               for d in db[DAILY_STATS].find({"_id": {"$in": list(want)}})}
        assert got == want and len(want) == len(keys)


def write_batch(db, obs, with_series=True):
    """One batch through the driver path's sinks (BatchSinks), as the job writes it."""
    from streaming.sinks import BatchSinks, RegionSeriesSink, Stopwatch

    class NoDeadLetters:
        def write(self, dead_letters):
            return 0

    sinks = BatchSinks(ObservationSink(db), HourlyStatsSink(db), NoDeadLetters(), latest=RegionLatestSink(db),
                       series=RegionSeriesSink(db) if with_series else None)
    split = SplitBatch(observations=obs, documents=[d.to_document() for d in observation_documents(obs, NOW)])
    return sinks.write(split, NOW, Stopwatch({}))


def stored_series(db) -> dict[str, RegionSeries]:
    return {s.id: s for s in map(RegionSeries.from_document, db[REGION_SERIES].find())}


def test_each_regions_series_holds_the_mean_of_every_stored_hour_over_split_batches_and_replays(db):
    obs = simulated_observations(regions=3, hours=10, per_hour=4)
    first, second = obs[: len(obs) // 2 + 6], obs[len(obs) // 2 + 6:]  # an hour split between the batches
    write_batch(db, first)
    write_batch(db, second)
    series = stored_series(db)
    stats = {d["_id"]: d for d in db[HOURLY_STATS].find()}
    assert sorted(series) == ["dakar", "saint-louis", "thies"]
    for region, s in series.items():
        assert s.hours == {point_key(d["hour"].replace(tzinfo=timezone.utc)): round(d["temp_mean"], 4)
                           for d in stats.values() if d["region_id"] == region}
        assert len(s.hours) == 10 and s.last_observed_at == max(o.observed_at for o in obs if o.region_id == region)
    written = {d["_id"]: d["computed_at"] for d in db[REGION_SERIES].find()}
    write_batch(db, second)  # a replay after a crash: the same series, nothing rewritten
    assert stored_series(db) == series
    assert {d["_id"]: d["computed_at"] for d in db[REGION_SERIES].find()} == written


def test_a_region_stored_before_series_were_kept_gets_its_window_from_its_hourly_statistics(db):
    obs = simulated_observations(regions=2, hours=30, per_hour=2)
    write_batch(db, obs, with_series=False)  # an older version of the job: no region_series
    newest = max(o.observed_at for o in obs)
    later = simulated_observations(regions=3, hours=1, per_hour=2, end=newest + timedelta(hours=1))
    write_batch(db, later)
    series = stored_series(db)
    assert len(series["dakar"].hours) == len(series["thies"].hours) == 31  # the 30 stored hours and the new one
    # a new region: all it has is in the batch (nothing read back for it)
    assert series["saint-louis"].hours.keys() == {point_key(hour_floor(o.observed_at))
                                                  for o in later if o.region_id == "saint-louis"}
    expected = {point_key(d["hour"].replace(tzinfo=timezone.utc)): round(d["temp_mean"], 4)
                for d in db[HOURLY_STATS].find({"region_id": "dakar"})}
    assert series["dakar"].hours == expected

    # A late batch (hours older than what is stored) for such a region: its window still ends at the
    # region's newest stored observation, every stored hour of it kept.
    db[REGION_SERIES].delete_one({"_id": "thies"})
    thies = [o for o in obs if o.region_id == "thies"]
    late = [thies[3].model_copy(update={"temp": thies[3].temp + 1})]
    write_batch(db, late)
    kept = stored_series(db)["thies"]
    assert kept.last_observed_at == max(o.observed_at for o in later if o.region_id == "thies")
    assert kept.hours == {point_key(d["hour"].replace(tzinfo=timezone.utc)): round(d["temp_mean"], 4)
                          for d in db[HOURLY_STATS].find({"region_id": "thies"})}
    assert len(kept.hours) == 31

    # A damaged series (hostile stored content) costs only itself: the next batch writes it whole again.
    db[REGION_SERIES].update_one({"_id": "thies"}, {"$set": {"hours": {"not-a-time": "warm"}, "lat": 1e308}})
    write_batch(db, late)
    assert stored_series(db)["thies"] == kept.model_copy(update={"computed_at": stored_series(db)["thies"].computed_at})


def test_the_forecast_step_reads_each_regions_history_from_its_series_and_falls_back_to_observations(db, isolated):
    obs = simulated_observations(regions=3, hours=30, per_hour=4)
    write_batch(db, obs)
    refresher = ForecastRefresher(db, isolated)
    pending = latest_per_region(obs)
    from_series = refresher._histories(pending)
    from_observations = refresher._observed_histories(pending)
    assert [h.region_id for h in from_series] == ["dakar", "saint-louis", "thies"]
    for got, want in zip(from_series, from_observations):
        assert (got.region_id, got.lat, got.lon, got.last_observed_at) == (
            want.region_id, want.lat, want.lon, want.last_observed_at)
        assert hourly_means(got.points) == pytest.approx(hourly_means(want.points), abs=1e-4)
        assert len(hourly_means(got.points)) == 30

    # A series that does not reach the marked observation (here: damaged to look older), or none at all,
    # and the observations are read instead: same history.
    db[REGION_SERIES].update_one({"_id": "dakar"}, {"$set": {"last_observed_at": NOW - timedelta(days=30)}})
    db[REGION_SERIES].delete_one({"_id": "thies"})
    again = refresher._histories(pending)
    assert [hourly_means(h.points) for h in again] == [hourly_means(h.points) for h in
                                                        [from_observations[0], from_series[1], from_observations[2]]]
    db[REGION_SERIES].update_one({"_id": "saint-louis"}, {"$set": {"hours": [1, 2, 3]}})  # damaged: not a mapping
    assert hourly_means(refresher._histories(pending)[1].points) == hourly_means(from_observations[1].points)
