"""FerretDB on its PostgreSQL backend, both started by the stack code: PostgreSQL from Debian's
packages (unpacked in the cache), FerretDB built as for SQLite. When the test stack already runs
on PostgreSQL (METEOFLOW_STORE_BACKEND=postgresql) its servers are used; otherwise this module
starts its own pair beside it, on the test PostgreSQL port and the FerretDB port after the stack's.

The stack indexes every FerretDB table by _id (a GIN index FerretDB does not make; without it each
read by _id is a pass over the collection): checked in PostgreSQL's own plan, which FerretDB's
`explain` returns."""

from __future__ import annotations

import shutil
import uuid
from typing import Any

import pymongo
import pytest

from meteoflow.contracts import HOURLY_STATS, OBSERVATIONS, find_days
from meteoflow.mongo import make_mongo_client
from stack.servers import FerretDBServer, PostgreSQLServer


@pytest.fixture(scope="module")
def postgresql_store(stack):
    if stack.store_backend == "postgresql":
        yield stack
        return
    settings = stack.model_copy(update={"store_backend": "postgresql", "run_dir": stack.run_dir / "store-postgresql",
                                        "mongo_port": stack.mongo_port + 1})
    started = []
    try:
        for server in (PostgreSQLServer(settings), FerretDBServer(settings)):
            if server.start(log=lambda _: None) == "started":
                started.append(server)
        yield settings
    finally:
        for server in reversed(started):
            server.stop()


def test_ferretdb_stores_in_postgresql_and_reads_back_after_its_restart(postgresql_store):
    settings = postgresql_store.model_copy(update={"mongo_db": f"store{uuid.uuid4().hex[:10]}"})
    client = make_mongo_client(settings)
    try:
        col = client[settings.mongo_db]["observations"]
        col.create_index([("region", 1), ("observed_at", 1)], unique=True)
        col.insert_many([{"_id": f"dakar-{h}", "region": "dakar", "observed_at": h, "temp_c": 20.0 + h}
                         for h in range(5)])
        col.update_one({"_id": "dakar-4"}, {"$set": {"temp_c": 30.5}}, upsert=True)
        col.update_one({"_id": "thies-0"}, {"$set": {"region": "thies", "observed_at": 0, "temp_c": 18.0}},
                       upsert=True)
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            col.insert_one({"_id": "again", "region": "dakar", "observed_at": 0})
        # FerretDB names its backend once connected: this store is PostgreSQL, not SQLite.
        log = client.admin.command("getLog", "startupWarnings")["log"]
        assert any("and PostgreSQL 15" in line for line in log), log
    finally:
        client.close()

    ferretdb = FerretDBServer(settings)
    ferretdb.stop()  # the data lives in PostgreSQL: a new FerretDB process reads it back
    ferretdb.start(log=lambda _: None)
    client = make_mongo_client(settings)
    try:
        col = client[settings.mongo_db]["observations"]
        latest = list(col.find({"region": "dakar"}, {"_id": 0, "observed_at": 1, "temp_c": 1})
                      .sort("observed_at", -1).limit(2))
        assert latest == [{"observed_at": 4, "temp_c": 30.5}, {"observed_at": 3, "temp_c": 23.0}]
        assert col.count_documents({}) == 6
    finally:
        client.drop_database(settings.mongo_db)
        client.close()


DOCUMENTS = 5000  # enough rows for PostgreSQL to prefer an index it has


def plan_of_find_by_id(db, collection: str, _id: str) -> dict[str, Any]:
    return db.command("explain", {"find": collection, "filter": {"_id": _id}}, verbosity="queryPlanner")["queryPlanner"]


def index_names(plan: Any) -> set[str]:
    if isinstance(plan, dict):
        return {v for k, v in plan.items() if k == "Index Name"} | set().union(*map(index_names, plan.values()))
    if isinstance(plan, list):
        return set().union(*map(index_names, plan))
    return set()


