"""Streaming sink writes on FerretDB: bulk upserts (the obvious idempotent write) against the
sink's insert-new / update-changed write (streaming.sinks.upsert_all), same documents, same run.

Needs a running MongoDB-wire server: `./run.sh` (FerretDB on METEOFLOW_MONGO_PORT, default 27017)
or the test stack (METEOFLOW_MONGO_PORT=37017). Uses a throw-away database, dropped at the end.

    .venv/bin/python benchmarks/streaming_writes_bench.py            # 1,000 observations per batch
    .venv/bin/python benchmarks/streaming_writes_bench.py --docs 300
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from functools import partial
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pymongo import UpdateOne  # noqa: E402

from meteoflow.mongo import make_mongo_client  # noqa: E402
from meteoflow.settings import REPO_ROOT, load_settings  # noqa: E402
from stack.servers import servers, store_servers  # noqa: E402
from streaming.records import observation_documents  # noqa: E402
from streaming.sinks import upsert_all  # noqa: E402
from tests.fakes.observations import simulated_observations  # noqa: E402


def bulk_upsert(collection, models):
    docs = [m.to_document() for m in models]
    collection.bulk_write([UpdateOne({"_id": d["_id"]}, {"$set": {k: v for k, v in d.items() if k != "_id"}},
                                     upsert=True) for d in docs], ordered=False)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000, help="observations per batch")
    # `./run.sh bench --quick` passes --quick to every benchmark.
    parser.add_argument("--quick", action="store_true", help="300 observations per batch")
    parser.add_argument("--mongo-port", type=int, default=57017, help="port of the benchmark's own FerretDB")
    args = parser.parse_args(argv)
    if args.quick:
        args.docs = 300
    # Its own FerretDB (started through the stack, like every benchmark), so it needs nothing running.
    settings = load_settings(run_dir=REPO_ROOT / ".run" / "bench-writes", mongo_port=args.mongo_port,
                             postgres_port=args.mongo_port - 27017 + 5432)
    store = servers(settings, store_servers(settings))  # FerretDB, after its PostgreSQL on that backend
    started = [server for server in store if server.start() == "started"]
    client = make_mongo_client(settings)
    name = f"bench-writes-{uuid.uuid4().hex[:8]}"
    db = client[name]
    try:
        per_hour = 4
        hours = max(1, args.docs // (4 * per_hour))
        docs = observation_documents(simulated_observations(regions=4, hours=hours, per_hour=per_hour),
                                     datetime.now(timezone.utc))
        half = len(docs) // 2
        print(f"{len(docs)} observation documents per batch, FerretDB at {settings.mongo_uri}")
        rows = []
        ours = partial(upsert_all, ignore=frozenset({"stored_at"}))  # as ObservationSink calls it
        for label, write in (("bulk upserts (baseline)", bulk_upsert), ("insert new / update changed", ours)):
            col = db[label.split()[0]]
            col.insert_many([d.to_document() for d in docs[:half]])  # some history already stored
            fresh = timed(write, col, docs[half:])
            replay = timed(write, col, docs[half:])  # the same batch again (restart or fresh checkpoint)
            rows.append((label, fresh, replay))
        for label, fresh, replay in rows:
            print(f"  {label:30s} new batch {fresh * 1000:8.0f} ms   replayed batch {replay * 1000:8.0f} ms")
        base, ours = rows
        print(f"  speed-up: new batch x{base[1] / ours[1]:.1f}, replayed batch x{base[2] / ours[2]:.1f}")
    finally:
        client.drop_database(name)
        client.close()
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    main()
