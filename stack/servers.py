"""The real servers, started natively: Kafka (KRaft), Elasticsearch, FerretDB, and the
PostgreSQL under FerretDB when METEOFLOW_STORE_BACKEND=postgresql.

Spark is not a server here by default: pyspark runs in local mode inside the streaming job
(see `stack.spark`); with METEOFLOW_SPARK_CLUSTER_WORKERS > 0 a standalone master and workers
(stack.spark_cluster) are started after these and the job runs on them. Each class says how to install, configure, run and probe one
server; `stack.process.ManagedProcess` does the supervising.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from meteoflow.settings import Settings
from stack import install
from stack.private import UMASK, private_dir, write_private
from stack.process import ManagedProcess, StackError, port_in_use
from stack.spark_cluster import cluster_processes

SERVER_USER = "meteoflow"  # Elasticsearch and PostgreSQL refuse to run as root: they run as this user then

# Free disk below which the native Elasticsearch stops placing shards (low, high) and, at the
# flood stage, turns the indices read-only-allow-delete until space is back (it lifts the block
# itself). Absolute sizes, not the 85/90/95 % defaults: on a large dev disk 15 % free is still
# hundreds of GB, on a small one the flood stage must come before the disk is full.
ES_DISK_WATERMARKS = {"low": "2gb", "high": "1gb", "flood_stage": "512mb"}


class KafkaServer(ManagedProcess):
    name = "kafka"
    port_setting = "kafka_port"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def _java(self) -> str:
        return str(install.java_home(self.settings) / "bin" / "java")

    def install(self) -> None:
        install.kafka_libs(self.settings)

    def configure(self) -> None:
        s = self.settings
        if port_clash := {s.kafka_port} & {s.kafka_controller_port}:
            raise StackError(f"METEOFLOW_KAFKA_PORT and METEOFLOW_KAFKA_CONTROLLER_PORT are both {port_clash.pop()}")
        private_dir(self.data_dir)
        host = s.bind_host
        retention_ms = s.kafka_retention_hours * 3600 * 1000
        self.config_file.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{host}:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://{host}:{s.kafka_port},CONTROLLER://{host}:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://{host}:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.data_dir}",
                    f"num.partitions={s.kafka_partitions}",
                    f"log.retention.ms={retention_ms}",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "",
                ]
            )
        )
        (self.home / "log4j2.yaml").write_text(
            "Configuration:\n"
            "  Appenders:\n"
            "    Console: {name: STDOUT, PatternLayout: {pattern: '[%d] %p %m (%c)%n'}}\n"
            "  Loggers:\n"
            "    Root: {level: INFO, AppenderRef: [{ref: STDOUT}]}\n"
            "    Logger:\n"
            "      - {name: kafka, level: WARN}\n"
            "      - {name: org.apache.kafka, level: WARN}\n"
            "      - {name: kafka.server.KafkaServer, level: INFO}\n"
            "      - {name: kafka.server.BrokerServer, level: INFO}\n"
        )
        if not (self.data_dir / "meta.properties").exists():
            # First start: format the KRaft storage with a fresh cluster id. One in 64 such ids
            # starts with '-': passed as `--cluster-id=ID` it is not read as an option.
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            result = subprocess.run(
                [self._java(), "-cp", self._classpath(), "kafka.tools.StorageTool", "format",
                 f"--cluster-id={cluster_id}", "-c", str(self.config_file)],
                capture_output=True, text=True, env=self.environment(),
            )
            if result.returncode != 0:
                raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def _classpath(self) -> str:
        return str(install.kafka_libs(self.settings) / "*")

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["JAVA_HOME"] = str(install.java_home(self.settings))
        return env

    def command(self) -> list[str]:
        return [
            self._java(),
            f"-Xms{self.settings.kafka_heap}",
            f"-Xmx{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.config_file),
        ]

    def healthy(self) -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(
            bootstrap_servers=f"{self.settings.bind_host}:{self.settings.kafka_port}",
            request_timeout_ms=3000,
            connections_max_idle_ms=5000,
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    def after_start(self) -> None:
        from meteoflow.kafka import ensure_topics

        ensure_topics(self.settings)


def _ensure_server_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        if os.geteuid() != 0:
            raise StackError(f"Elasticsearch and PostgreSQL cannot run as root, and user {SERVER_USER!r} "
                             "does not exist") from None
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            check=True,
        )
        entry = pwd.getpwnam(SERVER_USER)
    return entry.pw_uid, entry.pw_gid


def _hand_over(home: Path) -> None:
    """Give `home` to the server's own user (created if missing) and let that user reach it:
    every parent gets the others-search bit (traverse, never list)."""
    uid, gid = _ensure_server_user()
    for root, _dirs, files in os.walk(home):
        os.chown(root, uid, gid)
        for name in files:
            os.chown(os.path.join(root, name), uid, gid)
    for parent in [home.parent, *home.parent.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _run_as_own_user() -> str | None:
    return SERVER_USER if os.geteuid() == 0 else None


class ElasticsearchServer(ManagedProcess):
    name = "elasticsearch"
    port_setting = "es_port"

    @property
    def distribution(self) -> Path:
        return install.elasticsearch_home(self.settings)

    def install(self) -> None:
        install.elasticsearch_home(self.settings)

    def run_as_user(self) -> str | None:
        # Elasticsearch refuses root; when we are root, run it as a dedicated system user.
        return _run_as_own_user()

    def configure(self) -> None:
        s = self.settings
        conf = self.home / "config"
        for sub in ("data", "logs", "tmp"):
            private_dir(self.home / sub)
        if not conf.exists():
            shutil.copytree(self.distribution / "config", conf)
        (conf / "elasticsearch.yml").write_text(
            "\n".join(
                [
                    "cluster.name: meteoflow",
                    "node.name: meteoflow-1",
                    f"network.host: {s.bind_host}",
                    f"http.port: {s.es_port}",
                    f"transport.port: {s.es_transport_port}",
                    "discovery.type: single-node",
                    # The native stack is loopback-only and single-user; the Docker path enables security.
                    "xpack.security.enabled: false",
                    f"path.data: {self.home / 'data'}",
                    f"path.logs: {self.home / 'logs'}",
                    # A delete must name its indices: no `*` or `_all` wipes every index at once.
                    "action.destructive_requires_name: true",
                    "cluster.routing.allocation.disk.threshold_enabled: true",
                    *(f"cluster.routing.allocation.disk.watermark.{level}: {size}"
                      for level, size in ES_DISK_WATERMARKS.items()),
                    "",
                ]
            )
        )
        if self.run_as_user():
            _hand_over(self.home)

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(
            ES_JAVA_HOME=str(install.java_home(self.settings)),
            ES_PATH_CONF=str(self.home / "config"),
            ES_TMPDIR=str(self.home / "tmp"),
            ES_JAVA_OPTS=f"-Xms{self.settings.es_heap} -Xmx{self.settings.es_heap}",
        )
        env.pop("JAVA_HOME", None)
        return env

    def command(self) -> list[str]:
        return [str(self.distribution / "bin" / "elasticsearch")]

    def healthy(self) -> bool:
        url = f"http://{self.settings.bind_host}:{self.settings.es_port}/_cluster/health?wait_for_status=yellow&timeout=2s"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp).get("status") in {"green", "yellow"}

    def after_start(self) -> None:
        from elk.templates import install_templates

        install_templates(self.settings)


PG_ROLE = "meteoflow"  # the PostgreSQL role FerretDB connects as (initdb's superuser)
PG_DATABASE = "ferretdb"  # FerretDB maps each MongoDB database to a schema of this one
# FerretDB keeps each collection as a table of one jsonb column (_jsonb) and sends an _id equality
# as `_jsonb -> '_id' @> $1`, which its own (btree) indexes cannot serve: every read or update by
# _id was a pass over the whole collection, so the write path slowed as history grew (BENCHMARKS.md,
# "the store's _id index"). A GIN index on that expression serves it. FerretDB does not make one,
# so an event trigger adds it to every table it creates, and to those that exist already; and, to
# observations, one on (`region_id`, `day`), by which the readers of a region's days ask
# (meteoflow.contracts.find_days: {region_id, day} equalities) and a region's history range reads are
# filtered (a pass over the table without). One index of both keys, not one per key: given two,
# PostgreSQL's estimate for jsonb containment led it, at 90 days of 200 regions, to read the region's
# whole history through the region index and filter the day (16 ms a read, growing; 6 ms with this one).
# Statements end with ";" and an empty line: single-user mode's -j.
PG_ID_INDEX_SQL = """\
CREATE OR REPLACE FUNCTION public.meteoflow_index_id(target regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = target AND attname = '_jsonb' AND NOT attisdropped) THEN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> ''_id'') jsonb_path_ops)',
                   left((SELECT relname FROM pg_class WHERE oid = target), 56) || '_id_gin', target);
    -- observations are read by {region_id, day} equalities (meteoflow.contracts.find_days)
    IF (SELECT relname FROM pg_class WHERE oid = target) LIKE 'observations\\_%' THEN
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin '
                     '((_jsonb -> ''region_id'') jsonb_path_ops, (_jsonb -> ''day'') jsonb_path_ops)',
                     left((SELECT relname FROM pg_class WHERE oid = target), 48) || '_region_day_gin', target);
      -- the two one-column indexes it replaces (stores made before 2026-12-05)
      EXECUTE format('DROP INDEX IF EXISTS %I.%I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n
                     ON n.oid = c.relnamespace WHERE c.oid = target),
                     left((SELECT relname FROM pg_class WHERE oid = target), 55) || '_day_gin');
      EXECUTE format('DROP INDEX IF EXISTS %I.%I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n
                     ON n.oid = c.relnamespace WHERE c.oid = target),
                     left((SELECT relname FROM pg_class WHERE oid = target), 52) || '_region_gin');
    END IF;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION public.meteoflow_index_new_tables() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE created record;
