"""A Spark standalone cluster, started natively from the pyspark distribution: one master and N
workers, each its own process (`spark-class ...deploy.master.Master` / `...deploy.worker.Worker`),
bound to METEOFLOW_BIND_HOST, with logs, pids and work directories under the run directory.

Not started by default: `./run.sh` starts it when METEOFLOW_SPARK_CLUSTER_WORKERS > 0 (and the
streaming job then uses it, see stack.services), the scale-out tests and benchmark start their own.
A worker launches one executor JVM per application in its process group, so stopping the worker
stops its executors too.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from meteoflow.settings import Settings
from stack import install
from stack.private import private_dir
from stack.process import ManagedProcess

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The pyspark package is a Spark distribution (bin/spark-class, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def master_state(settings: Settings) -> dict:
    """The master's own JSON view: status, and its workers with their state."""
    url = f"http://{settings.bind_host}:{settings.spark_cluster_webui_port}/json/"
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.load(resp)


def alive_workers(settings: Settings) -> list[dict]:
    return [w for w in master_state(settings).get("workers", []) if w.get("state") == "ALIVE"]


class _SparkDaemon(ManagedProcess):
    health_timeout = 120.0
    health_poll_seconds = 0.3

    def configure(self) -> None:
        for sub in ("conf", "tmp"):
            private_dir(self.home / sub)

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(
            JAVA_HOME=str(install.java_home(self.settings)),
            SPARK_HOME=str(spark_home()),
            SPARK_CONF_DIR=str(self.home / "conf"),  # empty: no spark-env.sh or defaults from elsewhere
            SPARK_LOCAL_IP=self.settings.bind_host,  # the web UIs bind here too (default: all addresses)
            SPARK_LOCAL_DIRS=str(self.home / "tmp"),
            PYSPARK_PYTHON=sys.executable,
        )
        return env

    def spark_class(self, main_class: str, *args: str) -> list[str]:
        return [str(spark_home() / "bin" / "spark-class"), main_class, *args]


class SparkMaster(_SparkDaemon):
    name = "spark-master"
    port_setting = "spark_cluster_port"

    def command(self) -> list[str]:
        s = self.settings
        return self.spark_class(MASTER_CLASS, "--host", s.bind_host, "--port", str(s.spark_cluster_port),
                                "--webui-port", str(s.spark_cluster_webui_port))

    def healthy(self) -> bool:
        return master_state(self.settings).get("status") == "ALIVE"


class SparkWorker(_SparkDaemon):
    port_setting = "spark_cluster_webui_port"  # its web UI port derives from it: the one it must find free

    def __init__(self, settings: Settings, number: int):
        super().__init__(settings)
        self.number = number
        self.name = f"spark-worker-{number}"

    @property
    def port(self) -> int:
        return self.settings.spark_cluster_webui_port + self.number

    def configure(self) -> None:
        super().configure()
        private_dir(self.home / "work")

    def command(self) -> list[str]:
        s = self.settings
        return self.spark_class(WORKER_CLASS, s.spark_cluster_url, "--host", s.bind_host,
                                "--webui-port", str(self.port), "--cores", str(s.spark_worker_cores),
                                "--memory", s.spark_worker_memory, "--work-dir", str(self.home / "work"))

    def healthy(self) -> bool:
        # Registered with the master, not merely up.
        return any(w.get("webuiaddress", "").endswith(f":{self.port}") for w in alive_workers(self.settings))


def cluster_processes(settings: Settings, workers: int | None = None) -> list[ManagedProcess]:
    """The master and `workers` workers (default METEOFLOW_SPARK_CLUSTER_WORKERS), in start order."""
    count = settings.spark_cluster_workers if workers is None else workers
    if count <= 0:
        return []
    return [SparkMaster(settings), *(SparkWorker(settings, n) for n in range(1, count + 1))]


class SparkCluster:
    """Start a master and workers, stop them in reverse order (for tests and benchmarks)."""

    def __init__(self, settings: Settings, workers: int):
        self.settings = settings
        self.processes = cluster_processes(settings, workers)

    @property
    def url(self) -> str:
        return self.settings.spark_cluster_url

    def start(self, log=print) -> "SparkCluster":
        """The master first, then the workers side by side (each JVM takes seconds to come up)."""
        try:
            if self.processes:
                self.processes[0].start(log)
            with ThreadPoolExecutor(max(1, len(self.processes) - 1)) as pool:
                for started in [pool.submit(worker.start, log) for worker in self.processes[1:]]:
                    started.result()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def __enter__(self) -> "SparkCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
