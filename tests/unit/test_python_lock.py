"""requirements.lock is in step with pyproject.toml, and everything installs from it hash-checked.

pyproject.toml names the top-level requirements (pinned with ==); requirements.lock is what
`uv pip compile` resolved from them, every package with its hashes. ./run.sh and the
Dockerfiles install from the lock with --require-hashes, so a lock that lags pyproject.toml
would install something else than what it says: these checks catch that offline.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from meteoflow.settings import REPO_ROOT
from tests.docker_scripts import load_script

lock_tool = load_script("requirements")
LOCK = REPO_ROOT / "requirements.lock"
PYPROJECT = REPO_ROOT / "pyproject.toml"
# The one command that refreshes the lock (README.md, "Python dependencies"); uv writes it in the header.
REFRESH = "uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 --generate-hashes -o requirements.lock"
# The platform the project runs on here and in CI (and in the images: Debian, CPython 3.11).
LINUX_CPYTHON_311 = {"python_version": "3.11", "python_full_version": "3.11.14", "sys_platform": "linux",
                     "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                     "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def top_level_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


@pytest.fixture(scope="module")
def entries():
    return lock_tool.parse_lock(LOCK.read_text())


def lock_problems(requirements: list[Requirement], entries) -> list[str]:
    problems = []
    by_name: dict[str, list] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
        if not entry.hashes or not all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in entry.hashes):
            problems.append(f"{entry.name}=={entry.version} has no sha256 --hash")
    for req in requirements:
        name = lock_tool.normalize(req.name)
        found = [e for e in by_name.get(name, []) if e.top_level]
        if not found:
            problems.append(f"{req} (pyproject.toml) is not a top-level entry of the lock")
        for entry in found:
            if entry.version not in req.specifier:
                problems.append(f"{req} (pyproject.toml) but the lock has {entry.version}")
    declared = {lock_tool.normalize(r.name) for r in requirements}
    for entry in entries:
        if entry.top_level and entry.name not in declared:
            problems.append(f"{entry.name} is in the lock for pyproject.toml, which no longer requires it")
    return problems


def test_the_lock_is_in_step_with_pyproject(entries):
    problems = lock_problems(top_level_requirements(), entries)
    assert not problems, "refresh the lock (README.md, Python dependencies):\n" + "\n".join(problems)


def test_pyproject_pins_every_top_level_requirement():
    loose = [str(r) for r in top_level_requirements() if not str(r.specifier).startswith("==")]
    assert not loose, f"pin these with == in pyproject.toml: {loose}"


def test_the_check_sees_a_lagging_lock(entries):
    """The in-step check fails where it should: a bumped pin, a new requirement, a hashless entry."""
    bumped = [Requirement("pydantic==0.0.1"), Requirement("not-locked-yet==1.0")]
    problems = " ".join(lock_problems(bumped, entries))
    assert "pydantic==0.0.1 (pyproject.toml) but the lock has" in problems
    assert "not-locked-yet==1.0 (pyproject.toml) is not a top-level entry" in problems
    assert "fastapi is in the lock for pyproject.toml, which no longer requires it" in problems
    hashless = lock_tool.parse_lock("six==1.17.0\n    # via meteoflow (pyproject.toml)\n")
    assert "six==1.17.0 has no sha256 --hash" in lock_problems([Requirement("six==1.17.0")], hashless)


def test_the_lock_covers_linux_x86_64_cpython_311(entries):
    """One entry of each package applies on this platform (a universal lock splits some by Python)."""
    applicable: dict[str, list[str]] = {}
    for entry in entries:
        if not entry.marker or Marker(entry.marker).evaluate(LINUX_CPYTHON_311):
            applicable.setdefault(entry.name, []).append(entry.version)
    assert all(len(v) == 1 for v in applicable.values()), {k: v for k, v in applicable.items() if len(v) > 1}
    needed = {lock_tool.normalize(r.name) for r in top_level_requirements()}
    assert needed <= set(applicable), sorted(needed - set(applicable))


def test_the_lock_says_how_it_was_made():
    header = LOCK.read_text().split("\n", 3)[:2]
    assert header[1].strip("# ") == REFRESH, "regenerate the lock with the documented command"
    assert REFRESH in (REPO_ROOT / "README.md").read_text()


def test_run_sh_installs_from_the_lock_with_hashes():
    run_sh = (REPO_ROOT / "run.sh").read_text()
    python_env = re.search(r"^python_env\(\) \{\n(.*?)^\}", run_sh, re.S | re.M).group(1)
    pip_install = re.search(r"^pip_install\(\) \{\n(.*?)^\}", run_sh, re.S | re.M).group(1)
    assert "pip_install" in python_env  # the set-up step runs it
    assert "pip install -q --require-hashes -r requirements.lock" in pip_install
    assert "pip install -q --no-deps -e ." in pip_install
    assert "requirements.lock" in python_env.split("want=", 1)[1].splitlines()[0]  # a new lock reinstalls
