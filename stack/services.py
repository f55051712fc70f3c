"""Meteoflow's own services, supervised like the servers: `python -m <module>`.

A service is started only when its package has an entry point (`__main__.py`), so
`./run.sh` brings up whatever exists. HTTP services are healthy when `/health`
answers 200; the others when their process is alive.
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.request

from meteoflow.settings import Settings
from stack.install import java_home
from stack.process import ManagedProcess, pid_alive, process_age_seconds
from stack.spark import install_spark_prerequisites


class Service(ManagedProcess):
    module: str = ""
    health_timeout = 120.0
    # A service without an HTTP health endpoint counts as healthy once it has stayed up this
    # long: most start-up failures (bad settings, unreachable Kafka) exit within it.
    min_uptime_seconds = 3.0

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    @classmethod
    def available(cls) -> bool:
        try:
            return importlib.util.find_spec(f"{cls.module}.__main__") is not None
        except ModuleNotFoundError:
            return False

    def healthy(self) -> bool:
        if self.port_setting is None:
            pid = self.recorded_pid()
            return pid is not None and pid_alive(pid) and process_age_seconds(pid) >= self.min_uptime_seconds
        url = f"http://{self.settings.bind_host}:{self.port}/health"
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200

    @property
    def url(self) -> str | None:
        return f"http://{self.settings.bind_host}:{self.port}" if self.port else None


def _service(name: str, module: str, port_setting: str | None = None) -> type[Service]:
    return type(f"{name.title()}Service", (Service,), {"name": name, "module": module, "port_setting": port_setting})


class SparkService(Service):
    """A service that runs Spark: it reads the Kafka connector and Java the stack installs, and uses
    the cluster ./run.sh started when there is one; it installs nothing itself."""

    port_setting = None

    def install(self) -> None:
        install_spark_prerequisites(self.settings)

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["JAVA_HOME"] = str(java_home(self.settings))  # the JDK the stack checked (17+)
        if self.settings.spark_cluster_workers and "spark_master" not in self.settings.model_fields_set:
            env["METEOFLOW_SPARK_MASTER"] = self.settings.spark_cluster_url  # the cluster ./run.sh started
        return env


class StreamingService(SparkService):
    name = "streaming"
    module = "streaming"


class RainModelService(SparkService):
    """`python -m batch schedule`: retrains the rain model and refreshes the rain chances on their periods."""

    name = "rain_model"
    module = "batch"

    def command(self) -> list[str]:
        return [*super().command(), "schedule"]


# Start order: what others call first (forecasting API before streaming), the producer last.
SERVICES: dict[str, type[Service]] = {
    cls.name: cls
    for cls in (
        _service("forecasting_api", "forecasting_api", "forecast_api_port"),
        _service("webapp", "webapp", "webapp_port"),
        _service("shipper", "elk.shipper"),
        _service("alerting", "elk.alerting"),
        StreamingService,
        RainModelService,
        _service("producer", "producer"),
    )
}


def services(settings: Settings, names: list[str] | None = None, only_available: bool = True) -> list[Service]:
    chosen = names or list(SERVICES)
    unknown = [n for n in chosen if n not in SERVICES]
    if unknown:
        raise ValueError(f"unknown service(s) {unknown}; known: {', '.join(SERVICES)}")
    return [SERVICES[n](settings) for n in chosen if not only_available or SERVICES[n].available()]
