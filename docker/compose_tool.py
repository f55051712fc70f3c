"""compose.yaml without a Docker engine: resolved in Python, or by a real Docker Compose.

    .venv/bin/python docker/compose_tool.py path            print the compose command found (building it if needed)
    .venv/bin/python docker/compose_tool.py install-plugin  put the built Compose v2 into ~/.docker/cli-plugins

`resolve()` reads compose.yaml the way `docker compose config` does for the keys the unit
tests check (YAML anchors and merges, `${VAR...}` interpolation from an env file, short port
syntax), offline and in milliseconds; tests/integration/test_compose_engine.py proves it
agrees with the real Compose. The real one is found or built as follows.

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
import re
import shutil
import subprocess
import sys
from pathlib import Path

from meteoflow.settings import Settings, load_settings
from stack.install import go_env
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
    env = go_env(settings)
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
    built = subprocess.run([go, "build", "-p", "1", "-trimpath", "-ldflags", ldflags, "-o", str(partial), "./cmd"],
                           env=env, cwd=source, capture_output=True, text=True)
    if built.returncode != 0:
        raise StackError(f"building Docker Compose {COMPOSE_VERSION} failed:\n{built.stdout}{built.stderr}"[-4000:])
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


# --- compose.yaml resolved in Python (what the unit tests read) ------------------------------

class ComposeError(ValueError):
    """compose.yaml cannot be resolved with these variables (Compose itself would refuse it)."""


_VARIABLE = re.compile(
    r"\$\$"  # an escaped dollar: the container's own variable
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>(?:[^{}]|\{[^{}]*\})*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (comments, blank lines and `export ` skipped; quotes removed)."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key.strip()):
            raise ComposeError(f"{path}:{number}: not a KEY=VALUE line")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def interpolate(text: str, variables: dict[str, str], where: str = "compose.yaml") -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
    `${VAR:+other}`, `${VAR+other}` and `$$`."""
    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return interpolate(arg, variables, where) if unset else value
        if op in (":?", "?"):
            if unset:
                raise ComposeError(f"{where}: required variable {name} is missing a value: {arg}")
            return value
        if op in (":+", "+"):
            return "" if unset else interpolate(arg, variables, where)
        return value or ""
    return _VARIABLE.sub(substitute, text)


def _interpolated(node, variables: dict[str, str], where: str):
    if isinstance(node, str):
        return interpolate(node, variables, where)
    if isinstance(node, dict):
        return {key: _interpolated(value, variables, f"{where}.{key}") for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(item, variables, where) for item in node]
    return node


def _port(spec) -> dict:
    """Short syntax `[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]` in the long form Compose prints."""
    if isinstance(spec, dict):
        return spec
    text, _, protocol = str(spec).partition("/")
    parts = text.rsplit(":", 2)
    port = {"mode": "ingress", "target": int(parts[-1]), "protocol": protocol or "tcp"}
    if len(parts) >= 2 and parts[-2]:
        port["published"] = parts[-2]
    if len(parts) == 3 and parts[0]:
        port["host_ip"] = parts[0]
    return port


def _environment(env) -> dict:
    if isinstance(env, list):  # `- KEY=VALUE` / `- KEY`
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: None if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in (env or {}).items()}


def memory_bytes(size) -> int:
    """`512m`, `2g`, `1536M`, `1073741824` -> bytes (powers of 1024, as Docker counts)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", str(size).strip().lower())
    if not match:
        raise ComposeError(f"{size!r} is not a memory size")
    return int(float(match.group(1)) * 1024 ** "bkmgt".index(match.group(2) or "b"))


def resolve(project_dir: Path, env_file: Path) -> dict:
    """compose.yaml with ENV_FILE's values, normalized as `compose config` prints it (services'
    ports, environment, depends_on, mem_limit in bytes; extension fields `x-*` dropped).
    Raises ComposeError where Compose would refuse the file (a required variable unset)."""
    import yaml

    document = yaml.safe_load((project_dir / "compose.yaml").read_text())  # anchors and `<<` merges
    variables = read_env_file(env_file)
    config = {key: value for key, value in document.items() if not key.startswith("x-")}
    config = _interpolated(config, variables, "compose.yaml")
    for name, service in config["services"].items():
        if "ports" in service:
            service["ports"] = [_port(p) for p in service["ports"]]
        if "environment" in service:
            service["environment"] = _environment(service["environment"])
        if "mem_limit" in service:
            service["mem_limit"] = str(memory_bytes(service["mem_limit"]))
        if "cpus" in service:
            service["cpus"] = float(service["cpus"])
        depends = service.get("depends_on")
        if isinstance(depends, list):
            service["depends_on"] = {dep: {"condition": "service_started"} for dep in depends}
    return config


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
    parser = argparse.ArgumentParser(prog="docker/compose_tool.py", description=__doc__.splitlines()[0])
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
