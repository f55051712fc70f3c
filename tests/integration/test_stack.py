"""The native stack: real Kafka, Spark + Kafka connector, Elasticsearch and FerretDB."""

import socket
import subprocess
import sys

import pytest
from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

from meteoflow.es import make_es_client
from meteoflow.kafka import make_consumer, make_producer
from meteoflow.mongo import database
from stack.process import StackError
from stack.servers import FerretDBServer, servers

pytestmark = pytest.mark.integration


def test_kafka_produce_and_consume(isolated):
    producer = make_producer(isolated, client_id="test")
    for i in range(5):
        producer.send(isolated.topic_observations, key=b"dakar", value=f"m{i}".encode())
    producer.flush()
    producer.close()
    consumer = make_consumer(isolated, None, isolated.topic_observations, consumer_timeout_ms=10_000)
    values = [m.value for m in consumer]
    consumer.close()
    # Same key, same partition: order kept.
    assert values == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_topics_are_created_with_partitions_and_retention(isolated):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=isolated.kafka_bootstrap)
    try:
        described = admin.describe_topics([isolated.topic_observations])
        assert len(described[0]["partitions"]) == isolated.kafka_partitions
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, isolated.topic_observations)])
        text = str(configs)
        assert str(168 * 3600 * 1000) in text
    finally:
        admin.close()


def test_spark_reads_topic_with_kafka_connector(isolated, spark):
    producer = make_producer(isolated, client_id="test")
    for i in range(42):
        producer.send(isolated.topic_observations, key=f"r{i % 4}".encode(), value=b"{}")
    producer.flush()
    producer.close()
    df = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", isolated.kafka_bootstrap)
        .option("subscribe", isolated.topic_observations)
        .option("startingOffsets", "earliest")
        .load()
    )
    assert df.count() == 42
    assert df.select("key").distinct().count() == 4


def test_elasticsearch_index_and_search(isolated):
    es = make_es_client(isolated)
    index = isolated.index("observations")
    es.index(index=index, id="t-0-1", document={"region_id": "dakar", "temp": 27.5,
                                                 "observed_at": "2026-11-26T12:00:00Z"}, refresh=True)
    hits = es.search(index=index, query={"term": {"region_id": "dakar"}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["t-0-1"]
    # The template, not dynamic mapping, decided the types.
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["properties"]["region_id"]["type"] == "keyword"
    assert mapping["properties"]["observed_at"]["type"] == "date"


def test_ferretdb_insert_upsert_unique_and_query(isolated):
    db = database(isolated)
    coll = db["observations"]
    coll.create_index([("region_id", 1), ("observed_at", 1)], unique=True)
    coll.insert_one({"region_id": "dakar", "observed_at": "2026-11-26T12:00:00Z", "temp": 27.0})
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"region_id": "dakar", "observed_at": "2026-11-26T12:00:00Z", "temp": 1.0})
    ops = [
        UpdateOne({"region_id": "dakar", "observed_at": "2026-11-26T12:00:00Z"}, {"$set": {"temp": 28.0}}, upsert=True),
        UpdateOne({"region_id": "thies", "observed_at": "2026-11-26T12:00:00Z"}, {"$set": {"temp": 30.0}}, upsert=True),
        UpdateOne({"region_id": "thies", "observed_at": "2026-11-26T12:00:00Z"}, {"$set": {"temp": 30.0}}, upsert=True),
    ]
    coll.bulk_write(ops, ordered=False)
    assert coll.count_documents({}) == 2
    assert coll.find_one({"region_id": "dakar"})["temp"] == 28.0
    assert sorted(d["region_id"] for d in coll.find({"temp": {"$gte": 28}})) == ["dakar", "thies"]


def test_start_twice_is_a_noop(stack):
    for server in servers(stack):
        before = server.recorded_pid()
        assert server.start() == "reused"
        assert server.recorded_pid() == before


def test_port_taken_by_someone_else_is_a_clear_error(stack, tmp_path):
    with socket.socket() as sock:
        sock.bind((stack.bind_host, 0))
        sock.listen()
        port = sock.getsockname()[1]
        other = stack.model_copy(update={"run_dir": tmp_path / "run", "mongo_port": port})
        with pytest.raises(StackError) as err:
            FerretDBServer(other).start(log=lambda _: None)
    assert f"port {port}" in str(err.value)
    assert "METEOFLOW_MONGO_PORT" in str(err.value)


def test_bad_setting_fails_before_anything_starts(tmp_path):
    env = {"METEOFLOW_KAFKA_PORT": "not-a-port", "METEOFLOW_RUN_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "stack", "up"], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "METEOFLOW_KAFKA_PORT='not-a-port'" in result.stderr
    assert not (tmp_path / "pids").exists()


def test_unhealthy_start_shows_the_log_tail(stack, tmp_path):
    class Broken(FerretDBServer):
        name = "broken"
        health_timeout = 5

        def command(self):
            return ["sh", "-c", "for i in $(seq 40); do echo line $i; done; exit 3"]

    # SQLite: this FerretDB has no PostgreSQL to find, and the point is what its log shows.
    other = stack.model_copy(update={"run_dir": tmp_path / "run", "mongo_port": 1, "store_backend": "sqlite"})
    with pytest.raises(StackError) as err:
        Broken(other).start(log=lambda _: None)
    message = str(err.value)
    assert "exited with code 3" in message
    assert "line 40" in message and "line 11" in message and "line 10\n" not in message


def test_ferretdb_survives_a_bulk_of_matching_upserts(isolated):
    """Replaying a batch re-upserts documents that exist. Unpatched FerretDB 1.24 kept one
    SQLite connection per matching update until the command returned, and a bulk of more
    than 100 wedged the server (stack/install.py patches it)."""
    from pymongo import MongoClient

    client = MongoClient(isolated.mongo_uri, socketTimeoutMS=20_000, serverSelectionTimeoutMS=5_000)
    coll = client[isolated.mongo_db]["replay"]
    ops = [UpdateOne({"_id": f"r|{i}"}, {"$set": {"v": i}}, upsert=True) for i in range(300)]
    assert coll.bulk_write(ops, ordered=False).upserted_count == 300
    replay = coll.bulk_write(ops, ordered=False)  # all 300 match now
    assert replay.matched_count == 300 and replay.upserted_count == 0
    assert client.admin.command("ping")["ok"] == 1.0
    assert coll.count_documents({}) == 300
