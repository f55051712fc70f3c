import sys

import pytest

from meteoflow.settings import load_settings
from stack.process import StackError
from stack.services import SERVICES, Service, services


def _service(tmp_path, code: str, min_uptime_seconds: float = Service.min_uptime_seconds) -> Service:
    class Probe(Service):
        name = "probe"
        module = "probe"

        def command(self):
            return [sys.executable, "-c", code]

    Probe.min_uptime_seconds = min_uptime_seconds
    Probe.health_poll_seconds = 0.05
    return Probe(load_settings(run_dir=tmp_path))


def test_a_service_that_dies_at_start_is_an_error_with_its_log(tmp_path):
    # Dies after it was seen running, well within the uptime that would make it healthy.
    svc = _service(tmp_path, "import sys, time; time.sleep(0.3); print('bad setting X'); sys.exit(4)")
    with pytest.raises(StackError) as err:
        svc.start(log=lambda _: None)
    assert "exited with code 4" in str(err.value) and "bad setting X" in str(err.value)
    assert svc.recorded_pid() is None


def test_a_service_that_stays_up_is_healthy_and_stops(tmp_path):
    svc = _service(tmp_path, "import time; time.sleep(60)", min_uptime_seconds=0.3)  # healthy sooner
    assert svc.start(log=lambda _: None) == "started"
    assert svc.status().state == "up"
    assert svc.start(log=lambda _: None) == "reused"
    assert svc.stop() is True
    assert svc.status().state == "down"


def test_every_pipeline_service_has_an_entry_point():
    settings = load_settings()
    assert [s.name for s in services(settings)] == list(SERVICES)


def test_every_service_module_is_installed_not_only_found_from_the_repo():
    # The supervisor starts services outside the repo's folder, where only the installed packages
    # (pyproject's find include) import: the rain_model service once crash-looped on "No module named batch".
    import tomllib

    from meteoflow.settings import REPO_ROOT

    include = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for service in SERVICES.values():
        assert f"{service.module.split('.')[0]}*" in include, f"{service.name}: {service.module} is not installed"
