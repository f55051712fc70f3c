"""compose.yaml and the Dockerfiles, checked without a Docker engine, offline.

docker/compose_tool.resolve() reads compose.yaml with the values of .env.example the way
`docker compose config` does (anchors, merges, interpolation, short port syntax); the checks
below read what it resolved. tests/integration/test_compose_engine.py proves that a real
Compose v2 resolves the file to the same values. What cannot be checked here: building the
images and running the containers (no engine on this machine).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from meteoflow.settings import REPO_ROOT, load_settings
from tests.docker_scripts import DOCKER_DIR, load_script
from tests.fakes.local_http import serve_thread

COMPOSE_FILE = REPO_ROOT / "compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

docker_requirements = load_script("requirements")
compose_tool = load_script("compose_tool")

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
# Meteoflow services that run another service's image with their own command.
SHARED_IMAGE = {"rain_model": ("streaming", ["python", "-m", "batch", "schedule"])}


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_tool.resolve(REPO_ROOT, ENV_EXAMPLE)


@pytest.fixture(scope="module")
def services(config) -> dict:
    return config["services"]


def test_a_missing_password_is_refused(tmp_path):
    """As Compose does: a required secret absent from the env file stops the resolution, by name."""
    env = tmp_path / "partial.env"
    env.write_text("\n".join(l for l in ENV_EXAMPLE.read_text().splitlines() if not l.startswith("ELASTIC_PASSWORD=")))
    with pytest.raises(compose_tool.ComposeError, match="ELASTIC_PASSWORD"):
        compose_tool.resolve(REPO_ROOT, env)


def test_interpolation_follows_compose():
    interpolate = compose_tool.interpolate
    values = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET:-d}-${EMPTY:-e}-${EMPTY-f}-$SET", values) == "x-d-e--x"
    assert interpolate("${SET:+yes}${UNSET:+no}|$$HOME|$${X}", values) == "yes|$HOME|${X}"
    assert interpolate("${UNSET:-${SET}}", values) == "x"
    with pytest.raises(compose_tool.ComposeError, match="EMPTY"):
        interpolate("${EMPTY:?set EMPTY}", values)
    assert interpolate("${EMPTY?unset only}", values) == ""
    assert compose_tool.memory_bytes("512m") == 512 * 2**20 and compose_tool.memory_bytes("2g") == 2**31


def test_the_expected_services_exist(services):
    expected = {"kafka", "mongodb", "elasticsearch", "logstash", "kibana", *ONE_SHOT, *MODULE_OF, *SHARED_IMAGE}
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
    ports = compose_tool.resolve(REPO_ROOT, env)["services"]["webapp"]["ports"]
    assert ports[0]["host_ip"] == "0.0.0.0" and str(ports[0]["published"]) == "18080" and ports[0]["target"] == 8080


def image_reference(image: str) -> tuple[str, str, str]:
    """`name[:tag][@sha256:digest]` -> (name, tag, digest)."""
    ref, _, digest = image.partition("@")
    name, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
    return name, tag, digest


# Images whose exact release tag is still re-pushed (Docker's official images rebuild theirs for
# base-OS updates): pinned by digest (docs/docker.md, "Refreshing the pins").
DIGEST_PINNED = {"mongo"}


def pin_problem(image: str) -> str | None:
    name, tag, digest = image_reference(image)
    if not re.fullmatch(r"\d+\.\d+\.\d+", tag):
        return f"{image}: the tag {tag or '(none)'} is not an exact release and may move"
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        return f"{image}: {digest} is not a sha256 digest"
    if name in DIGEST_PINNED and not digest:
        return f"{image}: the tag is re-pushed upstream; pin it by digest"
    return None


def test_the_pin_check_fails_on_floating_images():
    assert pin_problem("mongo:8.0") and pin_problem("mongo:8.0.28") and pin_problem("kafka:latest")
    assert pin_problem("mongo:8.0.28@sha256:abc")
    assert pin_problem("mongo:8.0.28@sha256:" + "0" * 64) is None
    assert pin_problem("apache/kafka:4.1.1") is None


def test_images_are_pinned_and_the_elastic_stack_matches(services):
    elastic = set()
    for name, svc in services.items():
        image_name, tag, _ = image_reference(svc["image"])
        if "build" in svc:
            assert image_name.startswith("meteoflow/"), f"{name} builds an image named {svc['image']}"
            assert svc.get("pull_policy") == "build", f"{name} could be pulled from a registry instead of built"
            continue
        assert image_name in OFFICIAL_NON_ROOT, f"{name} uses {svc['image']}, not a known official image"
        assert pin_problem(svc["image"]) is None, f"{name}: {pin_problem(svc['image'])}"
        if image_name.startswith("docker.elastic.co/"):
            elastic.add(tag)
    assert elastic == {"8.19.7"}
    assert image_reference(services["kafka"]["image"])[:2] == ("apache/kafka", "4.1.1")
    assert image_reference(services["mongodb"]["image"])[1].startswith("8.0.")


# --- least privilege: capabilities, privilege gain, resources, credentials ------------------------

# Capabilities a service may add back, each with the reason it proved it needs it. None today:
# every container runs as a non-root user from its first process (mongodb too: `user: 999:999`).
CAPABILITIES_NEEDED: dict[str, dict[str, str]] = {}


def hardening_problems(name: str, svc: dict) -> list[str]:
    problems = []
    if svc.get("cap_drop") != ["ALL"]:
        problems.append(f"{name}: cap_drop is {svc.get('cap_drop')}, not [ALL]")
    extra = set(svc.get("cap_add") or []) - set(CAPABILITIES_NEEDED.get(name, {}))
    if extra:
        problems.append(f"{name}: adds capabilities {sorted(extra)} without a stated need")
    if "no-new-privileges:true" not in (svc.get("security_opt") or []):
        problems.append(f"{name}: no security_opt no-new-privileges:true")
    if svc.get("privileged"):
        problems.append(f"{name}: privileged")
    limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    memory = svc.get("mem_limit") or limits.get("memory")
    cpus = svc.get("cpus") or limits.get("cpus")
    if not memory or compose_tool.memory_bytes(memory) <= 0:
        problems.append(f"{name}: no memory limit")
    if not cpus or float(cpus) <= 0:
        problems.append(f"{name}: no CPU limit")
    return problems


def test_every_container_is_hardened_and_limited(services):
    problems = [p for name, svc in services.items() for p in hardening_problems(name, svc)]
    assert not problems, "\n".join(problems)


def test_the_hardening_check_fails_on_a_plain_service():
    plain = {"image": "mongo:8.0", "restart": "unless-stopped"}
    problems = " ".join(hardening_problems("mongodb", plain))
    for expected in ("cap_drop", "no-new-privileges", "memory limit", "CPU limit"):
        assert expected in problems
    assert "adds capabilities ['SYS_ADMIN']" in " ".join(hardening_problems(
        "x", {"cap_drop": ["ALL"], "cap_add": ["SYS_ADMIN"], "security_opt": ["no-new-privileges:true"],
              "mem_limit": "1g", "cpus": 1}))


def test_memory_limits_leave_room_for_the_heaps(services):
    heaps = {"elasticsearch": "ES_JAVA_OPTS", "logstash": "LS_JAVA_OPTS", "kafka": "KAFKA_HEAP_OPTS"}
    for name, variable in heaps.items():
        heap = re.search(r"-Xmx(\S+)", services[name]["environment"][variable]).group(1)
        limit = compose_tool.memory_bytes(services[name]["mem_limit"])
        assert limit >= 1.5 * compose_tool.memory_bytes(heap), f"{name}: {limit} bytes for a {heap} heap"


def mongo_user(uri: str) -> str:
    return uri.split("://", 1)[1].split(":", 1)[0]


def test_each_service_gets_the_narrowest_credentials(services):
    env = {name: svc.get("environment") or {} for name, svc in services.items()}
    # The web app: read-only MongoDB user, and its own Elasticsearch user.
    assert mongo_user(env["webapp"]["METEOFLOW_MONGO_URI"]) == "meteoflow_webapp"
    assert env["webapp"]["METEOFLOW_ES_USERNAME"] == "meteoflow_webapp"
    assert mongo_user(env["streaming"]["METEOFLOW_MONGO_URI"]) == "meteoflow_app"
    root = env["mongodb"]["MONGO_INITDB_ROOT_USERNAME"]
    for name, values in env.items():
        if "METEOFLOW_MONGO_URI" in values:
            assert mongo_user(values["METEOFLOW_MONGO_URI"]) != root, f"{name} gets MongoDB's root user"
        if values.get("METEOFLOW_ES_USERNAME") == "elastic":
            assert name in ONE_SHOT, f"{name} runs as the Elasticsearch superuser"
    assert env["alerting"]["METEOFLOW_ES_USERNAME"] == "meteoflow"
    assert "meteoflow:" in env["logstash"]["ES_HOSTS"]  # the writer, never elastic


# --- docker/es-setup.sh and docker/mongo-init.js: the users and roles they create ---------------

class _RecordingES(BaseHTTPRequestHandler):
    """Answers every request 200 and keeps it: a stand-in for Elasticsearch's security API."""
    calls: list[tuple[str, str, str]]

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.calls.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, *args):
        pass


