"""The supervisor of ./run.sh: last error of a log, the status table, and one run of the real
supervision loop over real (failing) processes."""

import json
import logging
import threading
from datetime import datetime, timezone

from hypothesis import given, settings as hypothesis_settings, strategies as st

from meteoflow.contracts import SERVICE_CRASH_LOOP_ACTION, SERVICE_RECOVERED_ACTION, SupervisedProcess, SupervisorState
from meteoflow.settings import load_settings
from stack.__main__ import cmd_status, cmd_up, status_table
from stack.process import StackError, Status
from stack.supervisor import Supervisor, last_error_in, last_error_line, read_state, state_file, write_state
from tests.fakes.flaky_service import ERROR_LINE, FlakyService, JsonLines
from tests.faults.harness import wait_until

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


# --- the last error line of a log -------------------------------------------------------------
def test_a_traceback_gives_its_final_line():
    log = ("starting streaming\n"
           "Traceback (most recent call last):\n"
           '  File "job.py", line 3, in <module>\n'
           "    raise ValueError('Error in frame, not the answer')\n"
           "ValueError: bad record 42\n")
    assert last_error_line(log) == "ValueError: bad record 42"


def test_a_java_stack_trace_gives_its_cause_not_a_frame():
    log = ("[2026-11-26 12:00:00,000] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)\n"
           "java.lang.RuntimeException: Invalid cluster.id in meta.properties\n"
           "\tat kafka.server.KafkaRaftServer$.initializeLogDirs(KafkaRaftServer.scala:184)\n"
           "\tat org.apache.kafka.common.utils.ExceptionUtils.wrap(ExceptionUtils.java:12)\n"
           "\t... 3 more\n")
    assert last_error_line(log) == "java.lang.RuntimeException: Invalid cluster.id in meta.properties"


def test_the_last_error_looking_line_wins_over_later_chatter():
    log = "INFO ready\n[2026] ERROR Broker may not be available\nINFO shutting down\n\n"
    assert last_error_line(log) == "[2026] ERROR Broker may not be available"
    assert last_error_line("one\ntwo\n") == "two"  # nothing looks like an error: the last line
    # ...unless it was killed by a signal: its last line (a Spark warning) is not why it ended.
    assert last_error_line("26/12/02 WARN SparkConf: Note that spark.local.dir\n", or_last_line=False) is None
    assert last_error_line("ERROR lost\nWARN later\n", or_last_line=False) == "ERROR lost"
    assert last_error_line("") is None and last_error_line("\n  \n") is None


def test_our_json_lines_give_their_message_and_error():
    line = json.dumps({"log.level": "error", "message": "batch 7 failed", "error.type": "KeyError",
                       "error.message": "'temp'"})
    assert last_error_line(line + '\n{"log.level": "info", "message": "bye"}\n') == "batch 7 failed (KeyError: 'temp')"


def test_secrets_are_masked_and_lines_kept_short():
    uri = "mongodb://app:" + "hunter2" + "@db:27017/"  # built at run time: no secret-looking literal tracked
    assert "hunter2" not in last_error_line(f"ERROR cannot reach {uri}\n")
    assert len(last_error_line("Exception: " + "x" * 5000)) == 300


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=5000))
def test_any_bytes_in_a_log_never_raise(tmp_path_factory, data, start):
    path = tmp_path_factory.mktemp("log") / "x.log"
    path.write_bytes(data)
    line = last_error_in(path, start)
    assert line is None or (0 < len(line) <= 300 and line.isprintable())


def test_only_what_the_last_run_wrote_counts(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("ValueError: from an older run\n")
    offset = log.stat().st_size
    assert last_error_in(log, offset) is None  # the new run printed nothing
    with open(log, "a") as fh:
        fh.write("RuntimeError: this run\n")
    assert last_error_in(log, offset) == "RuntimeError: this run"
    assert last_error_in(log, offset + 10_000) == "RuntimeError: this run"  # rotated since: all of it
    assert last_error_in(tmp_path / "missing.log") is None


# --- ./run.sh status ------------------------------------------------------------------------------
def state_with(**processes) -> SupervisorState:
    return SupervisorState(pid=1, processes={name: SupervisedProcess(since=T0, **p) for name, p in processes.items()})


def test_status_shows_restarts_and_the_last_exit_truncated_to_fit():
    rows = [Status("kafka", "up", 4242, 9092), Status("streaming", "down", None, None),
            Status("webapp", "up", 4243, 8080), Status("producer", "down", None, None)]
    state = state_with(kafka={"state": "up"},
                       streaming={"state": "crash-loop", "restarts": 7, "last_exit_code": 1, "last_exit_at": T0,
                                  "last_error": "ValueError: " + "very long reason " * 20},
                       producer={"state": "held", "restarts": 1, "last_exit_code": -9, "last_exit_at": T0})
    lines = status_table(rows, state, supervisor_running=True, width=100).splitlines()
    assert lines[0].split() == ["NAME", "STATE", "PORT", "PID", "RESTARTS", "LAST", "EXIT"]
    assert lines[1].split() == ["kafka", "up", "9092", "4242", "0", "-"]
    assert lines[2].split()[:5] == ["streaming", "crash-loop", "-", "-", "7"]
    assert "exit 1: ValueError: very long reason" in lines[2] and lines[2].endswith("...") and len(lines[2]) <= 100
    assert lines[3].split() == ["webapp", "up", "8080", "4243", "-", "-"]  # the supervisor never saw it
    assert lines[4].split() == ["producer", "held", "-", "-", "1", "signal", "SIGKILL"]
    # No supervisor running: the processes' own state, but the story of the last run stays.
    lines = status_table(rows, state, supervisor_running=False).splitlines()
    assert lines[2].split()[:2] == ["streaming", "down"] and "exit 1: ValueError" in lines[2]
    assert status_table(rows, None, False).splitlines()[2].split() == ["streaming", "down", "-", "-", "-", "-"]


def test_run_sh_status_reads_the_state_file_without_a_supervisor(tmp_path, capsys):
    settings = load_settings(run_dir=tmp_path)
    state_file(settings).parent.mkdir(parents=True)
    write_state(state_file(settings), state_with(
        streaming={"state": "crash-loop", "restarts": 3, "last_exit_code": 1, "last_exit_at": T0,
                   "last_error": "ValueError: bad record"}))
    assert read_state(settings).processes["streaming"].restarts == 3
    assert cmd_status(settings) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("streaming")]
    assert line.split()[:5] == ["streaming", "down", "-", "-", "3"] and "exit 1: ValueError: bad record" in line
    state_file(settings).write_text("{not json")
    assert read_state(settings) is None


