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
from stack.servers import PG_DATABASE, FerretDBServer, PostgreSQLServer


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


def observation_days(db, collection: str = OBSERVATIONS) -> None:
    """Many regions over eight days: the region_id and the day each select a part of the table."""
    db[collection].insert_many([{"_id": f"r{i % 50}|{i}", "region_id": f"r{i % 50}", "temp": 20.0,
                                 "day": f"2026-11-{1 + i // 50 % 8:02d}"} for i in range(DOCUMENTS)])


def index_conditions(plan: Any) -> list[tuple[str, str]]:
    """(index, condition) of every index scan in a plan."""
    if isinstance(plan, dict):
        own = [(plan["Index Name"], plan.get("Index Cond", ""))] if "Index Name" in plan else []
        return own + [c for v in plan.values() for c in index_conditions(v)]
    if isinstance(plan, list):
        return [c for v in plan for c in index_conditions(v)]
    return []


def test_observations_read_by_region_and_day_use_one_index_of_both_and_others_have_none(postgresql_store):
    settings = postgresql_store.model_copy(update={"mongo_db": f"idx{uuid.uuid4().hex[:10]}"})
    client = make_mongo_client(settings)
    try:
        db = client[settings.mongo_db]
        for collection in (OBSERVATIONS, HOURLY_STATS):
            observation_days(db, collection)
        query = {"region_id": "r7", "day": "2026-11-03"}
        plan = db.command("explain", {"find": OBSERVATIONS, "filter": query}, verbosity="queryPlanner")
        # Both equalities are the index's condition: only the day's documents of the region are read.
        ((index, condition),) = index_conditions(plan["queryPlanner"])
        assert index.endswith("_region_day_gin") and "'region_id'" in condition and "'day'" in condition, plan
        expected = sum(1 for i in range(DOCUMENTS) if i % 50 == 7 and i // 50 % 8 == 2)
        assert len(find_days(db[OBSERVATIONS], "r7", ["2026-11-03"])) == expected
        other = db.command("explain", {"find": HOURLY_STATS, "filter": query}, verbosity="queryPlanner")
        assert not any(name.endswith("_day_gin") for name in index_names(other["queryPlanner"])), other
        # A region's history read by a range: the same index serves its region_id.
        by_region = {"region_id": "r7", "observed_at": {"$lt": "2026-11-04"}}
        plan = db.command("explain", {"find": OBSERVATIONS, "filter": by_region}, verbosity="queryPlanner")
        assert {name[-15:] for name in index_names(plan["queryPlanner"])} == {"_region_day_gin"}, plan
    finally:
        client.drop_database(settings.mongo_db)
        client.close()


def test_a_store_with_the_older_one_key_indexes_gets_the_two_key_index_at_its_next_start(stack):
    """Stores made before 2026-12-05 have a `day` and a `region_id` index on observations: the next
    start replaces them, and PostgreSQL no longer picks the one-key region index for a region's reads."""
    settings = stack.model_copy(update={
        "store_backend": "postgresql", "run_dir": stack.run_dir / f"store-days-{uuid.uuid4().hex[:6]}",
        "mongo_port": stack.mongo_port + 3, "postgres_port": stack.postgres_port + 3, "mongo_db": "days"})
    by_region = {"region_id": "r7", "observed_at": {"$lt": "2026-11-04"}}

    def started() -> list:
        servers = [PostgreSQLServer(settings), FerretDBServer(settings)]
        for server in servers:
            server.start(log=lambda _: None)
        return servers

    def plan_of(query) -> dict[str, Any]:
        client = make_mongo_client(settings)
        try:
            return client.days.command("explain", {"find": OBSERVATIONS, "filter": query},
                                       verbosity="queryPlanner")["queryPlanner"]
        finally:
            client.close()

    servers = started()
    try:
        client = make_mongo_client(settings)
        observation_days(client.days)
        client.close()
        plan = plan_of(by_region)["Plan"]
        schema, table = plan["Schema"], plan["Relation Name"]
        for server in reversed(servers):
            server.stop()
        # The indexes as the stack made them before, added while the servers are down.
        postgresql = PostgreSQLServer(settings)
        older = "".join(f"CREATE INDEX IF NOT EXISTS {table}_{name}_gin ON {schema}.{table} USING gin "
                        f"((_jsonb -> '{key}') jsonb_path_ops);\n\n" for name, key in (("day", "day"), ("region", "region_id")))
        postgresql._as_server_user([postgresql._bin("postgres"), "--single", "-j", "-D", str(postgresql.data_dir),
                                    "-c", "jit=off", "-c", "exit_on_error=on", PG_DATABASE], "older indexes", older)
        servers = started()
        assert {name[-15:] for name in index_names(plan_of(by_region))} == {"_region_day_gin"}
        assert {name[-15:] for name in index_names(plan_of({"region_id": "r7", "day": "2026-11-03"}))} == {
            "_region_day_gin"}
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(settings.run_dir, ignore_errors=True)


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
