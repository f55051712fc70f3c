"""compose.yaml and the Dockerfiles, checked without a Docker engine.

A real Compose implementation (Compose v2 from the Docker CLI plugin, or built from the Go
module proxy by deploy.compose_tool and cached under .cache/compose) resolves compose.yaml
with the values of .env.example; the checks below read what it resolved, so anchors,
merges and interpolation are Compose's, not ours. What cannot be checked here: building
the images and running the containers (no engine on this machine).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy import compose_tool
from deploy.compose_tool import compose_command
from meteoflow.settings import REPO_ROOT, load_settings

COMPOSE_FILE = REPO_ROOT / "compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKER_DIR = REPO_ROOT / "docker"


def _load_script(name: str, path: Path):
    # docker/ is not a package (the images run these files directly).
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


docker_requirements = _load_script("docker_requirements", DOCKER_DIR / "requirements.py")

# The only published ports: web app, Kibana, forecasting API docs, and the Prometheus exporters of
# the loop services (docs/docker.md).
PUBLISHED = {"webapp": {8080}, "kibana": {5601}, "forecasting_api": {8000},
             "producer": {9191}, "streaming": {9192}, "alerting": {9194}}

# Images we do not build. Each is an official image that does not run its server as root:
OFFICIAL_NON_ROOT = {
    "apache/kafka": "the image sets USER appuser",
    "mongo": "the entrypoint starts as root only to fix the data folder, then execs mongod as `mongodb` (gosu)",
    "docker.elastic.co/elasticsearch/elasticsearch": "the image runs as `elasticsearch` (uid 1000) and refuses root",
    "docker.elastic.co/logstash/logstash": "the image runs as `logstash` (uid 1000)",
    "docker.elastic.co/kibana/kibana": "the image runs as `kibana` (uid 1000)",
}

ONE_SHOT = {"kafka-init", "es-setup", "es-init", "kibana-setup"}
MODULE_OF = {  # Meteoflow service -> its `python -m` module
    "producer": "producer",
    "streaming": "streaming",
    "forecasting_api": "forecasting_api",
    "webapp": "webapp",
    "alerting": "elk.alerting",
}


def _clean_env(home: Path | None = None) -> dict[str, str]:
    # Only what Compose needs, so no METEOFLOW_* of the developer's shell leaks into the check.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home or Path.home())}


def run_compose(args: list[str], env_file: Path) -> subprocess.CompletedProcess:
    return compose_tool.run_compose(load_settings(), REPO_ROOT, env_file, args)


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_tool.resolved_config(load_settings(), REPO_ROOT, ENV_EXAMPLE)


@pytest.fixture(scope="module")
def services(config) -> dict:
    return config["services"]


def test_compose_rejects_a_missing_password(tmp_path):
    """The check is real: Compose itself refuses the file when a required secret is absent."""
    env = tmp_path / "partial.env"
    env.write_text("\n".join(l for l in ENV_EXAMPLE.read_text().splitlines() if not l.startswith("ELASTIC_PASSWORD=")))
    result = run_compose(["config"], env)
    assert result.returncode != 0
    assert "ELASTIC_PASSWORD" in result.stderr


def test_the_expected_services_exist(services):
    expected = {"kafka", "mongodb", "elasticsearch", "logstash", "kibana", *ONE_SHOT, *MODULE_OF}
    assert set(services) == expected
    assert "shipper" not in services  # Logstash plays its role in Docker


def test_long_running_services_have_health_checks_and_one_shots_do_not_restart(services):
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no", f"{name} is a one-shot setup job: restart must be 'no'"
            assert not svc.get("ports"), f"{name} publishes ports"
            continue
        check = svc.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: health check {check['test']!r}"
        assert svc.get("restart") == "unless-stopped", f"{name} is not restarted after a crash"


def test_start_order_waits_on_health_or_completion(services):
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            condition = spec["condition"]
            if dep in ONE_SHOT:
                assert condition == "service_completed_successfully", f"{name} -> {dep}: {condition}"
            else:
                assert condition == "service_healthy", f"{name} -> {dep}: {condition}"
                assert services[dep].get("healthcheck"), f"{name} waits for {dep}'s health, which has no check"
    # What each service cannot work without is started (and ready) before it.
    needs = {
        "kafka-init": {"kafka"}, "es-setup": {"elasticsearch"}, "es-init": {"es-setup"},
        "kibana": {"es-setup"}, "kibana-setup": {"kibana"},
        "logstash": {"kafka-init", "es-init"}, "alerting": {"kafka-init", "es-init"},
        "streaming": {"kafka-init", "mongodb", "forecasting_api"}, "producer": {"kafka-init"},
        "webapp": {"mongodb", "es-init"}, "forecasting_api": {"kafka-init"},
    }
    for name, deps in needs.items():
        assert deps <= set(services[name].get("depends_on") or {}), f"{name} does not wait for {deps}"


def _dependency_cycle(services) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for dep in services[node].get("depends_on") or {}:
            if state.get(dep) == 1:
                return path + [dep]
            if dep not in state and (cycle := visit(dep, path + [dep])):
                return cycle
        state[node] = 2
        return None

    for name in services:
        if name not in state and (cycle := visit(name, [name])):
            return cycle
    return None


def test_depends_on_has_no_cycle(services):
    assert _dependency_cycle(services) is None


def test_only_documented_ports_are_published_on_loopback(services):
    published = {}
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond 127.0.0.1 by default"
            published.setdefault(name, set()).add(int(port["target"]))
            assert str(port["published"]) == str(port["target"]), f"{name}: default host port differs from {port['target']}"
    assert published == PUBLISHED


def test_the_published_metrics_ports_reach_the_exporters(services):
    """A worker's exporter listens beyond the container's loopback on the port compose publishes;
    its other servers (the Spark driver) stay on METEOFLOW_BIND_HOST."""
    for name in ("producer", "streaming", "alerting"):
        env = services[name]["environment"]
        [port] = PUBLISHED[name]
        assert env[f"METEOFLOW_{name.upper()}_METRICS_PORT"] == str(port), name
        assert env["METEOFLOW_METRICS_BIND_HOST"] == "0.0.0.0" and env["METEOFLOW_BIND_HOST"] == "127.0.0.1", name


def test_publish_host_and_ports_are_configurable(tmp_path):
    env = tmp_path / "custom.env"
    env.write_text(ENV_EXAMPLE.read_text() + "\nPUBLISH_HOST=0.0.0.0\nWEBAPP_PUBLISHED_PORT=18080\n")
    result = run_compose(["config"], env)
    assert result.returncode == 0, result.stderr
    ports = yaml.safe_load(result.stdout)["services"]["webapp"]["ports"]
    assert ports[0]["host_ip"] == "0.0.0.0" and str(ports[0]["published"]) == "18080" and ports[0]["target"] == 8080


def _image_name(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return name, tag


def test_images_are_pinned_and_the_elastic_stack_matches(services):
    elastic = set()
    for name, svc in services.items():
        image_name, tag = _image_name(svc["image"])
        if "build" in svc:
            assert image_name.startswith("meteoflow/"), f"{name} builds an image named {svc['image']}"
            assert svc.get("pull_policy") == "build", f"{name} could be pulled from a registry instead of built"
            continue
        assert image_name in OFFICIAL_NON_ROOT, f"{name} uses {svc['image']}, not a known official image"
        assert tag and tag != "latest", f"{name}: {svc['image']} is not pinned"
        if image_name.startswith("docker.elastic.co/"):
            elastic.add(tag)
    assert elastic == {"8.19.7"}
    assert _image_name(services["kafka"]["image"]) == ("apache/kafka", "4.1.1")
    assert _image_name(services["mongodb"]["image"])[1].startswith("8")


# --- nobody runs as root -----------------------------------------------------------------

def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """[[(INSTRUCTION, arguments), ...] per stage], continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, args.strip()))
        elif instruction != "ARG":
            raise AssertionError(f"{path.name}: {instruction} before the first FROM")
    return stages


