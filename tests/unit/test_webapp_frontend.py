"""The React app's own unit tests (Vitest: units, times, chart geometry), run from pytest so
CI runs them too. Needs node_modules, which `./run.sh test` installs via webapp.build."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from webapp.build import FRONTEND


def test_vitest_suite_passes():
    npm = shutil.which("npm")
    if npm is None or not (FRONTEND / "node_modules" / ".bin" / "vitest").exists():
        pytest.skip("frontend dependencies not installed (python -m webapp.build installs them)")
    env = dict(os.environ, CI="true", NO_COLOR="1")
    result = subprocess.run([npm, "test", "--silent"], cwd=FRONTEND, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
