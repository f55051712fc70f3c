"""`python -m webapp.openapi`: the API's OpenAPI schema, and the React app's types generated from it.

The schema is dumped from the app itself (create_app(...).openapi(): no server, no store) to
webapp/frontend/src/api/schema.json, a checked-in file; openapi-typescript (an npm devDependency)
turns it into src/api/types.gen.ts, which src/api.ts re-exports under the names the components use.
After changing an endpoint or a body of meteoflow/contracts/web.py, run

    .venv/bin/python -m webapp.openapi            write schema.json, then regenerate types.gen.ts (npm)
    .venv/bin/python -m webapp.openapi --check    exit 1 when schema.json differs from the app's (no npm)

`python -m webapp.build` does the same before each build. Tests fail on a stale schema.json
(tests/unit/test_webapp_openapi.py) or a types.gen.ts that is not its output (test_webapp_frontend.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FRONTEND = Path(__file__).resolve().parent / "frontend"
SCHEMA = Path("src") / "api" / "schema.json"
TYPES = Path("src") / "api" / "types.gen.ts"
GENERATE_SCRIPT = "gen:types"  # package.json: openapi-typescript SCHEMA -o TYPES
CHECK_SCRIPT = "check:types"  # the same with --check: exit 1 when TYPES is not its output


def schema() -> dict[str, Any]:
    """The OpenAPI schema of the web app as it is now."""
    from meteoflow.settings import load_settings
    from webapp.app import create_app

    return create_app(load_settings()).openapi()


def schema_text() -> str:
    # Stable text (the app's own key order, two-space indent, final newline): a diff shows what changed.
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def is_current(root: Path = FRONTEND) -> bool:
    path = root / SCHEMA
    return path.is_file() and path.read_text() == schema_text()


def write_schema(root: Path = FRONTEND) -> bool:
    """Write schema.json when it differs from the app's (an unchanged file keeps its time); True when written."""
    text = schema_text()
    path = root / SCHEMA
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"[webapp.openapi] wrote {path}", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the checked-in schema.json is not the app's; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        if is_current():
            print(f"[webapp.openapi] {SCHEMA} is current")
            return 0
        print(f"[webapp.openapi] {SCHEMA} is stale: run `.venv/bin/python -m webapp.openapi`", file=sys.stderr)
        return 1
    from webapp.build import ensure_dependencies, npm

    write_schema()
    ensure_dependencies()
    npm(["run", "--silent", GENERATE_SCRIPT])
    return 0


if __name__ == "__main__":
    sys.exit(main())
