"""Every benchmark script imports: `./run.sh bench` runs them all, and one whose import broke (a
helper renamed in another script) failed only there, long after the change that broke it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def scripts_on_path(monkeypatch):
    # As `python benchmarks/x.py` runs them: their own directory first (they import each other by name).
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCHMARKS.glob("*_bench.py")))
def test_each_benchmark_script_imports_and_has_a_main(script):
    module = importlib.import_module(script)
    assert callable(getattr(module, "main", None)), f"benchmarks/{script}.py has no main()"
    assert module.__doc__ and script in sys.modules