BEGIN
  FOR created IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'table' LOOP
    PERFORM public.meteoflow_index_id(created.objid::regclass);
  END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS meteoflow_index_new_tables;

CREATE EVENT TRIGGER meteoflow_index_new_tables ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION public.meteoflow_index_new_tables();

DO $$
DECLARE existing regclass;
BEGIN
  FOR existing IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') LOOP
    PERFORM public.meteoflow_index_id(existing);
  END LOOP;
END $$;

"""
# METEOFLOW_STORE_ID_INDEX=false: back to FerretDB's own indexes only (to measure what the index buys).
PG_NO_ID_INDEX_SQL = """\
DROP EVENT TRIGGER IF EXISTS meteoflow_index_new_tables;

DO $$
DECLARE found record;
BEGIN
  FOR found IN SELECT c.oid::regclass AS name FROM pg_class c WHERE c.relkind = 'i'
               AND (c.relname LIKE '%\\_id\\_gin' OR c.relname LIKE '%\\_day\\_gin'
                    OR c.relname LIKE '%\\_region\\_gin') LOOP
    EXECUTE format('DROP INDEX %s', found.name);
  END LOOP;
END $$;

"""


class PostgreSQLServer(ManagedProcess):
    """PostgreSQL from Debian's packages (stack.install.postgresql_root), for FerretDB's
    postgresql backend. Loopback TCP only (no Unix socket), password (SCRAM) authentication:
    a superuser reachable without one could run programs as the server's user (COPY ... PROGRAM)."""

    name = "postgresql"
    port_setting = "postgres_port"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    def _bin(self, program: str) -> str:
        return str(install.postgresql_bin(self.settings) / program)

    def install(self) -> None:
        install.postgresql_root(self.settings)

    def run_as_user(self) -> str | None:
        return _run_as_own_user()  # PostgreSQL refuses root as well

    def environment(self) -> dict[str, str]:
        env = install.postgresql_env(self.settings)
        env["METEOFLOW_RUN_DIR"] = str(self.settings.run_dir)
        return env

    def _as_server_user(self, cmd: list[str], what: str, stdin: str | None = None) -> None:
        user = self.run_as_user()
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=self.environment(),
                                user=user, group=user, extra_groups=[] if user else None, umask=UMASK)
        if result.returncode != 0:
            raise StackError(f"PostgreSQL: {what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")

    def configure(self) -> None:
        private_dir(self.home)
        if not (self.data_dir / "PG_VERSION").exists():
            shutil.rmtree(self.data_dir, ignore_errors=True)  # an interrupted initdb: initdb wants it empty
            write_private(self.password_file, secrets.token_urlsafe(32))
            if self.run_as_user():
                _hand_over(self.home)
            # UTF8 with the C locale, as FerretDB requires; no OS locale needed.
            self._as_server_user([self._bin("initdb"), "-D", str(self.data_dir), "-U", PG_ROLE,
                                  f"--pwfile={self.password_file}", "--auth=scram-sha-256", "-E", "UTF8",
                                  "--locale=C"], "initdb")
            # Single-user mode: the database exists before the server first listens.
            self._as_server_user([self._bin("postgres"), "--single", "-D", str(self.data_dir), "-c", "jit=off",
                                  "-c", "exit_on_error=on", "postgres"], f"creating database {PG_DATABASE}",
                                 stdin=f"CREATE DATABASE {PG_DATABASE};\n")
        if self.run_as_user():
            _hand_over(self.home)
        # At every start (the server is down here): a data directory made before this step gets it too.
        index = self.settings.store_id_index
        self._as_server_user([self._bin("postgres"), "--single", "-j", "-D", str(self.data_dir), "-c", "jit=off",
                              "-c", "exit_on_error=on", PG_DATABASE],
                             "indexing FerretDB's tables by _id" if index else "dropping the _id indexes",
                             stdin=PG_ID_INDEX_SQL if index else PG_NO_ID_INDEX_SQL)

    def command(self) -> list[str]:
        s = self.settings
        return [
            self._bin("postgres"),
            "-D", str(self.data_dir),
            "-c", f"listen_addresses={s.bind_host}",
            "-c", f"port={s.postgres_port}",
            "-c", "unix_socket_directories=",
            "-c", "jit=off",  # the JIT's LLVM is not unpacked
            "-c", "max_connections=100",  # FerretDB's pool holds at most 50
            # FerretDB prepares its statements with the key as a parameter (`_jsonb -> $1 @> $2`): a generic
            # plan cannot match the _id index's expression; a custom plan, planned with the values, does.
            "-c", "plan_cache_mode=force_custom_plan",
        ]

    def healthy(self) -> bool:
        # postmaster.pid's 8th line turns "ready" once it accepts connections (what pg_ctl -w waits for).
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        return len(lines) >= 8 and lines[7].strip() == "ready" and port_in_use(self.settings.bind_host, self.port)

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGINT) -> bool:
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for FerretDB's pooled clients to leave.
        return super().stop(timeout, sig)

    def url(self) -> str:
        """FerretDB's --postgresql-url, password included: passed in its environment, not its command line."""
        password = urllib.parse.quote(self.password_file.read_text().strip(), safe="")
        s = self.settings
        return f"postgres://{PG_ROLE}:{password}@{s.bind_host}:{s.postgres_port}/{PG_DATABASE}"


