"""The pinned requirements of one service's image, taken from pyproject.toml.

    python docker/requirements.py SERVICE [PYPROJECT] > requirements.txt

pyproject.toml stays the one place where versions are pinned; each image installs
only the part its service imports (the streaming image needs pyspark, the
forecasting API needs Prophet, the others neither), so images stay small.
tests/unit/test_compose.py checks that every import reachable from a service's
entry point is covered by its list here.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# What the shared package (meteoflow/) imports: every service needs it.
SHARED = ["pydantic", "pydantic-settings", "kafka-python", "pymongo", "elasticsearch", "PyYAML", "prometheus-client"]

SERVICE_REQUIREMENTS: dict[str, list[str]] = {
    "producer": SHARED + ["requests", "schedule"],
    "streaming": SHARED + ["pyspark", "pandas", "requests"],
    "forecasting_api": SHARED + ["prophet", "pandas", "fastapi", "uvicorn", "requests"],
    "webapp": SHARED + ["fastapi", "uvicorn", "requests"],
    "alerting": SHARED + ["requests"],
}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(pyproject: Path) -> dict[str, str]:
    """{normalized name: requirement line} of the project's runtime dependencies."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {normalize(_name(dep)): dep for dep in deps}


def requirements(service: str, pyproject: Path) -> list[str]:
    if service not in SERVICE_REQUIREMENTS:
        raise SystemExit(f"unknown service {service!r}; known: {', '.join(SERVICE_REQUIREMENTS)}")
    available = pinned(pyproject)
    lines = []
    for name in SERVICE_REQUIREMENTS[service]:
        requirement = available.get(normalize(name))
        if requirement is None:
            raise SystemExit(f"{name} (needed by the {service} image) is not a dependency in {pyproject}")
        if "==" not in requirement:
            raise SystemExit(f"{requirement!r} in {pyproject} is not pinned with ==; images install pinned versions only")
        lines.append(requirement)
    return lines


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    pyproject = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "pyproject.toml"
    print("\n".join(requirements(argv[0], pyproject)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