def final_user(path: Path) -> str | None:
    users = [args for instruction, args in dockerfile_stages(path)[-1] if instruction == "USER"]
    return users[-1] if users else None


def test_meteoflow_images_run_as_a_non_root_user(services):
    built = {name: svc for name, svc in services.items() if "build" in svc}
    assert set(MODULE_OF) <= set(built)
    for name, svc in built.items():
        dockerfile = REPO_ROOT / svc["build"]["dockerfile"]
        user = final_user(dockerfile)
        assert user and user.split(":")[0] not in ("root", "0"), f"{dockerfile.name} runs as {user or 'root (no USER)'}"
        assert str(svc.get("user", user)).split(":")[0] not in ("root", "0"), f"compose runs {name} as root"


def test_official_images_are_not_forced_to_root(services):
    for name, svc in services.items():
        if "build" not in svc:
            assert str(svc.get("user", "")).split(":")[0] not in ("root", "0"), f"compose runs {name} as root"


def test_a_dockerfile_without_user_is_caught(tmp_path):
    """The non-root check fails where it should: a final stage with no USER, or USER root."""
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:3.11-slim AS a\nUSER nobody\nFROM python:3.11-slim\nCMD [\"python\"]\n")
    assert final_user(bad) is None
    bad.write_text("FROM python:3.11-slim\nUSER app\nRUN true\nUSER root\n")
    assert final_user(bad) == "root"