class FerretDBServer(ManagedProcess):
    name = "ferretdb"
    port_setting = "mongo_port"

    def install(self) -> None:
        install.ferretdb_binary(self.settings)

    def configure(self) -> None:
        private_dir(self.home / "data")

    def environment(self) -> dict[str, str]:
        env = super().environment()
        if self.settings.store_backend == "postgresql":
            postgresql = PostgreSQLServer(self.settings)
            if not postgresql.password_file.exists():
                raise StackError(f"FerretDB stores in PostgreSQL (METEOFLOW_STORE_BACKEND=postgresql), but none was "
                                 f"set up in {postgresql.home}: start it first (./run.sh up postgresql), or set "
                                 "METEOFLOW_STORE_BACKEND=sqlite")
            env["FERRETDB_POSTGRESQL_URL"] = postgresql.url()
        return env

    def command(self) -> list[str]:
        s = self.settings
        backend = (["--handler=sqlite", f"--sqlite-url=file:{self.home / 'data'}/"] if s.store_backend == "sqlite"
                   else ["--handler=postgresql"])  # its URL: FERRETDB_POSTGRESQL_URL, see environment()
        return [
            str(install.ferretdb_binary(s)),
            *backend,
            f"--listen-addr={s.bind_host}:{s.mongo_port}",
            f"--state-dir={self.home}",
            "--debug-addr=-",
            "--telemetry=disable",
            "--log-level=warn",
        ]

    def healthy(self) -> bool:
        import pymongo

        client = pymongo.MongoClient(
            f"mongodb://{self.settings.bind_host}:{self.settings.mongo_port}/",
            serverSelectionTimeoutMS=2000,
            connectTimeoutMS=2000,
        )
        try:
            return client.admin.command("ping").get("ok") == 1.0
        finally:
            client.close()


