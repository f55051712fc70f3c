"""The React app's own unit tests (Vitest: units, times, chart geometry), and its API types
generated from the checked-in OpenAPI schema, run from pytest so CI runs them too. Needs
node_modules, which `./run.sh test` installs via webapp.build: a build, and about 10 s of node,
so they live here rather than in tests/unit (offline, no build). No server needed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from webapp.build import FRONTEND
from webapp.openapi import CHECK_SCRIPT

pytestmark = pytest.mark.integration


def npm_run(script: str, tool: str) -> subprocess.CompletedProcess:
    npm = shutil.which("npm")
    if npm is None or not (FRONTEND / "node_modules" / ".bin" / tool).exists():
        pytest.skip("frontend dependencies not installed (python -m webapp.build installs them)")
    env = dict(os.environ, CI="true", NO_COLOR="1")
    return subprocess.run([npm, "run", "--silent", script], cwd=FRONTEND, env=env, capture_output=True, text=True,
                          timeout=300)


def test_vitest_suite_passes():
    result = npm_run("test", "vitest")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


def test_generated_api_types_are_openapi_typescripts_output_of_the_checked_in_schema():
    # tests/unit/test_webapp_openapi.py checks that schema.json is the app's; this, that types.gen.ts is
    # schema.json's: together, the UI's types are the API's. Fix either with `python -m webapp.openapi`.
    result = npm_run(CHECK_SCRIPT, "openapi-typescript")
    assert result.returncode == 0, ("src/api/types.gen.ts is not generated from src/api/schema.json: "
                                    "run `.venv/bin/python -m webapp.openapi`\n" + result.stdout[-2000:]
                                    + result.stderr[-2000:])


def test_the_app_type_checks_against_the_generated_types():
    result = npm_run("typecheck", "tsc")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
