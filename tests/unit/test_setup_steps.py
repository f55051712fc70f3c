"""Set-up steps (stack.process.step, stack.spinner, run.sh's `step`): one line when a step succeeds, the log's
tail and path when it fails, the tool's output in <log_dir>/install-<name>.log. Fake commands only."""

import io
import re
import shlex
import subprocess
import sys

import pytest
from rich.console import Console
from meteoflow.settings import REPO_ROOT
from stack import install, process, spinner
from stack.process import STEP_TAIL_LINES, StackError, StepDisplay, step

NOISY = "import sys\nfor i in range(1, 51):\n    print(f'download {i}')\nprint('warning on stderr', file=sys.stderr)\n"


def plain():
    out, err = io.StringIO(), io.StringIO()
    return out, err, StepDisplay(out, err)


def test_a_step_that_succeeds_prints_one_line_and_logs_the_output(tmp_path):
    out, err, display = plain()
    with step("kafka", "installing Kafka", tmp_path, display) as running:
        running.run([sys.executable, "-c", NOISY])
    assert re.fullmatch(r"\[meteoflow\] installing Kafka \.\.\. done \(\d+ s\)\n", out.getvalue())
    assert err.getvalue() == ""
    log = (tmp_path / "install-kafka.log").read_text()
    assert "download 1\n" in log and "download 50\n" in log and "warning on stderr" in log


def test_a_failing_command_shows_the_tail_and_the_log_path(tmp_path):
    out, err, display = plain()
    failing = NOISY + "sys.exit(3)\n"
    with pytest.raises(StackError, match="exit code 3"):
        with step("ferretdb", "building FerretDB", tmp_path, display) as running:
            running.run([sys.executable, "-c", failing])
    log = tmp_path / "install-ferretdb.log"
    assert out.getvalue() == "[meteoflow] building FerretDB ... failed\n"
    shown = err.getvalue()
    assert f"full log: {log}" in shown
    assert "  warning on stderr" in shown and "  download 50" in shown
    assert "download 20\n" not in shown  # only the tail: the last 30 lines of the log
    assert len(shown.splitlines()) == STEP_TAIL_LINES + 2
    assert "download 1\n" in log.read_text()  # the whole output stays in the log


def test_the_tail_is_shown_as_written_without_colour_codes(tmp_path):
    out, err, display = plain()
    with pytest.raises(StackError):
        with step("maven", "resolving", tmp_path, display) as running:
            running.run([sys.executable, "-c", r"print('\x1b[1;31m[ERROR]\x1b[0m project meteoflow.stack:x:jar:1'); exit(1)"])
    assert "  [ERROR] project meteoflow.stack:x:jar:1\n" in err.getvalue()


def test_any_error_inside_a_step_shows_the_tail(tmp_path):
    out, err, display = plain()
    with pytest.raises(StackError, match="patch does not apply"):
        with step("ferretdb", "building FerretDB", tmp_path, display) as running:
            running.run([sys.executable, "-c", "print('source downloaded')"])
            raise StackError("patch does not apply")
    assert out.getvalue().endswith("failed\n")
    assert "  source downloaded" in err.getvalue()


def test_capture_returns_stdout_and_still_logs_it(tmp_path):
    out, _err, display = plain()
    with step("go", "downloading", tmp_path, display) as running:
        got = running.run([sys.executable, "-c", "import sys; print('{\"Dir\": \"/x\"}'); print('trace', file=sys.stderr)"],
                       capture=True)
    assert got == '{"Dir": "/x"}\n'
    log = (tmp_path / "install-go.log").read_text()
    assert '{"Dir": "/x"}' in log and "trace" in log


def test_a_step_inside_a_step_runs_in_the_outer_one(tmp_path):
    out, _err, display = plain()
    with step("outer", "outer step", tmp_path, display):
        with step("inner", "inner step", tmp_path, display) as inner:
            inner.run([sys.executable, "-c", "print('inner output')"])
    assert out.getvalue().count("\n") == 1 and "outer step" in out.getvalue()
    assert "inner output" in (tmp_path / "install-outer.log").read_text()
    assert not (tmp_path / "install-inner.log").exists()


def test_on_a_terminal_the_spinner_goes_and_the_done_line_stays(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with step("npm", "building the web app", tmp_path, spinner.SpinnerDisplay(console)) as running:
        running.run([sys.executable, "-c", "print('vite building')"])
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert re.search(r"\[meteoflow\] building the web app \.\.\. done \(\d+ s\)\n$", plain)


def test_the_spinner_is_enabled_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(process, "step_display", process.StepDisplay())
    spinner.enable(Console(file=io.StringIO(), force_terminal=False))
    assert type(process.step_display) is process.StepDisplay
    spinner.enable(Console(file=io.StringIO(), force_terminal=True))
    assert isinstance(process.step_display, spinner.SpinnerDisplay)


def test_stack_run_turns_a_failure_into_a_stack_error_logged_in_the_current_step(tmp_path, capsys):
    with pytest.raises(StackError, match="exit code 1"):
        with step("maven", "resolving", tmp_path):
            install._run([sys.executable, "-c", "print('BUILD FAILURE'); raise SystemExit(1)"], "resolving Kafka")
    assert "BUILD FAILURE" in (tmp_path / "install-maven.log").read_text()
    captured = capsys.readouterr()
    assert "  BUILD FAILURE" in captured.err and "install-maven.log" in captured.err


def test_stack_run_outside_a_step_is_a_step_of_its_own(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METEOFLOW_RUN_DIR", str(tmp_path))
    install._run([sys.executable, "-c", "print('compiled')"], "building Docker Compose")
    assert re.fullmatch(r"\[meteoflow\] building Docker Compose \.\.\. done \(\d+ s\)\n", capsys.readouterr().out)
    assert "compiled" in (tmp_path / "logs" / "install-building-docker-compose.log").read_text()


def _bash_step(tmp_path, command: str) -> subprocess.CompletedProcess:
    """run.sh's own say/die/step functions (cut out of run.sh), running `command`."""
    script = (REPO_ROOT / "run.sh").read_text()
    funcs = re.findall(r"^(?:say|die)\(\) [^\n]*$|^step\(\) \{\n.*?^\}$", script, re.M | re.S)
    assert len(funcs) == 3, "run.sh's say/die/step functions not found"
    body = "\n".join(funcs) + f'\nSETUP_LOGS="{tmp_path}"\nstep fake "installing fake things" bash -c {shlex.quote(command)}\necho after\n'
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + body], capture_output=True, text=True)


def test_run_sh_step_that_succeeds_prints_one_line(tmp_path):
    done = _bash_step(tmp_path, "for i in $(seq 100); do echo pip line $i; done")
    assert done.returncode == 0
    assert re.fullmatch(r"\x1b\[1m\[meteoflow\]\x1b\[0m installing fake things \.\.\. done \(\d+ s\)\nafter\n", done.stdout)
    assert done.stderr == ""
    assert "pip line 100" in (tmp_path / "install-fake.log").read_text()


def test_run_sh_step_that_fails_shows_the_tail_and_the_log_path(tmp_path):
    done = _bash_step(tmp_path, "for i in $(seq 100); do echo pip line $i; done; echo 'No matching distribution' >&2; exit 4")
    assert done.returncode == 2 and "after" not in done.stdout
    assert done.stdout.endswith("installing fake things ... failed\n")
    log = tmp_path / "install-fake.log"
    assert "  No matching distribution" in done.stderr and "  pip line 100" in done.stderr
    assert "pip line 70\n" not in done.stderr
    assert f"installing fake things failed (exit 4; full log: {log})" in done.stderr
