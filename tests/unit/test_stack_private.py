"""Run files are their owner's only: directories 0700, files 0600, whatever the umask."""

import os
import stat

import pytest

from meteoflow.contracts import SupervisorState
from meteoflow.settings import load_settings
from stack.logrotate import rotate
from stack.private import private_dir, write_private
from stack.process import ManagedProcess
from stack.supervisor import write_state


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def loose_umask():
    old = os.umask(0o022)  # the usual umask: files 0644, directories 0755 unless the code says otherwise
    yield
    os.umask(old)


class Writer(ManagedProcess):
    """A process that creates a data file of its own, as Kafka or Elasticsearch do."""
    name = "writer"

    def command(self):
        return ["sh", "-c", "mkdir -p data && echo row > data/segment; echo started; exec sleep 60"]

    def healthy(self):
        return (self.home / "data" / "segment").exists()


def test_a_started_process_has_private_logs_pids_home_and_data(tmp_path):
    settings = load_settings(run_dir=tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o750)
    (tmp_path / "run" / "logs").mkdir(mode=0o755)  # left loose by an older version
    (tmp_path / "run" / "logs" / "writer.log").write_text("old line\n")
    os.chmod(tmp_path / "run" / "logs" / "writer.log", 0o644)
    proc = Writer(settings)
    try:
        assert proc.start(log=lambda _line: None) == "started"
        run = settings.run_dir
        for directory in (run, run / "logs", run / "pids", run / "writer", run / "writer" / "data"):
            assert mode(directory) == 0o700, directory
        for file in (run / "logs" / "writer.log", run / "pids" / "writer.pid", run / "writer" / "data" / "segment"):
            assert mode(file) == 0o600, file
        assert (run / "logs" / "writer.log").read_text().startswith("old line\n")  # appended, not replaced
    finally:
        proc.stop(timeout=5)


def test_rotated_logs_stay_private(tmp_path):
    log = tmp_path / "kafka.log"
    write_private(log, "x" * 2000)
    assert rotate(log, max_bytes=1024, backups=2)
    write_private(log, "y" * 2000)
    assert rotate(log, max_bytes=1024, backups=2)
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {"kafka.log": 0o600, "kafka.log.1": 0o600,
                                                             "kafka.log.2": 0o600}


def test_the_supervisor_state_file_is_private(tmp_path):
    path = private_dir(tmp_path / "run" / "pids") / "supervisor.json"
    write_state(path, SupervisorState(pid=1, processes={}))
    assert mode(path) == 0o600 and mode(tmp_path / "run" / "pids") == 0o700 and mode(tmp_path / "run") == 0o700


def test_private_dir_tightens_but_keeps_a_search_bit_for_elasticsearchs_user(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    assert mode(private_dir(loose)) == 0o700
    os.chmod(loose, 0o711)  # as ElasticsearchServer.configure leaves the run directory when we are root
    assert mode(private_dir(loose, keep_search=True)) == 0o701  # traverse only: nothing can be listed or read
    assert mode(private_dir(loose)) == 0o700