# Start order: PostgreSQL before the FerretDB that stores in it.
SERVERS: dict[str, type[ManagedProcess]] = {
    "kafka": KafkaServer,
    "elasticsearch": ElasticsearchServer,
    "postgresql": PostgreSQLServer,
    "ferretdb": FerretDBServer,
}


def wanted_servers(settings: Settings) -> list[str]:
    """The servers this configuration runs: PostgreSQL only for the postgresql store backend."""
    return [n for n in SERVERS if n != "postgresql" or settings.store_backend == "postgresql"]


def store_servers(settings: Settings) -> list[str]:
    """The servers of the MongoDB-wire store, in start order: FerretDB, after its PostgreSQL if any."""
    return ["postgresql", "ferretdb"] if settings.store_backend == "postgresql" else ["ferretdb"]


def servers(settings: Settings, names: list[str] | None = None) -> list[ManagedProcess]:
    """The named servers; by default the wanted ones, and any other this run directory still runs
    (a PostgreSQL started before the backend was switched), so status and down see it too; then a
    Spark master and workers when METEOFLOW_SPARK_CLUSTER_WORKERS > 0 (stack.spark_cluster)."""
    cluster = {process.name: process for process in cluster_processes(settings)}
    unknown = [n for n in names or [] if n not in SERVERS and n not in cluster]
    if unknown:
        raise StackError(f"unknown server(s) {unknown}; known: {', '.join([*SERVERS, *cluster])}")
    if names:
        return [cluster[n] if n in cluster else SERVERS[n](settings) for n in names]
    wanted = wanted_servers(settings)
    every = [SERVERS[n](settings) for n in SERVERS]
    return [s for s in every if s.name in wanted or s.recorded_pid() is not None] + list(cluster.values())