# --- images: pinned, dependency layer before the source ------------------------------------

def _dockerfile_for(service: str) -> Path:
    return DOCKER_DIR / f"{service}.Dockerfile"


@pytest.mark.parametrize("service", sorted(MODULE_OF))
def test_dockerfile_layers_and_pins(service, services):
    path = _dockerfile_for(service)
    assert (REPO_ROOT / services[service]["build"]["dockerfile"]) == path
    text = path.read_text()
    # Base images pinned to a patch version through ARG defaults.
    for arg in re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", text, re.M):
        assert re.search(r":\d+\.\d+\.\d+-", arg[1]), f"{path.name}: {arg[0]}={arg[1]} is not pinned to a patch version"
    assert "python:3.11." in text
    stages = dockerfile_stages(path)
    deps = next(s for s in stages if s[0][1].endswith(" AS deps"))
    copied = [args for instruction, args in deps if instruction == "COPY"]
    assert copied == ["pyproject.toml docker/requirements.py /build/"], f"{path.name}: the deps stage copies {copied}"
    assert any("requirements.py " + service in args for instruction, args in deps if instruction == "RUN")
    final = stages[-1]
    order = [args for instruction, args in final if instruction == "COPY"]
    assert order[0].startswith("--from=deps "), f"{path.name}: the dependencies are not the first layer of the final stage"
    cmd = [args for instruction, args in final if instruction == "CMD"][-1]
    assert cmd == f'["python", "-m", "{MODULE_OF[service]}"]'


def test_requirements_are_pinned_subsets_of_pyproject():
    SERVICE_REQUIREMENTS, pinned, requirements = (
        docker_requirements.SERVICE_REQUIREMENTS, docker_requirements.pinned, docker_requirements.requirements)
    everything = pinned(REPO_ROOT / "pyproject.toml")
    for service in SERVICE_REQUIREMENTS:
        lines = requirements(service, REPO_ROOT / "pyproject.toml")
        assert lines and all("==" in line for line in lines)
        assert set(lines) <= set(everything.values())
    assert "pyspark==" not in " ".join(requirements("producer", REPO_ROOT / "pyproject.toml"))


# --- every import a container runs is in its image -----------------------------------------