def fill(db, collection: str) -> None:
    db[collection].insert_many([{"_id": f"dakar|{i}", "region_id": "dakar", "temp": 20.0} for i in range(DOCUMENTS)])


def test_a_read_by_id_uses_the_index_the_stack_adds_to_a_new_collection(postgresql_store):
    settings = postgresql_store.model_copy(update={"mongo_db": f"idx{uuid.uuid4().hex[:10]}"})
    client = make_mongo_client(settings)
    try:
        db = client[settings.mongo_db]
        fill(db, "hourly_stats")
        plan = plan_of_find_by_id(db, "hourly_stats", "dakar|77")
        assert any(name.endswith("_id_gin") for name in index_names(plan)), plan
        assert db["hourly_stats"].find_one({"_id": "dakar|77"})["temp"] == 20.0
    finally:
        client.drop_database(settings.mongo_db)
        client.close()


def test_observations_read_by_day_or_region_use_their_indexes_and_others_have_none(postgresql_store):
    settings = postgresql_store.model_copy(update={"mongo_db": f"idx{uuid.uuid4().hex[:10]}"})
    client = make_mongo_client(settings)
    try:
        db = client[settings.mongo_db]
        docs = [{"_id": f"dakar|{i}", "region_id": "dakar", "day": f"2026-11-{1 + i % 8:02d}", "temp": 20.0}
                for i in range(DOCUMENTS)]
        for collection in (OBSERVATIONS, HOURLY_STATS):
            db[collection].insert_many(docs)
        query = {"region_id": "dakar", "day": "2026-11-03"}
        plan = db.command("explain", {"find": OBSERVATIONS, "filter": query}, verbosity="queryPlanner")
        assert any(name.endswith("_day_gin") for name in index_names(plan["queryPlanner"])), plan
        assert len(find_days(db[OBSERVATIONS], "dakar", ["2026-11-03"])) == DOCUMENTS // 8
        other = db.command("explain", {"find": HOURLY_STATS, "filter": query}, verbosity="queryPlanner")
        assert not any(name.endswith("_day_gin") for name in index_names(other["queryPlanner"])), other
        # A region's history read by a range: the region index serves its region_id.
        by_region = {"region_id": "dakar", "observed_at": {"$lt": "2026-11-04"}}
        plan = db.command("explain", {"find": OBSERVATIONS, "filter": by_region}, verbosity="queryPlanner")
        assert any(name.endswith("_region_gin") for name in index_names(plan["queryPlanner"])), plan
    finally:
        client.drop_database(settings.mongo_db)
        client.close()


def test_the_id_index_goes_and_comes_back_with_the_setting_at_a_restart(stack):
    """A data directory made without the index (as before this step existed) gets it at its next start."""
    settings = stack.model_copy(update={
        "store_backend": "postgresql", "store_id_index": False, "run_dir": stack.run_dir / f"store-id-{uuid.uuid4().hex[:6]}",
        "mongo_port": stack.mongo_port + 2, "postgres_port": stack.postgres_port + 2, "mongo_db": "idx"})

    def started(values) -> list:
        servers = [PostgreSQLServer(values), FerretDBServer(values)]
        for server in servers:
            server.start(log=lambda _: None)
        return servers

    servers = started(settings)
    try:
        client = make_mongo_client(settings)
        fill(client.idx, "observations")
        assert index_names(plan_of_find_by_id(client.idx, "observations", "dakar|77")) == set()
        client.close()
        for server in reversed(servers):
            server.stop()
        servers = started(settings.model_copy(update={"store_id_index": True}))
        client = make_mongo_client(settings)
        plan = plan_of_find_by_id(client.idx, "observations", "dakar|77")
        assert any(name.endswith("_id_gin") for name in index_names(plan)), plan
        assert client.idx.observations.count_documents({}) == DOCUMENTS
        client.close()
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(settings.run_dir, ignore_errors=True)
