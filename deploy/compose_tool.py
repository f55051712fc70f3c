"""A real Docker Compose implementation, for checking compose.yaml where no Docker engine runs.

    python -m deploy.compose_tool path            print the compose command found (building it if needed)
    python -m deploy.compose_tool install-plugin  put the built Compose v2 into ~/.docker/cli-plugins

Preference: the Docker CLI's compose plugin (v2), then Compose v2 built from the Go module
proxy into `<cache_dir>/compose/<version>/docker-compose` (reused afterwards), then a
`docker-compose` on PATH (Debian's is v1.29, which knows fewer keys).

`go install github.com/docker/compose/v2/cmd@VERSION` refuses the module (its go.mod has
`exclude` directives), so the module source is downloaded and built in place, the way
stack/install.py builds FerretDB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from meteoflow.settings import Settings, load_settings
from stack.install import _go_env, _run
from stack.process import StackError

COMPOSE_VERSION = "v2.40.3"
COMPOSE_MODULE = "github.com/docker/compose/v2"


def cached_binary(settings: Settings) -> Path:
    return settings.cache_dir / "compose" / COMPOSE_VERSION / "docker-compose"


def build_compose(settings: Settings) -> Path:
    """Compose v2 from the Go module proxy, built once into the cache (a few minutes)."""
    binary = cached_binary(settings)
    if binary.exists():
        return binary
    # run.sh puts the official Go tarball's /usr/local/go/bin on PATH; look there too.
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise StackError("`go` not found; install Go 1.24+ to build Docker Compose v2 (or install the Docker Compose plugin)")
    env = _go_env(settings)
    print(f"building Docker Compose {COMPOSE_VERSION} from the Go module proxy (takes a few minutes)", flush=True)
    out = subprocess.run(
        [go, "mod", "download", "-json", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"],
        env=env, capture_output=True, text=True,
    )
    if out.returncode != 0:
        raise StackError(f"go mod download of {COMPOSE_MODULE}@{COMPOSE_VERSION} failed:\n{out.stdout}{out.stderr}")
    source = Path(json.loads(out.stdout)["Dir"])
    partial = binary.with_suffix(".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    ldflags = f"-s -w -X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
    # One package at a time: the machine is shared, and the build is cached afterwards anyway.
    _run([go, "build", "-p", "1", "-trimpath", "-ldflags", ldflags, "-o", str(partial), "./cmd"],
         "building Docker Compose", env=env, cwd=source)
    partial.replace(binary)  # only a finished build is ever taken from the cache
    return binary


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run([*cmd, "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def compose_command(settings: Settings, build: bool = True) -> list[str]:
    """argv prefix of a working Compose implementation; raises StackError when there is none."""
    docker = shutil.which("docker")
    if docker and _works([docker, "compose"]):
        return [docker, "compose"]
    cached = cached_binary(settings)
    if cached.exists() or build:
        try:
            return [str(build_compose(settings))]
        except StackError as exc:
            problem = str(exc)
    else:
        problem = f"{cached} is not built"
    legacy = shutil.which("docker-compose")
    if legacy and _works([legacy]):
        return [legacy]
    raise StackError(f"no Docker Compose found: no compose plugin, no docker-compose, and {problem}")


def run_compose(settings: Settings, project_dir: Path, env_file: Path, args: list[str],
                home: Path | None = None) -> subprocess.CompletedProcess:
    """`compose --env-file ENV_FILE ARGS` on PROJECT_DIR/compose.yaml, with a minimal environment:
    nothing from the caller's METEOFLOW_* or compose variables leaks into the result."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home or Path.home())}
    return subprocess.run(
        [*compose_command(settings), "--project-directory", str(project_dir), "-f", str(project_dir / "compose.yaml"),
         "--env-file", str(env_file), *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


def resolved_config(settings: Settings, project_dir: Path, env_file: Path) -> dict:
    """compose.yaml as Compose resolves it (anchors, merges, interpolation) with ENV_FILE's values."""
    import yaml

    result = run_compose(settings, project_dir, env_file, ["config"])
    if result.returncode != 0:
        raise StackError(f"compose config failed with {env_file.name}:\n{result.stderr}")
    return yaml.safe_load(result.stdout)


def version(cmd: list[str]) -> str:
    out = subprocess.run([*cmd, "version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).strip().splitlines()[0]


def install_plugin(settings: Settings, home: Path = Path.home()) -> Path:
    target = home / ".docker" / "cli-plugins" / "docker-compose"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(build_compose(settings), target)
    target.chmod(0o755)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.compose_tool", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["path", "install-plugin"])
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        if args.action == "path":
            cmd = compose_command(settings)
            print(" ".join(cmd), f"# {version(cmd)}")
        else:
            print(f"installed {install_plugin(settings)}: `docker compose` works now")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
