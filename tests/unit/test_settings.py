import pytest

from meteoflow.settings import SettingsError, load_settings


def test_defaults_bind_loopback_and_use_documented_topics():
    s = load_settings()
    assert s.bind_host == "127.0.0.1"
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert (s.topic_observations, s.topic_deadletter, s.topic_logs) == (
        "weather.observations",
        "weather.deadletter",
        "pipeline.logs",
    )
    assert s.kafka_retention_hours == 168
    assert s.es_url == "http://127.0.0.1:9200"
    assert s.index("observations") == "meteoflow-observations"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("METEOFLOW_KAFKA_PORT", "29092")
    monkeypatch.setenv("METEOFLOW_ES_URL", "http://es.internal:9200")
    s = load_settings()
    assert s.kafka_bootstrap == "127.0.0.1:29092"
    assert s.es_url == "http://es.internal:9200"


def test_non_numeric_port_names_setting_and_value(monkeypatch):
    monkeypatch.setenv("METEOFLOW_KAFKA_PORT", "abc")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "METEOFLOW_KAFKA_PORT='abc'" in str(err.value)


def test_port_out_of_range(monkeypatch):
    monkeypatch.setenv("METEOFLOW_ES_PORT", "70000")
    with pytest.raises(SettingsError, match="METEOFLOW_ES_PORT='70000'"):
        load_settings()


@pytest.mark.parametrize("bad", ["weather observations", "weather/obs", "", "é"])
def test_bad_topic_name(monkeypatch, bad):
    monkeypatch.setenv("METEOFLOW_TOPIC_OBSERVATIONS", bad)
    with pytest.raises(SettingsError, match="METEOFLOW_TOPIC_OBSERVATIONS"):
        load_settings()


def test_secrets_are_hidden_in_errors_and_repr(monkeypatch):
    monkeypatch.setenv("METEOFLOW_OWM_API_KEY", "0123456789abcdef0123456789abcdef")
    s = load_settings()
    assert "0123456789abcdef" not in repr(s)
    assert s.effective_source == "openweathermap"
    monkeypatch.delenv("METEOFLOW_OWM_API_KEY")
    assert load_settings().effective_source == "simulator"


def test_relative_run_dir_becomes_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METEOFLOW_RUN_DIR", "myrun")
    assert load_settings().run_dir == tmp_path / "myrun"


@pytest.mark.parametrize("module", ["producer", "streaming", "forecasting_api", "webapp", "elk.shipper", "elk.alerting"])
def test_every_service_refuses_a_bad_setting_with_one_clear_line(module):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("METEOFLOW_")}
    env["METEOFLOW_ES_PORT"] = "not-a-port"
    result = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "METEOFLOW_ES_PORT='not-a-port'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "my-laptop.lan", "localhost.example"])
def test_a_bind_host_beyond_loopback_is_refused_without_the_acknowledgement(monkeypatch, host):
    monkeypatch.setenv("METEOFLOW_BIND_HOST", host)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("invalid settings: ") and f"METEOFLOW_BIND_HOST={host!r}" in message
    assert "METEOFLOW_ALLOW_UNAUTHENTICATED_BIND=true" in message and "Elasticsearch" in message
    monkeypatch.setenv("METEOFLOW_ALLOW_UNAUTHENTICATED_BIND", "true")  # the user says the network is trusted
    assert load_settings().bind_host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_loopback_bind_hosts_need_no_acknowledgement(host):
    assert load_settings(bind_host=host).allow_unauthenticated_bind is False


@pytest.mark.parametrize("module", ["stack", "producer", "webapp", "elk.alerting"])
def test_every_service_and_the_stack_refuse_an_open_bind_host_before_starting(module):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("METEOFLOW_")}
    env["METEOFLOW_BIND_HOST"] = "0.0.0.0"
    args = [sys.executable, "-m", module] + (["status"] if module == "stack" else [])
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "METEOFLOW_BIND_HOST='0.0.0.0' is not a loopback address" in result.stderr
    assert "METEOFLOW_ALLOW_UNAUTHENTICATED_BIND" in result.stderr and "Traceback" not in result.stderr
