"""compose.yaml through a real Docker Compose v2 (no engine needed: `config` only).

The Compose is the Docker CLI's plugin, or v2 built from the Go module proxy by
docker/compose_tool.py and cached under .cache/compose (minutes and network the first time):
that is why these checks live here and not in tests/unit. They prove that the offline resolver
the unit tests read (docker/compose_tool.resolve) agrees with Compose itself, and drive
./run.sh docker's wrapper (docker/docker.sh) through the real Docker CLI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from meteoflow.settings import REPO_ROOT, load_settings
from tests.docker_scripts import load_script

pytestmark = pytest.mark.integration

compose_tool = load_script("compose_tool")
ENV_EXAMPLE = REPO_ROOT / ".env.example"

# What the unit tests read of each service: the resolver must give Compose's values for these.
COMPARED = ("image", "user", "restart", "pull_policy", "environment", "ports", "cap_drop", "cap_add", "security_opt",
            "mem_limit", "cpus", "privileged", "entrypoint", "command")


def projection(services: dict) -> dict:
    out = {}
    for name, svc in services.items():
        view = {key: svc.get(key) for key in COMPARED}
        view["cpus"] = float(svc["cpus"]) if svc.get("cpus") is not None else None
        view["depends_on"] = {dep: spec["condition"] for dep, spec in (svc.get("depends_on") or {}).items()}
        view["build"] = (svc.get("build") or {}).get("dockerfile")
        check = svc.get("healthcheck") or {}
        # `config` prints a container's own `$` escaped again as `$$`.
        view["healthcheck"] = [str(part).replace("$$", "$") for part in check.get("test") or []]
        for key in ("command", "entrypoint"):
            if isinstance(view[key], list):
                view[key] = [str(part).replace("$$", "$") for part in view[key]]
        out[name] = view
    return out


def real_config(env_file: Path) -> dict:
    return compose_tool.resolved_config(load_settings(), REPO_ROOT, env_file)


def test_the_offline_resolver_agrees_with_compose():
    real = projection(real_config(ENV_EXAMPLE)["services"])
    offline = projection(compose_tool.resolve(REPO_ROOT, ENV_EXAMPLE)["services"])
    assert set(real) == set(offline)
    differences = {name: {k: (real[name][k], offline[name][k]) for k in real[name] if real[name][k] != offline[name][k]}
                   for name in real}
    assert not {name: d for name, d in differences.items() if d}


def test_compose_rejects_a_missing_password(tmp_path):
    """Compose itself refuses the file when a required secret is absent, as the resolver does."""
    env = tmp_path / "partial.env"
    env.write_text("\n".join(l for l in ENV_EXAMPLE.read_text().splitlines() if not l.startswith("ELASTIC_PASSWORD=")))
    result = compose_tool.run_compose(load_settings(), REPO_ROOT, env, ["config"])
    assert result.returncode != 0
    assert "ELASTIC_PASSWORD" in result.stderr


def test_publish_host_and_ports_are_configurable(tmp_path):
    env = tmp_path / "custom.env"
    env.write_text(ENV_EXAMPLE.read_text() + "\nPUBLISH_HOST=0.0.0.0\nWEBAPP_PUBLISHED_PORT=18080\n")
    result = compose_tool.run_compose(load_settings(), REPO_ROOT, env, ["config"])
    assert result.returncode == 0, result.stderr
    ports = yaml.safe_load(result.stdout)["services"]["webapp"]["ports"]
    assert ports[0]["host_ip"] == "0.0.0.0" and str(ports[0]["published"]) == "18080" and ports[0]["target"] == 8080


def _clean_env(home: Path) -> dict[str, str]:
    # Only what Compose needs, so no METEOFLOW_* of the developer's shell leaks into the check.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


def test_run_sh_docker_creates_env_refuses_placeholders_then_validates(tmp_path):
    """docker/docker.sh through the real Docker CLI, with Compose v2 as its plugin."""
    docker = shutil.which("docker")
    compose = compose_tool.compose_command(load_settings())
    if docker is None or len(compose) != 1:
        pytest.skip("needs the Docker CLI and a standalone Compose v2 binary to act as its plugin")
    home = tmp_path / "home"
    (home / ".docker" / "cli-plugins").mkdir(parents=True)
    shutil.copy2(compose[0], home / ".docker" / "cli-plugins" / "docker-compose")
    project = tmp_path / "meteoflow"
    project.mkdir()
    for name in ("compose.yaml", ".env.example"):
        shutil.copy2(REPO_ROOT / name, project / name)
    for folder in ("docker", "elk"):
        shutil.copytree(REPO_ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    script = project / "docker" / "docker.sh"

    def run(*args):
        return subprocess.run([str(script), *args], capture_output=True, text=True, env=_clean_env(home), timeout=120)

    first = run("up")
    assert first.returncode == 2 and "created .env" in first.stderr
    assert (project / ".env").read_text() == ENV_EXAMPLE.read_text()
    assert oct((project / ".env").stat().st_mode & 0o777) == "0o600"
    second = run("up")
    assert second.returncode == 2 and "ELASTIC_PASSWORD" in second.stderr and "change-me" in second.stderr
    env = (project / ".env").read_text()
    (project / ".env").write_text(re.sub(r"=change-me-([\w-]+)", r"=s3cret-\1-4567890123456789012345678", env))
    resolved = run("config", "--services")
    assert resolved.returncode == 0, resolved.stderr
    assert set(resolved.stdout.split()) >= {"kafka", "webapp", "kibana"}
