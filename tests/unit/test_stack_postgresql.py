"""The store backend: PostgreSQL's Debian packages are pinned and verified before anything is
unpacked, the setting picks the servers, and FerretDB gets its PostgreSQL URL (password included)
through its environment, never its command line. Offline: apt-get and dpkg are faked here; the
real ones run in tests/integration/test_store_postgresql.py."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meteoflow.settings import SettingsError, load_settings
from stack import install, pins, servers
from stack.process import StackError

PACKAGES = {"postgresql-15": ("15.1-1", b"server"), "libpq5": ("1:15.1-1", b"client library")}


@pytest.fixture
def settings(tmp_path):
    return load_settings(cache_dir=tmp_path / "cache", run_dir=tmp_path / "run", store_backend="postgresql",
                         postgres_port=15432)


@pytest.fixture
def debian(monkeypatch):
    """A fake apt-get/dpkg: `served` is what the archive serves; `ran` records the commands."""
    state = {"arch": "amd64", "served": {n: data for n, (_v, data) in PACKAGES.items()}, "ran": [], "fail": False}

    def run(cmd, what, env=None, cwd=None, capture=False):
        state["ran"].append(cmd)
        tool = Path(cmd[0]).name
        if tool == "dpkg":
            return state["arch"] + "\n"
        if tool == "apt-get" and cmd[1] == "update":
            return ""
        if tool == "apt-get":
            if state["fail"]:
                raise StackError(f"{what}: `apt-get download` failed with exit code 100")
            for spec in cmd[2:]:
                name, version = spec.split("=", 1)
                (cwd / pins.deb_file_name(name, version)).write_bytes(state["served"][name])
            return ""
        if tool == "dpkg-deb":
            out = Path(cmd[3]) / "usr" / "lib" / "postgresql" / "15" / "bin"
            out.mkdir(parents=True, exist_ok=True)
            (out / Path(cmd[2]).name).write_text("unpacked")
            return ""
        raise AssertionError(f"unexpected command {cmd}")

    monkeypatch.setattr(install, "_need", lambda tool, hint: f"/usr/bin/{tool}")
    monkeypatch.setattr(install, "_run", run)
    good = {n: (v, hashlib.sha256(data).hexdigest()) for n, (v, data) in PACKAGES.items()}
    monkeypatch.setattr(install, "POSTGRESQL_DEBS", good)
    return state


def test_the_pinned_packages_are_downloaded_verified_and_unpacked(settings, debian):
    root = install.postgresql_root(settings)
    assert root == settings.cache_dir / "postgresql" / "15.1-1" / "root"
    download = next(cmd for cmd in debian["ran"] if cmd[0].endswith("apt-get"))
    assert download[1:] == ["download", "postgresql-15=15.1-1", "libpq5=1:15.1-1"]  # exact versions only
    assert sorted(p.name for p in (root / "usr/lib/postgresql/15/bin").iterdir()) == [
        "libpq5_1%3a15.1-1_amd64.deb", "postgresql-15_15.1-1_amd64.deb"]
    assert not (root.parent / "debs").exists()  # the .deb files are not kept
    debian["ran"].clear()
    assert install.postgresql_root(settings) == root and debian["ran"] == []  # cached: nothing runs


def test_a_tampered_package_is_refused_before_anything_is_unpacked(settings, debian):
    debian["served"]["libpq5"] = b"something else"
    with pytest.raises(StackError, match=r"PostgreSQL package libpq5: .* has SHA-256 [0-9a-f]{64}, but stack/pins.py"):
        install.postgresql_root(settings)
    assert not any(Path(cmd[0]).name == "dpkg-deb" for cmd in debian["ran"])
    assert not (settings.cache_dir / "postgresql" / "15.1-1" / ".complete").exists()  # retried next time


def test_another_architecture_or_a_version_debian_no_longer_serves_is_a_clear_error(settings, debian):
    debian["arch"] = "arm64"
    with pytest.raises(StackError, match="pins Debian's amd64 packages, this machine is arm64; use "
                                         "METEOFLOW_STORE_BACKEND=sqlite"):
        install.postgresql_root(settings)
    debian["arch"], debian["fail"] = "amd64", True
    with pytest.raises(StackError, match="a security update replaced a version stack/pins.py pins"):
        install.postgresql_root(settings)
    if os.geteuid() == 0:  # as root the package lists are refreshed once before giving up
        assert [cmd[1] for cmd in debian["ran"] if cmd[0].endswith("apt-get")] == ["download", "update", "download"]


def test_every_postgresql_package_is_pinned_to_a_version_and_digest():
    assert f"postgresql-{pins.POSTGRESQL_MAJOR}" in pins.POSTGRESQL_DEBS and "libpq5" in pins.POSTGRESQL_DEBS
    for name, (version, digest) in pins.POSTGRESQL_DEBS.items():
        assert version and len(digest) == 64 and int(digest, 16) >= 0, name
    assert pins.deb_file_name("libpq5", "1:2-3") == "libpq5_1%3a2-3_amd64.deb"


def test_the_store_backend_setting_is_validated():
    assert load_settings().store_backend in {"sqlite", "postgresql"}
    with pytest.raises(SettingsError, match="METEOFLOW_STORE_BACKEND='mysql'"):
        load_settings(store_backend="mysql")
    with pytest.raises(SettingsError, match="METEOFLOW_POSTGRES_PORT"):
        load_settings(postgres_port=0)


def test_the_backend_picks_the_servers(settings):
    assert servers.wanted_servers(settings) == ["kafka", "elasticsearch", "postgresql", "ferretdb"]
    sqlite = settings.model_copy(update={"store_backend": "sqlite"})
    assert servers.wanted_servers(sqlite) == ["kafka", "elasticsearch", "ferretdb"]
    assert [s.name for s in servers.servers(sqlite)] == ["kafka", "elasticsearch", "ferretdb"]
    assert [s.name for s in servers.servers(sqlite, ["postgresql"])] == ["postgresql"]


def test_a_postgresql_still_running_after_a_switch_to_sqlite_is_seen_by_status_and_down(settings):
    sqlite = settings.model_copy(update={"store_backend": "sqlite"})
    pg = servers.PostgreSQLServer(sqlite)
    env = dict(os.environ, METEOFLOW_RUN_DIR=str(sqlite.run_dir))  # how the stack marks what it started
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True)
    try:
        pg.pid_file.parent.mkdir(parents=True)
        pg.pid_file.write_text(str(proc.pid))
        assert "postgresql" in [s.name for s in servers.servers(sqlite)]
        assert pg.stop(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert "postgresql" not in [s.name for s in servers.servers(sqlite)]


def test_ferretdb_gets_the_postgresql_url_in_its_environment_only(settings, monkeypatch):
    monkeypatch.setattr(install, "ferretdb_binary", lambda s: Path("/cache/ferretdb"))
    pg = servers.PostgreSQLServer(settings)
    pg.home.mkdir(parents=True)
    pg.password_file.write_text("p@ss/word\n")
    ferretdb = servers.FerretDBServer(settings)
    command = ferretdb.command()
    assert "--handler=postgresql" in command and not any("sqlite" in arg or "p@ss" in arg for arg in command)
    assert ferretdb.environment()["FERRETDB_POSTGRESQL_URL"] == (
        "postgres://meteoflow:p%40ss%2Fword@127.0.0.1:15432/ferretdb")
    sqlite = servers.FerretDBServer(settings.model_copy(update={"store_backend": "sqlite"}))
    assert "--handler=sqlite" in sqlite.command() and "FERRETDB_POSTGRESQL_URL" not in sqlite.environment()


def test_postgresql_listens_on_loopback_tcp_only_and_is_healthy_once_ready(settings, monkeypatch):
    monkeypatch.setattr(install, "postgresql_bin", lambda s: Path("/pg/bin"))
    pg = servers.PostgreSQLServer(settings)
    command = pg.command()
    assert command[0] == "/pg/bin/postgres"
    assert {"listen_addresses=127.0.0.1", "port=15432", "unix_socket_directories="} <= set(command)
    monkeypatch.setattr(servers, "port_in_use", lambda host, port: True)
    pg.data_dir.mkdir(parents=True)
    pid_lines = ["123", str(pg.data_dir), "1700000000", "15432", "", "127.0.0.1", "  5432001    0"]
    (pg.data_dir / "postmaster.pid").write_text("\n".join(pid_lines + ["starting  "]) + "\n")
    assert not pg.healthy()
    (pg.data_dir / "postmaster.pid").write_text("\n".join(pid_lines + ["ready     "]) + "\n")
    assert pg.healthy()


def test_a_database_name_ferretdb_on_postgresql_would_lose_is_refused():
    with pytest.raises(SettingsError, match="METEOFLOW_MONGO_DB='pgdata' starts with 'pg'"):
        load_settings(store_backend="postgresql", mongo_db="pgdata")
    assert load_settings(store_backend="sqlite", mongo_db="pgdata").mongo_db == "pgdata"


def test_ferretdb_on_postgresql_without_one_set_up_says_what_to_do(settings, monkeypatch):
    monkeypatch.setattr(install, "ferretdb_binary", lambda s: Path("/cache/ferretdb"))
    with pytest.raises(StackError, match=r"none was set up in .*: start it first \(./run.sh up postgresql\), or set "
                                         "METEOFLOW_STORE_BACKEND=sqlite"):
        servers.FerretDBServer(settings).environment()