FIRST_PARTY = {p.name for p in REPO_ROOT.iterdir() if (p / "__init__.py").is_file()}


def module_file(module: str) -> Path | None:
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path, module: str) -> set[str]:
    """Absolute module names imported by a file (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # `from pkg import name` may import the submodule pkg.name.
            found.update(f"{target}.{alias.name}" for alias in node.names if module_file(f"{target}.{alias.name}"))
    return found


def import_closure(entry_modules: list[str], extra_files: list[Path] = ()) -> tuple[set[Path], set[str]]:
    """(first-party files, third-party top-level names) reachable from the entry points."""
    files: set[Path] = set()
    third: set[str] = set()
    todo = [(module_file(m), m) for m in entry_modules] + [(f, f.stem) for f in extra_files]
    while todo:
        path, module = todo.pop()
        assert path is not None, f"module {module} not found"
        if path in files:
            continue
        files.add(path)
        for name in imports_of(path, module):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a package's __init__ runs before its submodules
                    sub = ".".join(parts[:i])
                    if (f := module_file(sub)) is not None:
                        todo.append((f, sub))
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    return files, third


def installed_closure(requirements: list[str]) -> set[str]:
    """Normalized names of the distributions pip installs for these requirements (with their dependencies)."""
    normalize = docker_requirements.normalize
    seen: set[str] = set()
    todo = [re.split(r"[=<>!~\[; ]", r, maxsplit=1)[0] for r in requirements]
    while todo:
        name = normalize(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo.extend(re.split(r"[=<>!~\[; (]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r)
    return seen


def copied_packages(dockerfile: Path) -> set[str]:
    """Top-level source folders the final stage copies from the build context."""
    copied = set()
    for instruction, args in dockerfile_stages(dockerfile)[-1]:
        if instruction == "COPY" and not args.startswith("--from"):
            copied.update(src.rstrip("/").split("/")[0] for src in args.split()[:-1])
    return copied


# One-shot jobs run in these images too (compose.yaml): their imports must be there as well.
EXTRA_ENTRIES = {"producer": ["meteoflow.kafka"], "alerting": ["elk.templates", "elk.kibana.setup"]}


@pytest.mark.parametrize("service", sorted(MODULE_OF))
def test_every_import_of_a_service_is_in_its_image(service):
    SERVICE_REQUIREMENTS, normalize = docker_requirements.SERVICE_REQUIREMENTS, docker_requirements.normalize
    dockerfile = _dockerfile_for(service)
    entries = [MODULE_OF[service] + ".__main__", *EXTRA_ENTRIES.get(service, [])]
    files, third = import_closure(entries, [DOCKER_DIR / "healthcheck.py"])
    copied = copied_packages(dockerfile)
    missing_source = sorted({f.relative_to(REPO_ROOT).parts[0] for f in files} - copied)
    assert not missing_source, f"{dockerfile.name} does not copy {missing_source}, which {service} imports"

    installed = installed_closure(SERVICE_REQUIREMENTS[service])
    dists = importlib.metadata.packages_distributions()
    missing = {}
    for top in sorted(third):
        owners = {normalize(d) for d in dists.get(top, [])}
        assert owners, f"{service} imports {top!r}, which no installed distribution provides"
        if not owners & installed:
            missing[top] = sorted(owners)
    assert not missing, f"{service} imports {missing} but docker/requirements.py does not install them"


def test_the_streaming_connector_stage_copies_what_stack_install_imports():
    """The image resolves the Kafka connector with stack.install at build time: that stage copies
    only the sources it imports (to stay cached), so a new import must be copied there too."""
    connector = next(stage for stage in dockerfile_stages(_dockerfile_for("streaming")) if stage[0][1].endswith(" AS connector"))
    copied: set[Path] = set()
    for instruction, args in connector:
        if instruction == "COPY" and not args.startswith("--from"):
            for src in args.split()[:-1]:
                source = REPO_ROOT / src
                copied.update(source.rglob("*.py") if source.is_dir() else [source])
    files, _ = import_closure(["stack.install"])
    missing = sorted(str(f.relative_to(REPO_ROOT)) for f in files - copied)
    assert not missing, f"streaming.Dockerfile's connector stage does not copy {missing}, which stack.install imports"


def test_the_closure_sees_a_missing_dependency():
    """The import check fails where it should: the producer's source does import `requests`."""
    _, third = import_closure(["producer.__main__"])
    assert "requests" in third and "kafka" in third
    assert "normalize" not in installed_closure(["requests==2.34.2"])
    assert "urllib3" in installed_closure(["requests==2.34.2"])