def es_setup_calls(prefix: str = "mf") -> dict[str, dict]:
    """{path: JSON body} of what docker/es-setup.sh sends, against a recording server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingES)
    server.calls = []
    thread = serve_thread(server)
    thread.start()
    try:
        env = {"PATH": "/usr/bin:/bin", "ES_URL": f"http://127.0.0.1:{server.server_port}",
               "ELASTIC_PASSWORD": "e", "KIBANA_PASSWORD": "k", "APP_ES_PASSWORD": "a\"b", "WEBAPP_ES_PASSWORD": "w",
               "METEOFLOW_ES_INDEX_PREFIX": prefix}
        result = subprocess.run(["bash", str(DOCKER_DIR / "es-setup.sh")], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
    finally:
        server.shutdown()
        server.server_close()
    return {path: json.loads(body) for method, path, body in server.calls if method in ("PUT", "POST")}


def test_es_roles_reach_only_meteoflows_indices():
    calls = es_setup_calls("mf")
    writer, webapp = calls["/_security/role/meteoflow_writer"], calls["/_security/role/meteoflow_webapp"]
    for role in (writer, webapp):
        assert role["cluster"] == ["monitor"], f"cluster privileges {role['cluster']}: only read-only monitor"
        for grant in role["indices"]:
            assert all(n.startswith("mf-") for n in grant["names"]), grant
    assert writer["indices"] == [{"names": ["mf-*"], "privileges": writer["indices"][0]["privileges"]}]
    read_all, *writes = webapp["indices"]
    assert read_all == {"names": ["mf-*"], "privileges": ["read", "view_index_metadata"]}
    assert [sorted(w["names"]) for w in writes] == [["mf-acks", "mf-silences"]]
    assert not {"write", "delete", "manage", "all"} & set(writes[0]["privileges"])
    assert calls["/_security/user/meteoflow"]["roles"] == ["meteoflow_writer"]
    assert calls["/_security/user/meteoflow"]["password"] == 'a"b'  # JSON-escaped, not broken
    assert calls["/_security/user/meteoflow_webapp"]["roles"] == ["meteoflow_webapp"]


def test_mongo_init_creates_a_reader_and_a_writer():
    """docker/mongo-init.js under Node with a recording stand-in for mongosh's `db`."""
    harness = """
const calls = [];
const admin = { getUser: (u) => (u === "meteoflow_app" ? { user: u } : null),
  createUser: (d) => calls.push(["create", d]), updateUser: (u, d) => calls.push(["update", u, d]) };
globalThis.db = { getSiblingDB: (name) => { if (name !== "admin") throw new Error(name); return admin; } };
globalThis.print = () => {};
require(process.argv[1]);
console.log(JSON.stringify(calls));
"""
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "METEOFLOW_MONGO_DB": "wx", "MONGO_APP_PASSWORD": "p1",
           "MONGO_WEBAPP_PASSWORD": "p2"}
    result = subprocess.run(["node", "-e", harness, str(DOCKER_DIR / "mongo-init.js")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout)
    assert calls == [["update", "meteoflow_app", {"pwd": "p1", "roles": [{"role": "readWrite", "db": "wx"}]}],
                     ["create", {"user": "meteoflow_webapp", "pwd": "p2", "roles": [{"role": "read", "db": "wx"}]}]]
    del env["MONGO_WEBAPP_PASSWORD"]
    missing = subprocess.run(["node", "-e", harness, str(DOCKER_DIR / "mongo-init.js")], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "MONGO_WEBAPP_PASSWORD is not set" in missing.stderr


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
    assert copied == ["requirements.lock docker/requirements.py /build/"], f"{path.name}: the deps stage copies {copied}"
    [install] = [args for instruction, args in deps if instruction == "RUN" and "requirements.py " + service in args]
    # Hash-checked, and with dependency checking on: a package missing from the part fails the build.
    assert "pip install --require-hashes -r /build/requirements.txt" in install and "--no-deps" not in install
    final = stages[-1]
    order = [args for instruction, args in final if instruction == "COPY"]
    assert order[0].startswith("--from=deps "), f"{path.name}: the dependencies are not the first layer of the final stage"
    cmd = [args for instruction, args in final if instruction == "CMD"][-1]
    assert cmd == f'["python", "-m", "{MODULE_OF[service]}"]'


LOCK = REPO_ROOT / "requirements.lock"


def image_packages(service: str) -> set[str]:
    """Normalized names of what the service's image installs: its part of the lock."""
    entries = docker_requirements.parse_lock(LOCK.read_text())
    return {e.name for e in docker_requirements.closure(entries, docker_requirements.SERVICE_REQUIREMENTS[service])}


def test_image_requirements_are_hashed_parts_of_the_lock():
    lock_text = LOCK.read_text()
    for service in docker_requirements.SERVICE_REQUIREMENTS:
        blocks = docker_requirements.requirements(service, LOCK)
        assert blocks and all("==" in b.splitlines()[0] and "--hash=sha256:" in b for b in blocks)
        # Verbatim from the lock (requirement line and hashes), so pip checks what uv recorded.
        assert all(b.splitlines()[0].rstrip(" \\") in lock_text for b in blocks)
    assert "pyspark" not in image_packages("producer") and "prophet" not in image_packages("webapp")
    assert {"pyspark", "py4j"} <= image_packages("streaming")


def test_an_image_part_holds_every_dependency_its_packages_declare():
    """Cross-check of the lock's `via` closure with the installed packages' own metadata."""
    lock_names = {e.name for e in docker_requirements.parse_lock(LOCK.read_text())}
    for service, top in docker_requirements.SERVICE_REQUIREMENTS.items():
        missing = (installed_closure(top) & lock_names) - image_packages(service)
        assert not missing, f"the {service} image would lack {sorted(missing)}"


def test_the_part_of_a_requirement_the_lock_lacks_is_refused(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via python-dateutil\n")
    with pytest.raises(SystemExit, match="requests is not in"):
        docker_requirements.closure(docker_requirements.parse_lock(lock.read_text()), ["requests"])
    with pytest.raises(SystemExit, match="only as a dependency"):
        docker_requirements.closure(docker_requirements.parse_lock(lock.read_text()), ["six"])


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
EXTRA_ENTRIES = {"producer": ["meteoflow.kafka"], "alerting": ["elk.templates", "elk.kibana.setup"],
                 "streaming": ["batch.__main__", "batch.rain", "batch.recompute", "batch.schedule"]}


def test_services_sharing_an_image_run_it_with_their_own_command(services):
    for name, (image_of, command) in SHARED_IMAGE.items():
        assert services[name]["image"] == services[image_of]["image"]
        assert services[name]["build"] == services[image_of]["build"]
        assert services[name]["command"] == command


@pytest.mark.parametrize("service", sorted(MODULE_OF))
def test_every_import_of_a_service_is_in_its_image(service):
    normalize = docker_requirements.normalize
    dockerfile = _dockerfile_for(service)
    entries = [MODULE_OF[service] + ".__main__", *EXTRA_ENTRIES.get(service, [])]
    files, third = import_closure(entries, [DOCKER_DIR / "healthcheck.py"])
    copied = copied_packages(dockerfile)
    missing_source = sorted({f.relative_to(REPO_ROOT).parts[0] for f in files} - copied)
    assert not missing_source, f"{dockerfile.name} does not copy {missing_source}, which {service} imports"

    installed = image_packages(service)
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


# --- docker/healthcheck.py ---------------------------------------------------------------------

healthcheck = load_script("healthcheck")


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
