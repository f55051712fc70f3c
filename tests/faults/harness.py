"""A whole Meteoflow pipeline on its own ports and run directory, for the fault suite and the
benchmarks: the real servers (stack.servers), the real services as `python -m` subprocesses
(stack.services) configured only through METEOFLOW_* variables, and a feeder thread that
publishes simulator observations with the producer's own publisher and remembers exactly
what Kafka acknowledged.

Nothing here reimplements a pipeline piece: it starts, kills and restarts them, and reads
what they stored.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import shutil
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from pydantic import SecretStr

from meteoflow.settings import REPO_ROOT, Settings, load_settings
from producer.regions import Region, load_regions
from producer.run import Batch, KafkaPublisher
from producer.sources.simulator import RegionSimulator
from stack.process import ManagedProcess
from stack.servers import servers, store_servers
from stack.services import SERVICES, Service

log = logging.getLogger("harness")


# --- settings -> environment ------------------------------------------------------------------
def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `load_settings()` in a subprocess equal `settings`.

    Every field is written (not only the changed ones), so neither the caller's METEOFLOW_*
    variables nor a `.env` file can leak a different value into a service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METEOFLOW_")}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[info.alias or f"METEOFLOW_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"  # a kill -9 must not eat the last log lines of a service
    return env


def pipeline_settings(run_dir: Path, port_offset: int, **extra) -> Settings:
    """Settings for a stack on `default port + port_offset`, with fresh names (topics, db, indices)."""
    tag = uuid.uuid4().hex[:8]
    values = dict(owm_api_key=None, slack_webhook_url=None, producer_source="simulator")
    values.update(extra)
    return load_settings(
        run_dir=run_dir,
        kafka_port=9092 + port_offset, kafka_controller_port=9093 + port_offset,
        es_port=9200 + port_offset, es_transport_port=9300 + port_offset,
        mongo_port=27017 + port_offset, postgres_port=5432 + port_offset,
        forecast_api_port=8000 + port_offset, webapp_port=8080 + port_offset,
        producer_metrics_port=9191 + port_offset, streaming_metrics_port=9192 + port_offset,
        shipper_metrics_port=9193 + port_offset, alerting_metrics_port=9194 + port_offset,
        topic_observations=f"f{tag}.observations", topic_deadletter=f"f{tag}.deadletter",
        topic_logs=f"f{tag}.logs", mongo_db=f"f{tag}", es_index_prefix=f"f{tag}",
        **values,
    )


# --- servers and services -----------------------------------------------------------------------
def service(settings: Settings, name: str) -> Service:
    """One of stack.services' services, run with `settings` passed through its environment."""
    base = SERVICES[name]

    def environment(self) -> dict[str, str]:
        env = settings_env(self.settings)
        env["METEOFLOW_RUN_DIR"] = str(self.settings.run_dir)  # how ManagedProcess recognises its pids
        return env

    return type(base.__name__, (base,), {"environment": environment})(settings)


class Pipeline:
    """Servers + services of one run directory. `start_servers` wipes the run directory first
    (after stopping anything recorded there), so a run never sees a previous run's data."""

    def __init__(self, settings: Settings, server_names: list[str], service_names: list[str]):
        self.settings = settings
        # "ferretdb" means the whole store: with the postgresql backend, its PostgreSQL first.
        names = [m for n in server_names for m in (store_servers(settings) if n == "ferretdb" else [n])]
        self.servers: dict[str, ManagedProcess] = {s.name: s for s in servers(settings, names)}
        self.services: dict[str, Service] = {n: service(settings, n) for n in service_names}
        self._supervised: set[str] = set()
        self.restarts: dict[str, int] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)

    def say(self, message: str) -> None:
        log.info(message)
        print(f"[pipeline] {message}", flush=True)

    def start_servers(self) -> None:
        for proc in [*self.services.values(), *self.servers.values()]:
            proc.stop()
        if self.settings.run_dir.exists():
            shutil.rmtree(self.settings.run_dir)
        for server in self.servers.values():
            server.start(log=self.say)

    def start(self, name: str, supervise: bool = True) -> None:
        with self._lock:
            self.services[name].start(log=self.say)
            if supervise:
                self._supervised.add(name)
        if supervise and not self._supervisor.is_alive():
            self._supervisor.start()

    def kill(self, name: str) -> None:
        """SIGKILL a service's process group and leave it down (the supervisor does not restart it)."""
        with self._lock:
            self._supervised.discard(name)
            self.services[name].kill()

    def stop_service(self, name: str) -> None:
        with self._lock:
            self._supervised.discard(name)
            self.services[name].stop()

    def restart_server(self, name: str, down_seconds: float) -> None:
        server = self.servers[name]
        server.stop()
        time.sleep(down_seconds)  # the outage itself; everything else waits on conditions
        server.start(log=self.say)

    def _supervise(self) -> None:
        """Plays the role of a process supervisor: a service that exits is started again
        (the streaming job exits 1 on a failed batch, by design, and relies on this). Servers
        are never restarted behind a test's back: a server that stops answering is a bug the
        suite must show, not hide."""
        while not self._stop.wait(0.5):
            with self._lock:
                for name in list(self._supervised):
                    svc = self.services[name]
                    if svc.recorded_pid() is None:
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                        self.say(f"{name} exited; restarting it (restart #{self.restarts[name]})")
                        try:
                            svc.start(log=self.say)
                        except Exception as exc:  # noqa: BLE001 - try again on the next round
                            self.say(f"restarting {name} failed: {exc}")

    def stop_all(self) -> None:
        self._stop.set()
        with self._lock:
            self._supervised.clear()
        for svc in reversed(list(self.services.values())):
            svc.stop()
        for server in reversed(list(self.servers.values())):
            server.stop()


