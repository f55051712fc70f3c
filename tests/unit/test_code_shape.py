"""The shape of the code, read with ast: the runtime never imports the development stack, and the
jobs done in many places (the clock, a Kafka record, wording pydantic's errors) have one helper each."""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

import pytest

from meteoflow.kafka import KafkaRecord
from meteoflow.settings import REPO_ROOT

# What runs in production (natively under ./run.sh, or in the images); stack/ is the development
# supervisor and installer, which may use them but never the reverse.
RUNTIME_PACKAGES = ("meteoflow", "producer", "streaming", "forecasting_api", "elk", "webapp")


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (REPO_ROOT / package).rglob("*.py")
                  if "node_modules" not in p.parts)


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def name(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def imported_modules(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.append(node.module or "")
    return found


def stack_imports(paths: list[Path]) -> list[tuple[Path, str]]:
    return [(path, module) for path in paths for module in imported_modules(parsed(path))
            if module == "stack" or module.startswith("stack.")]


# Build-time tools that live next to what they build; no service imports them and no image runs them
# (the web app image builds the frontend with npm in its own stage).
BUILD_TOOLS = {"webapp/build.py", "webapp/openapi.py"}


def test_no_runtime_module_imports_the_development_stack():
    files = [path for path in python_files(*RUNTIME_PACKAGES) if name(path) not in BUILD_TOOLS]
    assert len(files) > 50  # the walk sees the packages
    found = [f"{name(path)} imports {module}" for path, module in stack_imports(files)]
    assert found == [], "runtime code must not depend on stack/ (the images do not ship it)"


def test_no_service_imports_the_build_tools():
    found = [f"{name(path)} imports {module}" for path in python_files(*RUNTIME_PACKAGES) if name(path) not in BUILD_TOOLS
             for module in imported_modules(parsed(path)) if module in ("webapp.build", "webapp.openapi")]
    assert found == []


def test_the_import_check_sees_an_import_of_stack(tmp_path):
    """It fails where it should: a module-level import and one inside a function are both found."""
    module = tmp_path / "job.py"
    module.write_text("import json\nimport stacks\nfrom stack.spark import spark_session\n\n"
                      "def main():\n    import stack\n")
    assert [found for _, found in stack_imports([module])] == ["stack.spark", "stack"]


def definitions(paths: list[Path], kind: type, wanted: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {w: [] for w in wanted}
    for path in paths:
        for node in ast.walk(parsed(path)):
            if isinstance(node, kind) and node.name in wanted:
                found[node.name].append(name(path))
    return found


def test_each_repeated_job_has_one_helper():
    files = python_files(*RUNTIME_PACKAGES)
    functions = definitions(files, ast.FunctionDef,
                            {"utc_now", "utc_now_iso", "field_errors", "field_path", "short_repr", "_short_repr"})
    assert functions == {"utc_now": ["meteoflow/clock.py"], "utc_now_iso": [], "field_errors": ["meteoflow/errors.py"],
                         "field_path": ["meteoflow/errors.py"], "short_repr": ["meteoflow/errors.py"],
                         "_short_repr": []}
    assert definitions(files, ast.ClassDef, {"KafkaRecord"}) == {"KafkaRecord": ["meteoflow/kafka.py"]}


def test_runtime_code_reads_the_clock_only_through_utc_now():
    calls = []
    for path in python_files(*RUNTIME_PACKAGES):
        if name(path) == "meteoflow/clock.py":
            continue
        for node in ast.walk(parsed(path)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("now", "utcnow") and ast.unparse(node.func.value) in ("datetime", "datetime.datetime")):
                calls.append(f"{name(path)}:{node.lineno}")
    assert calls == [], "use meteoflow.clock.utc_now (or the service's clock=)"


def test_pydantic_errors_are_worded_only_in_meteoflow_errors():
    """A loop over `exc.errors()` outside meteoflow/errors.py is a second way of wording them."""
    loops = []
    for path in python_files(*RUNTIME_PACKAGES):
        if name(path) == "meteoflow/errors.py":
            continue
        for node in ast.walk(parsed(path)):
            if isinstance(node, (ast.For, ast.comprehension)):
                iterated = node.iter
                if (isinstance(iterated, ast.Call) and isinstance(iterated.func, ast.Attribute)
                        and iterated.func.attr == "errors"):
                    loops.append(f"{name(path)}:{getattr(node, 'lineno', iterated.lineno)}")
    assert loops == [], "use meteoflow.errors.field_errors / describe_errors"


@pytest.mark.parametrize("millis, expected", [
    (1_700_000_000_123, datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=timezone.utc)),
    (None, None),
    (-1, None),  # kafka-python's "no timestamp"
    (10**18, None),  # a CreateTime no datetime holds
])
def test_a_kafka_record_time_is_aware_utc_or_none(millis, expected):
    assert KafkaRecord("t", 0, 1, None, b"v", millis).time == expected
