"""Browser-test fixtures: the web app served by `python -m webapp` over live data, and a
headless Chromium (Debian's package) driven by Playwright.

Two modes, chosen automatically (override with METEOFLOW_BROWSER_MODE=pipeline|seeded):
- pipeline: the real services run as subprocesses on the test stack — producer (simulator)
  -> Kafka -> streaming (Spark) -> MongoDB + forecasting API, and shipper -> Elasticsearch —
  used when their entry points exist. A region's data is stopped by restarting the producer
  with a regions file that no longer lists it.
- seeded: documents are written directly in the pipeline's shapes (seeding.py), with a
  thread that keeps every region but the stopped ones arriving.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from meteoflow.settings import REPO_ROOT, Settings
from tests.conftest import isolated_settings

CHROMIUM = os.environ.get("METEOFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
IMAGES = REPO_ROOT / "images"
PIPELINE_SERVICES = ("producer", "streaming", "elk.shipper", "forecasting_api")
# Four regions: 4 x 24 forecast points per batch stays under 100 upserts in one bulk write,
# which FerretDB 1.24 (SQLite) cannot do for existing documents (the database hangs).
PIPELINE_REGIONS = ["dakar", "thies", "saint-louis", "kaolack"]
SECRET_FIELDS = {"owm_api_key", "slack_webhook_url", "es_password", "mongo_uri_override"}


def has_entry_point(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ModuleNotFoundError:
        return False


def browser_mode() -> str:
    forced = os.environ.get("METEOFLOW_BROWSER_MODE")
    if forced:
        return forced
    return "pipeline" if all(has_entry_point(m) for m in PIPELINE_SERVICES) else "seeded"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `python -m <service>` subprocess load exactly `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METEOFLOW_")}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None or name in SECRET_FIELDS:
            continue
        env[info.alias or f"METEOFLOW_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Service:
    """One `python -m module` subprocess in its own process group, logging to a file."""

    def __init__(self, module: str, settings: Settings, log_dir: Path):
        self.module = module
        self.settings = settings
        self.log_path = log_dir / f"{module}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Service":
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], env=settings_env(self.settings), cwd=REPO_ROOT,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        out.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the service alone (it stops its own children, e.g. Spark's JVM), then
        whatever is left of its process group."""
        if self.proc is None:
            return
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(1)
        if self.proc.poll() is None:
            self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def get_json(url: str, timeout: float = 5):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_for(what: str, check: Callable[[], bool], timeout: float, services: list[Service] = (), step: float = 1.0):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        for svc in services:
            if not svc.alive():
                raise RuntimeError(f"{svc.module} exited while waiting for {what}:\n{svc.tail()}")
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last_error = exc
        time.sleep(step)
    logs = "\n".join(f"--- {s.module}\n{s.tail()}" for s in services)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})\n{logs}")


@dataclass
class LiveApp:
    mode: str
    url: str
    settings: Settings
    region_ids: list[str]
    forecast_region: str
    stale_region: str
    stop_region: Callable[[str], None]
    services: list[Service] = field(default_factory=list)

    @property
    def alerting(self) -> bool:
        return any(s.module == "elk.alerting" and s.alive() for s in self.services)

    def api(self, path: str):
        return get_json(self.url + path)


def write_regions(path: Path, ids: list[str]) -> None:
    from producer.regions import DEFAULT_REGIONS_FILE

    data = json.loads(Path(DEFAULT_REGIONS_FILE).read_text())
    data["regions"] = [r for r in data["regions"] if r["id"] in ids]
    path.write_text(json.dumps(data, indent=1))


@pytest.fixture(scope="session")
def built_frontend() -> Path:
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to build the web app for the browser tests (./run.sh installs Node.js)")
    from webapp.build import FRONTEND, build

    build()
    return FRONTEND / "dist"


