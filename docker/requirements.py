"""The hash-pinned requirements of one service's image, taken from requirements.lock.

    python docker/requirements.py SERVICE [LOCK] > requirements.txt
    pip install --require-hashes -r requirements.txt

requirements.lock (written by uv from pyproject.toml, every package with its hashes) stays the
one place where versions are pinned; each image installs only the part its service imports
(the streaming image needs pyspark, the forecasting API needs Prophet, the others neither), so
images stay small. The part is the service's top-level requirements below plus everything the
lock says they pull in (its `# via` annotations), hashes included. tests/unit/test_compose.py
checks that every import reachable from a service's entry point is covered by its list here.
This file runs in the image's build stage with a bare Python: standard library only.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# What the shared package (meteoflow/) imports: every service needs it.
SHARED = ["pydantic", "pydantic-settings", "kafka-python", "pymongo", "elasticsearch", "PyYAML", "prometheus-client"]

SERVICE_REQUIREMENTS: dict[str, list[str]] = {
    "producer": SHARED + ["requests", "schedule", "rich"],
    "streaming": SHARED + ["pyspark", "pandas", "requests"],
    "forecasting_api": SHARED + ["prophet", "pandas", "fastapi", "uvicorn", "requests"],
    "webapp": SHARED + ["fastapi", "uvicorn", "requests"],
    "alerting": SHARED + ["requests"],
}

# How the lock names a requirement of pyproject.toml itself in its `# via` lines.
PROJECT = "meteoflow (pyproject.toml)"
DEFAULT_LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class LockEntry:
    name: str  # normalized
    version: str
    marker: str  # environment marker ('' for every environment)
    text: str  # the requirement line with its --hash lines, as pip reads them
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)  # normalized names, or PROJECT

    @property
    def top_level(self) -> bool:
        return PROJECT in self.via


_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$")


def parse_lock(text: str, where: str = "requirements.lock") -> list[LockEntry]:
    """Entries of a `uv pip compile --generate-hashes` file (a name may appear once per marker)."""
    entries: list[LockEntry] = []
    in_via = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not line.startswith((" ", "#")):
            match = _REQUIREMENT.match(stripped)
            if not match:
                raise SystemExit(f"{where}:{number}: not a `name==version [; marker] \\` line: {stripped!r}")
            entries.append(LockEntry(normalize(match["name"]), match["version"], (match["marker"] or "").strip(),
                                     stripped.rstrip("\\").rstrip()))
            in_via = False
            continue
        if not entries:
            continue  # the header
        entry = entries[-1]
        if stripped.startswith("--hash="):
            entry.hashes.append(stripped.removeprefix("--hash=").rstrip("\\").strip())
            entry.text += " \\\n    " + stripped.rstrip("\\").strip()
        elif stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                entry.via.add(_via_name(rest))
        elif in_via and stripped.startswith("#"):
            entry.via.add(_via_name(stripped.lstrip("#").strip()))
    return entries


def _via_name(text: str) -> str:
    return PROJECT if text == PROJECT else normalize(text)


def closure(entries: list[LockEntry], top: list[str], where: str = "requirements.lock") -> list[LockEntry]:
    """The entries TOP pulls in: themselves, then every entry required (`via`) by one already in."""
    names = {e.name for e in entries}
    wanted = set()
    for requirement in top:
        name = normalize(requirement)
        if name not in names:
            raise SystemExit(f"{requirement} is not in {where}: add it to pyproject.toml and refresh the lock")
        if not any(e.top_level for e in entries if e.name == name):
            raise SystemExit(f"{requirement} is in {where} only as a dependency of another package; "
                             "images install pyproject.toml's own requirements")
        wanted.add(name)
    while True:
        more = {e.name for e in entries if e.name not in wanted and e.via & wanted}
        if not more:
            break
        wanted |= more
    return [e for e in entries if e.name in wanted]


def requirements(service: str, lock: Path = DEFAULT_LOCK) -> list[str]:
    if service not in SERVICE_REQUIREMENTS:
        raise SystemExit(f"unknown service {service!r}; known: {', '.join(SERVICE_REQUIREMENTS)}")
    entries = parse_lock(lock.read_text(), str(lock))
    chosen = closure(entries, SERVICE_REQUIREMENTS[service], str(lock))
    unhashed = [e.name for e in chosen if not e.hashes]
    if unhashed:
        raise SystemExit(f"{', '.join(unhashed)} in {lock} have no --hash: images install hash-checked packages only")
    return [e.text for e in chosen]


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    lock = Path(argv[1]) if len(argv) > 1 else DEFAULT_LOCK
    print("\n".join(requirements(argv[0], lock)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
