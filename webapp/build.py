"""`python -m webapp.build`: build the React app only when its sources changed.

The build is fingerprinted: a SHA-256 over the frontend's sources (src/, public/,
index.html, configs, package.json and the lockfile) is written into dist/ after a
successful build, and the next call builds again only if the fingerprint differs.
Dependencies are installed with `npm ci` (exactly the committed lockfile) when
node_modules is missing or the lockfile changed. Before the check, the API's OpenAPI schema
is dumped to src/api/schema.json (webapp.openapi), and before `vite build` the TypeScript
types are regenerated from it (src/api/types.gen.ts): the app is built against the API as it is.
Each npm command is one step (stack.process.step): one line, npm's output in
<run_dir>/logs/install-webapp-*.log.

    python -m webapp.build           build if needed
    python -m webapp.build --force   build anyway
    python -m webapp.build --check   exit 1 when a build is needed, build nothing
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path

from meteoflow.settings import load_settings
from stack import spinner
from stack.process import StackError, step

FRONTEND = Path(__file__).resolve().parent / "frontend"
SOURCE_FILES = ("package.json", "package-lock.json", "index.html", "vite.config.ts", "tsconfig.json")
SOURCE_DIRS = ("src", "public")
STAMP = ".source-hash"
LOCK_STAMP = ".meteoflow-lock-hash"


def source_files(root: Path = FRONTEND) -> list[Path]:
    files = [root / name for name in SOURCE_FILES if (root / name).is_file()]
    for folder in SOURCE_DIRS:
        if (root / folder).is_dir():
            files += [p for p in (root / folder).rglob("*") if p.is_file()]
    return sorted(files)


def fingerprint(root: Path = FRONTEND) -> str:
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def needs_build(root: Path = FRONTEND) -> bool:
    stamp = root / "dist" / STAMP
    if not (root / "dist" / "index.html").is_file() or not stamp.is_file():
        return True
    return stamp.read_text().strip() != fingerprint(root)


def npm(args: list[str], root: Path = FRONTEND, name: str = "webapp-npm", title: str | None = None) -> None:
    executable = shutil.which("npm")
    if executable is None:
        raise SystemExit("webapp.build: npm is not installed (Node.js 20+ with npm is needed to build the web app)")
    env = dict(os.environ)
    env.setdefault("npm_config_cache", str(root.parent.parent / ".cache" / "npm"))
    try:
        with step(name, title or f"npm {' '.join(args)}", load_settings().run_dir / "logs") as running:
            running.run([executable, *args], env=env, cwd=root)
    except StackError as exc:
        raise SystemExit(f"webapp.build: {exc}") from None


def ensure_dependencies(root: Path = FRONTEND) -> None:
    """`npm ci` when node_modules is missing or was installed from another lockfile."""
    lock_hash = _file_hash(root / "package-lock.json")
    lock_stamp = root / "node_modules" / LOCK_STAMP
    if not lock_stamp.is_file() or lock_stamp.read_text().strip() != lock_hash:
        npm(["ci", "--no-audit", "--no-fund"], root, "webapp-npm", "installing the web app's npm packages")
        lock_stamp.write_text(lock_hash)


def build(root: Path = FRONTEND, force: bool = False) -> bool:
    """Build when needed; return True when a build ran."""
    from webapp.openapi import GENERATE_SCRIPT, write_schema

    write_schema(root)  # the API's schema is one of the sources: an endpoint changed, the app builds again
    if not force and not needs_build(root):
        print("[webapp.build] web app is up to date", flush=True)
        return False
    ensure_dependencies(root)
    npm(["run", "--silent", GENERATE_SCRIPT], root, "webapp-types", "generating the API's TypeScript types")
    wanted = fingerprint(root)
    npm(["run", "build"], root, "webapp-build", "building the web app (vite)")
    (root / "dist" / STAMP).write_text(wanted)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp.build", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="build even when the sources did not change")
    parser.add_argument("--check", action="store_true", help="exit 1 when a build is needed; build nothing")
    args = parser.parse_args(argv)
    spinner.enable()
    if args.check:
        stale = needs_build()
        print("[webapp.build] build needed" if stale else "[webapp.build] web app is up to date")
        return 1 if stale else 0
    build(force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
