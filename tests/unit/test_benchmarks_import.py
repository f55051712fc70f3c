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


def test_the_previous_design_takes_over_a_current_streaming_job():
    """pipeline_bench and freshness_bench measure the previous batch inside today's job: when the
    processor's sinks moved into `BatchSinks`, `use_previous_batch` broke, and both benchmarks' baseline
    phases with it (one crashed, the other reported nothing visible)."""
    import logging
    from types import SimpleNamespace

    from previous_design import PreviousProcessor, use_previous_batch
    from streaming.job import BatchProcessor, ProgressReporter

    observations, stats, deadletters, refresher = object(), object(), object(), object()
    reporter = ProgressReporter(logging.getLogger("test"))
    current = BatchProcessor(observations, stats, refresher, deadletters, reporter)
    job = SimpleNamespace(processor=current, refresher=refresher, deadletters=deadletters, reporter=reporter,
                          settings=SimpleNamespace(record_limits=current.limits), metrics=current.metrics)
    use_previous_batch(job)
    assert isinstance(job.processor, PreviousProcessor)
    sinks = job.processor.sinks
    assert (sinks.observations, sinks.stats, sinks.deadletters) == (observations, stats, deadletters)
    assert job.processor.refresher is refresher


def test_the_previous_design_web_app_serves_from_the_previous_store(monkeypatch):
    """freshness_bench's previous web app: it patched a name the app no longer used and served the
    current reads (region_latest, which the previous batch does not write): nothing became visible."""
    import webapp.routes.common as common
    from previous_design import use_previous_store
    from webapp.store import Store

    monkeypatch.setattr(common, "Store", Store)
    use_previous_store()
    created = common.Store  # what get_store creates at the app's first request
    assert issubclass(created, Store) and created.__name__ == "PreviousStore"
    assert created.latest_observations is not Store.latest_observations
    assert created.recent_window is not Store.recent_window