# --- the wrapper: ./run.sh docker ---------------------------------------------------------------

def test_run_sh_docker_creates_env_refuses_placeholders_then_validates(tmp_path):
    """deploy/docker.sh through the real Docker CLI, with Compose v2 as its plugin."""
    docker = shutil.which("docker")
    compose = compose_command(load_settings())
    if docker is None or len(compose) != 1:
        pytest.skip("needs the Docker CLI and a standalone Compose v2 binary to act as its plugin")
    home = tmp_path / "home"
    (home / ".docker" / "cli-plugins").mkdir(parents=True)
    shutil.copy2(compose[0], home / ".docker" / "cli-plugins" / "docker-compose")
    project = tmp_path / "meteoflow"
    project.mkdir()
    for name in ("compose.yaml", ".env.example"):
        shutil.copy2(REPO_ROOT / name, project / name)
    for folder in ("docker", "deploy", "elk"):
        shutil.copytree(REPO_ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    script = project / "deploy" / "docker.sh"

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


# --- docker/healthcheck.py ---------------------------------------------------------------------

healthcheck = _load_script("docker_healthcheck", DOCKER_DIR / "healthcheck.py")


def test_healthcheck_parses_the_wiring():
    Endpoint = healthcheck.Endpoint
    assert healthcheck.bootstrap_endpoints("kafka:9092, other:19092,solo") == [
        Endpoint("Kafka", "kafka", 9092), Endpoint("Kafka", "other", 19092), Endpoint("Kafka", "solo", 9092)]
    fake_password = "not-a-secret"  # built up so no credential-looking URI sits in the repo
    uri = "mongodb://meteoflow:" + fake_password + "@mongodb:27017/?authSource=admin"
    assert healthcheck.url_endpoint("MongoDB", uri, 27017) == Endpoint("MongoDB", "mongodb", 27017)
    assert healthcheck.url_endpoint("Elasticsearch", "http://elasticsearch:9200", 9200).port == 9200
    with pytest.raises(ValueError, match="no host"):
        healthcheck.url_endpoint("MongoDB", "not a url", 27017)
    settings = load_settings(kafka_bootstrap_servers="kafka:9092", METEOFLOW_MONGO_URI=uri)
    assert [e.what for e in healthcheck.dependencies("streaming", settings)] == ["Kafka", "MongoDB"]
    with pytest.raises(ValueError, match="unknown worker"):
        healthcheck.dependencies("shipper", settings)


def test_healthcheck_reports_what_is_missing(tmp_path):
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        up = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{port}", METEOFLOW_MONGO_URI=f"mongodb://127.0.0.1:{port}/",
                           streaming_checkpoint_dir=tmp_path / "checkpoint")
        assert healthcheck.check("producer", up) == []
        problems = healthcheck.check("streaming", up)
        assert len(problems) == 1 and "has not started" in problems[0]
        (tmp_path / "checkpoint").mkdir()
        (tmp_path / "checkpoint" / "metadata").write_text("{}")
        assert healthcheck.check("streaming", up) == []
    down = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    assert "unreachable" in healthcheck.check("producer", down, timeout=1)[0]
    http_down = load_settings(forecast_api_port=port)
    assert f"127.0.0.1:{port}/health" in healthcheck.check("forecasting_api", http_down, timeout=1)[0]