# --- regions ------------------------------------------------------------------------------------
def grid_regions(count: int) -> list[Region]:
    """The 14 regions of Senegal, then deterministic extra regions on a 0.25 degree grid
    spiralling out from the middle of the country (lat 14.5, lon -14.5)."""
    regions = list(load_regions())
    taken = {(round(r.lat * 4), round(r.lon * 4)) for r in regions}
    ring = 0
    while len(regions) < count:
        ring += 1
        cells = [(dy, dx) for dy in range(-ring, ring + 1) for dx in range(-ring, ring + 1)
                 if max(abs(dy), abs(dx)) == ring]
        for dy, dx in cells:
            if len(regions) >= count:
                break
            lat, lon = 14.5 + dy * 0.25, -14.5 + dx * 0.25
            if (round(lat * 4), round(lon * 4)) in taken:
                continue
            ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
            regions.append(Region(id=f"grid-{len(regions):04d}", name=f"Grid {abs(lat):.2f}{ns} {abs(lon):.2f}{ew}",
                                  lat=lat, lon=lon, coastal=lon < -16.9, timezone_offset=0))
    return regions[:count]


# --- feeding Kafka --------------------------------------------------------------------------------
MALFORMED_KINDS = ("not-json", "missing-field", "out-of-range", "wrong-type", "not-utf8", "not-an-object")


def malformed_payload(kind: str, good: dict, n: int) -> bytes:
    """One malformed message of a given kind, unique by `n` (so each can be traced)."""
    if kind == "not-json":
        return f"not json #{n} {{".encode()
    if kind == "missing-field":
        return json.dumps({**{k: v for k, v in good.items() if k != "pressure"}, "batch_id": f"bad-{n}"}).encode()
    if kind == "out-of-range":
        return json.dumps({**good, "temp": 900 + n % 50, "batch_id": f"bad-{n}"}).encode()
    if kind == "wrong-type":
        return json.dumps({**good, "humidity": f"very humid #{n}", "batch_id": f"bad-{n}"}).encode()
    if kind == "not-utf8":
        return b"\xff\xfe\xfa bad bytes #" + str(n).encode()
    return json.dumps([n, "a list is not an observation"]).encode()