@pytest.fixture(scope="module")
def live_app(stack: Settings, tmp_path_factory, built_frontend) -> LiveApp:
    from elk.templates import install_templates
    from meteoflow.kafka import ensure_topics

    mode = browser_mode()
    tmp = tmp_path_factory.mktemp("browser")
    interval = 5.0 if mode == "pipeline" else 3.0  # late after 2 intervals, silent after 4 (elk/alert_rules.yaml)
    settings = isolated_settings(
        stack, tmp,
        webapp_port=free_port(), forecast_api_port=free_port(), webapp_refresh_seconds=1.0,
        producer_source="simulator", simulator_interval_seconds=interval, simulator_speed=360_000.0,
        simulator_step_minutes=60, simulator_backfill_hours=36, regions_file=tmp / "regions.json",
        streaming_trigger_seconds=2.0, forecast_retry_seconds=10.0, run_dir=tmp / "run",
        alert_eval_interval_seconds=2.0,
    )
    ensure_topics(settings)
    install_templates(settings)
    services: list[Service] = []
    stopper = threading.Event()
    threads: list[threading.Thread] = []
    seeder = None
    try:
        if mode == "pipeline":
            write_regions(tmp / "regions.json", PIPELINE_REGIONS)
            api = Service("forecasting_api", settings, tmp).start()
            services.append(api)
            wait_for("the forecasting API", lambda: get_json(f"{settings.forecast_api_url}/health") is not None,
                     180, services)
            modules = ["elk.shipper", "streaming", "producer"]
            if has_entry_point("elk.alerting"):
                modules.insert(0, "elk.alerting")
            for module in modules:
                services.append(Service(module, settings, tmp).start())
            region_ids, forecast_region, stale_region = PIPELINE_REGIONS, "dakar", "kaolack"

            def stop_region(region_id: str) -> None:
                producer = next(s for s in services if s.module == "producer")
                producer.stop()
                write_regions(tmp / "regions.json", [r for r in PIPELINE_REGIONS if r != region_id])
                live = settings.model_copy(update={"simulator_backfill_hours": 0})
                services.append(Service("producer", live, tmp).start())
        else:
            from tests.browser.seeding import Seeder

            seeder = Seeder(settings)
            history = seeder.history(hours=48, step_minutes=30)
            seeder.store(history)
            latest = max(o.observed_at for o in history)
            for region_id, *_ in seeder.regions:
                seeder.forecast(region_id, latest, hours=24)
            seeder.streaming_batches(12)
            seeder.deadletters(2)
            from tests.browser.seeding import utcnow
            from datetime import timedelta

            seeder.alert("arrival_lag", "ziguinchor", "resolved", utcnow() - timedelta(hours=3),
                         "Ziguinchor: observations arrived 2 h late", resolved_at=utcnow() - timedelta(hours=2))
            region_ids = [r[0] for r in seeder.regions]
            forecast_region, stale_region = "dakar", "kaolack"
            stopped: set[str] = set()

            def feed() -> None:
                while not stopper.wait(1.0):
                    try:
                        seeder.tick([r for r in region_ids if r not in stopped])
                    except Exception as exc:  # noqa: BLE001 - keep feeding; the test sees staleness
                        print(f"seeding tick failed: {exc}", file=sys.stderr)

            threads.append(threading.Thread(target=feed, name="seed-feed", daemon=True))
            threads[-1].start()

            def stop_region(region_id: str) -> None:
                stopped.add(region_id)

        webapp = Service("webapp", settings, tmp).start()
        services.append(webapp)
        url = f"http://{settings.bind_host}:{settings.webapp_port}"
        wait_for("the web app", lambda: get_json(f"{url}/health")["frontend_built"], 60, services)

        def every_region_has_a_temperature() -> bool:
            rows = {r["region_id"]: r for r in get_json(f"{url}/api/regions")["regions"]}
            return all(rows.get(r, {}).get("latest") and rows[r]["freshness"] == "fresh" for r in region_ids)

        wait_for("every region's first observation", every_region_has_a_temperature, 420, services, step=2)
        yield LiveApp(mode, url, settings, region_ids, forecast_region, stale_region, stop_region, services)
    finally:
        stopper.set()
        for t in threads:
            t.join(10)
        for svc in reversed(services):
            svc.stop()
        if seeder is not None:
            seeder.close()


def webapp_settings(stack: Settings, tmp_path: Path, **overrides) -> Settings:
    """Isolated settings for one web app of a test, polling every second on a port of its own."""
    return isolated_settings(stack, tmp_path, webapp_port=free_port(), webapp_refresh_seconds=1.0, **overrides)


def seeded_app_settings(stack: Settings, tmp_path: Path) -> Settings:
    """webapp_settings for pages over seeded documents: a live-looking OpenWeatherMap schedule (every
    15 min, so hours-old seeds read as they would in production), Elasticsearch templates installed."""
    from elk.templates import install_templates

    settings = webapp_settings(stack, tmp_path, producer_source="openweathermap", producer_interval_seconds=900.0)
    install_templates(settings)
    return settings


@contextmanager
def serving(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The built app served by `python -m webapp` over `settings`, until the block ends: yields its URL."""
    svc = Service("webapp", settings, tmp_path).start()
    url = f"http://{settings.bind_host}:{settings.webapp_port}"
    try:
        wait_for("the web app", lambda: get_json(f"{url}/health")["frontend_built"], 60, [svc])
        yield url
    finally:
        svc.stop()


@pytest.fixture
def start_webapp(stack, tmp_path, built_frontend):
    """`start(settings=None, **overrides) -> url`: serves the built app with `python -m webapp` over
    `settings` (default: webapp_settings with the overrides); stopped after the test."""
    started: list[Service] = []

    def start(settings: Settings | None = None, **overrides) -> str:
        settings = settings or webapp_settings(stack, tmp_path, **overrides)
        svc = Service("webapp", settings, tmp_path).start()
        started.append(svc)
        url = f"http://{settings.bind_host}:{settings.webapp_port}"
        wait_for("the web app", lambda: get_json(f"{url}/health")["status"] == "ok", 60, [svc])
        return url

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (./run.sh test does)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    pg = context.new_page()
    # Shown by pytest when a test fails: what the browser said, and what it showed.
    pg.on("console", lambda msg: print(f"[browser console] {msg.type}: {msg.text}"))
    pg.on("pageerror", lambda err: print(f"[browser page error] {err}"))
    pg.on("requestfailed", lambda req: print(f"[browser request failed] {req.url}: {req.failure}"))
    # The app must work under the server's Content-Security-Policy: a blocked script, style or
    # request is reported on the console (and as a securitypolicyviolation event), and fails the test.
    violations: list[str] = []
    pg.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield pg
    try:
        pg.screenshot(path=str(tmp_path / "last.png"))
        print(f"[browser] last screen: {tmp_path / 'last.png'}; text: {pg.inner_text('body')[:600]!r}")
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        print(f"[browser] no last screen: {exc}")
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture(scope="session")
def images_dir() -> Path:
    IMAGES.mkdir(exist_ok=True)
    return IMAGES
