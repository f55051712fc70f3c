"""FerretDB on its PostgreSQL backend, both started by the stack code: PostgreSQL from Debian's
packages (unpacked in the cache), FerretDB built as for SQLite. When the test stack already runs
on PostgreSQL (METEOFLOW_STORE_BACKEND=postgresql) its servers are used; otherwise this module
starts its own pair beside it, on the test PostgreSQL port and the FerretDB port after the stack's."""

from __future__ import annotations

import uuid

import pymongo
import pytest

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
