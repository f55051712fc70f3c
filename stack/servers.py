"""The four real servers, started natively: Kafka (KRaft), Elasticsearch, FerretDB.

Spark is not a server here: pyspark runs in local mode inside the streaming job
(see `stack.spark`). Each class says how to install, configure, run and probe one
server; `stack.process.ManagedProcess` does the supervising.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path

from meteoflow.settings import Settings
from stack import install
from stack.private import private_dir
from stack.process import ManagedProcess, StackError

ES_USER = "meteoflow"  # Elasticsearch refuses to run as root

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


def _ensure_es_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(ES_USER)
    except KeyError:
        if os.geteuid() != 0:
            raise StackError(f"Elasticsearch cannot run as root and user {ES_USER!r} does not exist") from None
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER],
            check=True,
        )
        entry = pwd.getpwnam(ES_USER)
    return entry.pw_uid, entry.pw_gid


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
        return ES_USER if os.geteuid() == 0 else None

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
            uid, gid = _ensure_es_user()
            for root, dirs, files in os.walk(self.home):
                os.chown(root, uid, gid)
                for name in files:
                    os.chown(os.path.join(root, name), uid, gid)
            # The user must be able to reach the run directory.
            for parent in [self.home.parent, *self.home.parent.parents]:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)

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


class FerretDBServer(ManagedProcess):
    name = "ferretdb"
    port_setting = "mongo_port"

    def install(self) -> None:
        install.ferretdb_binary(self.settings)

    def configure(self) -> None:
        private_dir(self.home / "data")

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(install.ferretdb_binary(s)),
            "--handler=sqlite",
            f"--sqlite-url=file:{self.home / 'data'}/",
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


SERVERS: dict[str, type[ManagedProcess]] = {
    "kafka": KafkaServer,
    "elasticsearch": ElasticsearchServer,
    "ferretdb": FerretDBServer,
}


def servers(settings: Settings, names: list[str] | None = None) -> list[ManagedProcess]:
    chosen = names or list(SERVERS)
    unknown = [n for n in chosen if n not in SERVERS]
    if unknown:
        raise StackError(f"unknown server(s) {unknown}; known: {', '.join(SERVERS)}")
    return [SERVERS[n](settings) for n in chosen]