def poison_payloads(good: dict) -> list[tuple[str, bytes]]:
    """Values that once stopped the pipeline for good (issue 12) and their relatives: each must
    cost only itself. `good` is a valid record; most poison is that record with one field made hostile."""
    def variant(**changes) -> bytes:
        return json.dumps({**good, **changes}, allow_nan=True).encode("utf-8", "surrogatepass")

    huge_number = variant(temp="@").replace(b'"temp": "@"', b'"temp": ' + b"9" * 5000)
    return [
        ("deep-nesting", b"[" * 100_000),
        ("huge-number", huge_number),
        ("year-1", variant(observed_at="0001-01-01T00:00:00+14:00")),
        ("year-9999", variant(observed_at="9999-12-31T23:30:00Z")),
        ("far-future", variant(observed_at="2190-01-01T00:00:00Z")),
        ("binary-400kb", b"\xff\xfe" * 200_000),
        ("nan", variant(temp=float("nan"))),
        ("nul-in-text", variant(region_name="Dakar\x00")),
        ("lone-surrogate", variant(weather_description="\ud800")),
        ("huge-string", variant(weather_description="x" * 300_000)),
        ("empty", b""),
        ("deep-object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ]


@dataclass
class Malformed:
    kind: str
    partition: int
    offset: int


@dataclass
class Feeder:
    """Publishes one simulated step of every region every `tick_seconds` (KafkaPublisher, acks=all,
    idempotent), with `produced_at` = the wall clock at publication. Records Kafka did not
    acknowledge are retried on the next tick, so `produced` ends up holding every acknowledged
    observation (a record sent twice is the same record: MongoDB must store it once)."""

    settings: Settings
    regions: list[Region]
    start: datetime
    step_minutes: float = 20  # simulated time per tick (may be changed between ticks)
    tick_seconds: float = 0.5
    seed: int = 42
    produced: list = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    send_failures: int = 0

    def __post_init__(self):
        self.models = [RegionSimulator(r, self.seed) for r in self.regions]
        self.sim_time = self.start
        self.publisher = KafkaPublisher(self.settings, flush_timeout_s=10.0)
        self._retry: list = []
        self._template: dict | None = None  # a valid record, altered to make malformed ones
        self._malformed_due = 0
        self._malformed_sent = 0
        self._poison_due = 0
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._running.set()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    # --- control -----------------------------------------------------------------------------
    def backfill(self, hours: float) -> None:
        """Publish `hours` of history at once (before start), so forecasts have data from the first batch."""
        for _ in range(int(hours * 60 // self.step_minutes)):
            self._tick()
        while self._retry:
            time.sleep(0.5)
            self._tick(new=False)

    def begin(self) -> "Feeder":
        self._thread.start()
        return self

    def pause(self, timeout: float = 120.0) -> None:
        """Stop feeding after the tick in flight, once every record is acknowledged."""
        self._idle.clear()
        self._running.clear()
        if not self._idle.wait(timeout):
            raise TimeoutError("the feeder did not settle (Kafka unreachable?)")

    def resume(self) -> None:
        self._running.set()

    def inject_malformed(self, count: int) -> None:
        with self._lock:
            self._malformed_due += count

    def inject_poison(self, copies: int = 1) -> None:
        """Publish poison_payloads() `copies` times, mixed in with the next tick's valid records."""
        with self._lock:
            self._poison_due += copies

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(30)
        try:
            self.publisher.close()
        except Exception:  # noqa: BLE001 - Kafka may be gone at the end of a test
            pass

    # --- work --------------------------------------------------------------------------------
    @property
    def unique(self) -> dict[tuple[str, datetime], object]:
        return {(o.region_id, o.observed_at): o for o in self.produced}

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._running.is_set():
                if self._retry or self._malformed_due or self._poison_due:
                    self._tick(new=False)  # finish what was started before settling
                    if self._retry or self._malformed_due or self._poison_due:
                        time.sleep(0.5)
                        continue
                self._idle.set()
                self._running.wait()
                continue
            began = time.monotonic()
            self._tick()
            self._stop.wait(max(0.0, self.tick_seconds - (time.monotonic() - began)))
        self._idle.set()

    def _tick(self, new: bool = True) -> None:
        now = datetime.now(timezone.utc)
        observations = list(self._retry)
        if new:
            when = self.sim_time
            self.sim_time = when + timedelta(minutes=self.step_minutes)
            from meteoflow.contracts import Observation

            observations += [Observation(**m.observe(when), source="simulator", batch_id=f"feed-{when:%Y%m%dT%H%M}",
                                         produced_at=now) for m in self.models]
        observations = [o.model_copy(update={"produced_at": now}) for o in observations]
        errors = self.publisher.publish(Batch(batch_id="feeder", source="simulator", observations=observations))
        self.produced.extend(o for i, o in enumerate(observations) if i not in errors)
        self._retry = [o for i, o in enumerate(observations) if i in errors]
        self.send_failures += len(errors)
        if observations:
            self._template = observations[0].to_json_dict()
        self._send_malformed()

    def _send_malformed(self) -> None:
        with self._lock:
            due, poison = self._malformed_due, self._poison_due
        good = self._template
        if not (due or poison) or good is None:
            return
        # Mixed in: a few dozen per tick, between valid records.
        payloads = [(kind, malformed_payload(kind, good, self._malformed_sent + i))
                    for i, kind in ((i, MALFORMED_KINDS[(self._malformed_sent + i) % len(MALFORMED_KINDS)])
                                    for i in range(min(due, 50)))]
        if poison:
            payloads += poison_payloads(good)
        futures = []
        for kind, value in payloads:
            try:
                futures.append((kind, self.publisher.producer.send(self.settings.topic_observations,
                                                                   key=good["region_id"].encode(), value=value)))
            except Exception:  # noqa: BLE001 - Kafka down: try again next tick
                break
        try:
            self.publisher.producer.flush(timeout=10)
        except Exception:  # noqa: BLE001
            pass
        acked = {"malformed": 0, "poison": 0}
        for kind, future in futures:
            try:
                meta = future.get(timeout=0)
            except Exception:  # noqa: BLE001 - not acknowledged: it is sent again (a new message)
                continue
            self.malformed.append(Malformed(kind, meta.partition, meta.offset))
            acked["malformed" if kind in MALFORMED_KINDS else "poison"] += 1
        sent_malformed = sum(1 for kind, _ in futures if kind in MALFORMED_KINDS)
        with self._lock:
            self._malformed_due -= acked["malformed"]
            self._malformed_sent += sent_malformed
            if poison and acked["poison"] == len(payloads) - sent_malformed:
                self._poison_due -= 1  # the whole set went through; otherwise it is sent again


# --- waiting and figures ---------------------------------------------------------------------------
def wait_until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.5):
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a server restarting: keep polling
            last_error = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(every)


def percentile(values: Iterable[float], pct: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[int(pct) - 1]


def machine() -> dict[str, object]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    load = os.getloadavg()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "load_avg_1_5_15": [round(x, 2) for x in load], "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}"}


def seeded_moments(seed: int, count: int, low: float, high: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(count)]
