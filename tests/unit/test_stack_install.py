"""Downloads are verified: Maven checks checksums strictly, and every server artifact has a SHA-256 pin."""

import hashlib
import json
import re
import shutil
import zipfile

import pytest

from meteoflow.settings import load_settings
from stack import install, pins
from stack.process import StackError


@pytest.fixture
def settings(tmp_path):
    return load_settings(cache_dir=tmp_path / "cache")


@pytest.fixture
def commands(monkeypatch):
    ran = []
    monkeypatch.setattr(install, "_need", lambda tool, hint: f"/usr/bin/{tool}")
    monkeypatch.setattr(install, "_maven_env", lambda settings: {})
    monkeypatch.setattr(install, "_run", lambda cmd, what, env=None, cwd=None: ran.append(cmd))
    return ran


def test_maven_fails_on_a_bad_or_missing_checksum(settings, commands):
    install._mvn(settings, ["dependency:copy-dependencies"], "resolving")
    assert "--strict-checksums" in commands[0]


def test_kafka_jars_are_checked_against_their_pins(settings, commands, monkeypatch):
    content = {"kafka_2.13-9.9.9.jar": b"broker", "slf4j-api-2.0.17.jar": b"logging"}

    def resolve(settings, target, name, version, dependencies, out_dir, what):
        shutil.rmtree(out_dir, ignore_errors=True)  # as the real one: a fresh directory each time
        out_dir.mkdir(parents=True)
        for jar, data in content.items():
            (out_dir / jar).write_bytes(data)

    monkeypatch.setattr(install, "_maven_copy_dependencies", resolve)
    monkeypatch.setattr(install, "KAFKA_VERSION", "9.9.9")
    good = {jar: hashlib.sha256(data).hexdigest() for jar, data in content.items()}
    monkeypatch.setitem(pins.KAFKA_JARS_SHA256, "9.9.9", good)
    monkeypatch.setattr(install, "KAFKA_JARS_SHA256", pins.KAFKA_JARS_SHA256)
    assert install.kafka_libs(settings).name == "libs"

    (settings.cache_dir / "kafka" / "9.9.9" / ".complete").unlink()
    content["kafka_2.13-9.9.9.jar"] = b"tampered"
    with pytest.raises(StackError, match=r"Kafka 9\.9\.9: .*kafka_2\.13-9\.9\.9\.jar has SHA-256 [0-9a-f]{64}, but"):
        install.kafka_libs(settings)
    assert not (settings.cache_dir / "kafka" / "9.9.9" / ".complete").exists()  # retried next time

    content["extra-1.0.jar"] = b"x"
    content["kafka_2.13-9.9.9.jar"] = b"broker"
    with pytest.raises(StackError, match="no SHA-256 pinned for extra-1.0.jar"):
        install.kafka_libs(settings)


def test_a_tampered_elasticsearch_zip_is_refused_and_removed(settings, commands, monkeypatch):
    version = install.ELASTICSEARCH_VERSION

    def download(settings, args, what, cwd=None, strict=True):
        assert not strict  # Central has no checksum for this zip: the pin is its only check
        with zipfile.ZipFile(cwd / f"elasticsearch-{version}.zip", "w") as zf:
            zf.writestr(f"elasticsearch-{version}/bin/elasticsearch", "#!/bin/sh\n")

    monkeypatch.setattr(install, "_mvn", download)
    with pytest.raises(StackError, match=f"Elasticsearch {re.escape(version)}: .* but stack/pins.py pins"):
        install.elasticsearch_home(settings)
    target = settings.cache_dir / "elasticsearch" / version
    assert sorted(p.name for p in target.iterdir()) == []  # neither the archive nor an unpacked home


def test_a_ferretdb_module_with_another_sum_is_refused(settings, monkeypatch, tmp_path):
    module = json.dumps({"Dir": str(tmp_path), "Sum": "h1:somethingElse="})
    monkeypatch.setattr(install, "_need", lambda tool, hint: "/usr/bin/go")
    monkeypatch.setattr(install, "_run", lambda *a, **kw: module)  # `go mod download -json`
    with pytest.raises(StackError, match="module sum h1:somethingElse= is not the one stack/pins.py pins"):
        install.ferretdb_binary(settings)


def test_every_pinned_version_is_the_one_installed():
    assert re.fullmatch(r"[0-9a-f]{64}", pins.ELASTICSEARCH_ZIP_SHA256[install.ELASTICSEARCH_VERSION])
    kafka = pins.KAFKA_JARS_SHA256[install.KAFKA_VERSION]
    assert f"kafka_2.13-{install.KAFKA_VERSION}.jar" in kafka and f"slf4j-api-{install.SLF4J_VERSION}.jar" in kafka
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in kafka.values())
    assert pins.FERRETDB_MODULE_SUM[install.FERRETDB_VERSION].startswith("h1:")
