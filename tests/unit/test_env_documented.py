"""Every environment variable the code or compose.yaml reads is documented.

- every Settings field (METEOFLOW_<NAME>, or its alias such as METEOFLOW_ES_URL) is in
  .env.example and in README.md or docs/configuration.md;
- the generated parts (docs/configuration.md, the METEOFLOW section of .env.example, the
  forwarded list in compose.yaml) match the code: `python -m meteoflow.settings_doc --write`;
- every variable compose.yaml interpolates is set in .env.example and explained in docs/docker.md;
- any variable read literally by service code (os.environ / os.getenv) is documented too;
- what compose.yaml hands each Meteoflow container is accepted by Settings.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from tests.docker_scripts import load_script
from meteoflow import settings_doc
from meteoflow.settings import REPO_ROOT, Settings, SettingsError, load_settings

compose_tool = load_script("compose_tool")

ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKER_MD = REPO_ROOT / "docs" / "docker.md"
MENTION = re.compile(r"\b[A-Z][A-Z0-9_]+\b")

# Containers running Meteoflow code (they read Settings).
METEOFLOW_CONTAINERS = ["producer", "streaming", "rain_model", "forecasting_api", "webapp", "alerting", "kafka-init", "es-init", "kibana-setup"]

# Variables of the platform, not Meteoflow's: set by Java/Spark tooling or the OS.
PLATFORM_VARIABLES = {"JAVA_HOME", "SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PATH", "HOME", "CI"}


def mentioned(path: Path) -> set[str]:
    return set(MENTION.findall(path.read_text())) if path.exists() else set()


def test_every_setting_is_in_env_example_and_the_docs():
    names = settings_doc.env_names()
    assert len(names) == len(Settings.model_fields) and "METEOFLOW_ES_URL" in names
    in_example = mentioned(ENV_EXAMPLE)
    in_docs = mentioned(REPO_ROOT / "README.md") | mentioned(settings_doc.CONFIGURATION_MD)
    assert not [n for n in names if n not in in_example], ".env.example lacks some settings: run python -m meteoflow.settings_doc --write"
    assert not [n for n in names if n not in in_docs], "README.md / docs/configuration.md lack some settings"


def test_generated_docs_are_up_to_date():
    stale = [str(p.relative_to(REPO_ROOT)) for p in settings_doc.stale_files()]
    assert not stale, f"{stale} out of date with meteoflow/settings.py: run python -m meteoflow.settings_doc --write"


def test_the_generator_sees_a_new_setting(monkeypatch):
    """The up-to-date check fails where it should: a setting the docs do not know yet."""
    docs = settings_doc.settings_docs()
    extra = settings_doc.SettingDoc("new_knob", "METEOFLOW_NEW_KNOB", "int", "3", "A new knob", False, False,
                                    "forwarded from .env")
    monkeypatch.setattr(settings_doc, "settings_docs", lambda: [*docs, extra])
    assert set(settings_doc.stale_files()) == {settings_doc.CONFIGURATION_MD, settings_doc.ENV_EXAMPLE, settings_doc.COMPOSE_FILE}
    assert "METEOFLOW_NEW_KNOB" in settings_doc.configuration_markdown()


def test_env_example_sets_no_meteoflow_value():
    """The METEOFLOW_* lines stay commented: an uncommented empty value would override a default."""
    assigned = [l for l in ENV_EXAMPLE.read_text().splitlines() if l.startswith("METEOFLOW_") and "=" in l]
    assert assigned == ["METEOFLOW_IMAGE_TAG=latest"]  # a compose variable, not a setting


def compose_variables() -> set[str]:
    text = settings_doc.COMPOSE_FILE.read_text()
    # `$${X}` / `$$X` are the container's own variables (escaped), not interpolated by Compose.
    return set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))


def test_compose_variables_are_set_in_env_example_and_explained():
    variables = compose_variables()
    assert {"ELASTIC_PASSWORD", "KIBANA_PASSWORD", "PUBLISH_HOST"} <= variables
    assigned = {l.split("=", 1)[0] for l in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z_]+=", l)}
    deployment = variables - set(settings_doc.env_names())  # settings are covered by the tests above
    assert not sorted(deployment - assigned), "compose.yaml uses variables .env.example does not set"
    assert not sorted(deployment - mentioned(DOCKER_MD)), "docs/docker.md does not explain some compose variables"
    # The two outside services are documented where a user looks first.
    assert {"METEOFLOW_OWM_API_KEY", "METEOFLOW_SLACK_WEBHOOK_URL"} <= mentioned(ENV_EXAMPLE) & mentioned(DOCKER_MD)


READ_CALLS = {("os", "getenv"), ("environ", "get"), ("os.environ", "get")}


def literal_env_reads(source: str) -> set[str]:
    """Names read with os.getenv("X"), os.environ.get("X") or os.environ["X"] (literal names only)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func in ("os.getenv", "getenv", "os.environ.get", "environ.get"):
                names.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
            if isinstance(node.slice, ast.Constant) and isinstance(node.ctx, ast.Load):
                names.add(node.slice.value)
    return names