# --- the real loop, real processes -------------------------------------------------------------------
def test_up_name_releases_the_hold_only_once_the_process_runs(tmp_path, monkeypatch):
    """`./run.sh up NAME` of a held process: while it starts, the supervisor still sees it held, so it
    never starts a second copy; the hold goes even when the start fails (the supervisor retries)."""
    import stack.__main__ as stack_cli

    class Starting:
        held_file = tmp_path / "shipper.held"

        def __init__(self, fail: bool):
            self.fail = fail
            self.held_while_starting: bool | None = None

        def start(self):
            self.held_while_starting = self.held_file.exists()
            if self.fail:
                raise StackError("shipper exited with code 1")

    for fail in (False, True):
        proc = Starting(fail)
        proc.held_file.touch()
        monkeypatch.setattr(stack_cli, "_select", lambda _settings, _names, proc=proc: ([], [proc]))
        try:
            cmd_up(load_settings(run_dir=tmp_path), ["shipper"], with_services=False)
        except StackError:
            assert fail
        assert proc.held_while_starting is True and not proc.held_file.exists()


def test_a_failing_process_is_restarted_into_a_crash_loop_then_recovers(tmp_path):
    settings = load_settings(run_dir=tmp_path, supervisor_backoff_initial_seconds=0.05,
                             supervisor_backoff_max_seconds=0.3, supervisor_crash_loop_exits=3,
                             supervisor_crash_loop_window_seconds=120, supervisor_healthy_after_seconds=1.0)
    flaky = FlakyService(settings)
    events = JsonLines()
    log = logging.getLogger("test-supervisor")
    log.addHandler(events)
    log.propagate = False
    log.setLevel(logging.INFO)
    said: list[str] = []
    stop = threading.Event()
    try:
        flaky.start(log=said.append)
    except StackError as exc:  # what ./run.sh does with a service that fails its first start
        assert "exited with code 3" in str(exc)
    supervisor = Supervisor(settings, [flaky], log, say=said.append, stopping=stop.is_set)
    loop = threading.Thread(target=supervisor.run, kwargs={"interval": 0.1}, daemon=True)
    loop.start()
    try:
        [loop_event] = wait_until(lambda: events.of(SERVICE_CRASH_LOOP_ACTION), 90, "the crash-loop event", every=0.05)
        fields = loop_event["meteoflow.supervisor"]
        assert (loop_event["service.name"], loop_event["log.level"]) == ("supervisor", "error")
        assert (fields["service"], fields["exit_code"], fields["state"], fields["exits_in_window"]) == (
            "flaky", 3, "crash-loop", 3)
        assert fields["last_error"] == ERROR_LINE
        assert any(line.startswith("CRASH-LOOP: flaky exited 3 times") for line in said)

        state = wait_until(lambda: (s := read_state(settings)) and s.processes["flaky"].restarts >= 2 and s,
                           30, "restarts in the state file", every=0.05)
        assert state.processes["flaky"].state == "crash-loop"
        assert "exit 3: ValueError: bad record 42" in status_table([flaky.status()], state, True)

        (tmp_path / "fixed").touch()  # the cause is fixed: it recovers by itself
        wait_until(lambda: events.of(SERVICE_RECOVERED_ACTION), 60, "the recovered event", every=0.05)
        wait_until(lambda: read_state(settings).processes["flaky"].state == "up", 10, "state up", every=0.05)
        assert flaky.status().state == "up"
        assert len(events.of(SERVICE_CRASH_LOOP_ACTION)) == 1  # said loudly once per episode
    finally:
        stop.set()
        loop.join(timeout=60)
        flaky.stop()
        log.removeHandler(events)
    assert not loop.is_alive()