def test_the_scanner_finds_reads():
    code = 'import os\na = os.getenv("A")\nb = os.environ.get("B", "x")\nc = os.environ["C"]\nos.environ["D"] = "w"\n'
    assert literal_env_reads(code) == {"A", "B", "C"}


def test_variables_read_by_service_code_are_documented():
    documented = mentioned(ENV_EXAMPLE) | mentioned(settings_doc.CONFIGURATION_MD) | mentioned(DOCKER_MD)
    undocumented = {}
    for package in ("meteoflow", "producer", "streaming", "forecasting_api", "webapp", "elk", "stack", "docker"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            for name in literal_env_reads(path.read_text()) - PLATFORM_VARIABLES - documented:
                undocumented.setdefault(name, []).append(str(path.relative_to(REPO_ROOT)))
    assert not undocumented, f"read from the environment but documented nowhere: {undocumented}"


@pytest.fixture(scope="module")
def services() -> dict:
    return compose_tool.resolve(REPO_ROOT, ENV_EXAMPLE)["services"]


def test_compose_forwards_every_docker_setting(services):
    forwarded = settings_doc.forwarded_to_all()
    for name in METEOFLOW_CONTAINERS:
        env = services[name].get("environment") or {}
        missing = [v for v in forwarded if v not in env]
        assert not missing, f"compose.yaml does not forward {missing} to {name}"
    secrets = [d.env for d in settings_doc.settings_docs() if d.secret]
    for secret in secrets:
        holders = [n for n in METEOFLOW_CONTAINERS if secret in (services[n].get("environment") or {})]
        assert holders, f"no container receives {secret}"
    # Least privilege: each outside secret reaches only the service that uses it.
    assert [n for n in services if "METEOFLOW_OWM_API_KEY" in (services[n].get("environment") or {})] == ["producer"]
    # (kibana-setup creates Kibana's Slack connector when KIBANA_ALERTING=true)
    assert sorted(n for n in services if "METEOFLOW_SLACK_WEBHOOK_URL" in (services[n].get("environment") or {})) == [
        "alerting", "kibana-setup"]


@pytest.mark.parametrize("name", METEOFLOW_CONTAINERS)
def test_settings_accept_what_compose_gives_each_container(name, services, monkeypatch):
    env = {k: str(v) for k, v in (services[name].get("environment") or {}).items() if v is not None}
    for key in [k for k in os.environ if k.startswith("METEOFLOW_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(REPO_ROOT / "docs")  # no .env here: only compose's values count
    try:
        settings = load_settings()
    except SettingsError as exc:
        pytest.fail(f"{name}: {exc}")
    assert settings.kafka_bootstrap == "kafka:9092"
    assert str(settings.run_dir) == "/data"
    if name in ("forecasting_api", "webapp"):
        assert settings.bind_host == "0.0.0.0"  # reachable through the published port
    if "METEOFLOW_ES_URL" in env:
        user = {"webapp": "meteoflow_webapp", "es-init": "elastic"}.get(name, "meteoflow")
        assert settings.es_url == "http://elasticsearch:9200" and settings.es_username == user
    if name in ("streaming", "webapp"):
        assert settings.mongo_uri.startswith("mongodb://") and "@mongodb:27017/" in settings.mongo_uri
        assert settings.forecast_api_url == "http://forecasting_api:8000"
