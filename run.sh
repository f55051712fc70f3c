#!/usr/bin/env bash
# Meteoflow's one entry point.
#   ./run.sh            set up, start every server and service on simulator data, stop on Ctrl-C
#   ./run.sh test [ARGS] set up and run the whole test suite (ARGS go to pytest)
#   ./run.sh status      each server and service: state, port, pid
#   ./run.sh logs [NAME] [-f]
#   ./run.sh down [NAME] stop everything this checkout started (or one server/service)
#   ./run.sh up NAME     start one server/service again
#   ./run.sh bench       run the benchmarks in benchmarks/
#   ./run.sh recompute --from D --to D [--region R]  rebuild hourly/daily statistics from the archive
#   ./run.sh train-rain | predict-rain  train the rain model on the archive | store rain chances
#   ./run.sh docker up|down|logs  the same system with Docker Compose (docs/docker.md)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$PWD"
export PIP_CACHE_DIR="$ROOT/.cache/pip"
export npm_config_cache="$ROOT/.cache/npm"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
SETUP_LOGS="${METEOFLOW_RUN_DIR:-$ROOT/.run}/logs"

say() { printf '\033[1m[meteoflow]\033[0m %s\n' "$*"; }
die() { printf '[meteoflow] error: %s\n' "$*" >&2; exit 2; }

step() {
  # step NAME TITLE CMD...: one line for a set-up step; CMD's output goes to
  # <run_dir>/logs/install-NAME.log, whose tail is printed only when CMD fails.
  # (Python's steps print the same way, with a spinner on a terminal: stack.process.step.)
  local name=$1 title=$2 started=$SECONDS code
  shift 2
  local log="$SETUP_LOGS/install-$name.log"
  (umask 077 && mkdir -p "$SETUP_LOGS" && : >> "$log")  # run files are their owner's only (docs/security.md)
  printf '\033[1m[meteoflow]\033[0m %s ... ' "$title"
  if "$@" > "$log" 2>&1 < /dev/null; then
    printf 'done (%d s)\n' $((SECONDS - started))
  else
    code=$?
    printf 'failed\n'
    printf '[meteoflow] last lines of %s:\n' "$log" >&2
    tail -n 30 "$log" | sed 's/^/  /' >&2
    die "$title failed (exit $code; full log: $log)"
  fi
}

apt_install() {
  # Debian packages the stack needs; installed only when missing, and only as root.
  local missing=("$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    die "missing ${missing[*]}; install them with your package manager"
  fi
  step apt "installing Debian packages: ${missing[*]}" apt_get_install "${missing[@]}"
}

apt_get_install() {
  if [ ! -f "$ROOT/.cache/apt-updated" ]; then
    apt-get update -qq && mkdir -p "$ROOT/.cache" && touch "$ROOT/.cache/apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

pip_install() {
  # Every package hash-checked from requirements.lock, then Meteoflow itself, resolving nothing.
  "$PY" -m pip install -q --upgrade pip && "$PY" -m pip install -q --require-hashes -r requirements.lock \
    && "$PY" -m pip install -q --no-deps -e .
}

system_deps() {
  local need=()
  command -v java >/dev/null || need+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || need+=(maven)
  if [ "${1:-}" = test ]; then
    command -v chromium >/dev/null || need+=(chromium)
  fi
  command -v node >/dev/null || need+=(nodejs npm)
  apt_install "${need[@]}"
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || die "Go 1.22+ is needed to build FerretDB (https://go.dev/dl); Debian's golang is too old"
  [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
  return 0
}

python_env() {
  local py=${PYTHON:-python3}
  "$py" -c 'import sys; sys.exit(0 if (3,11) <= sys.version_info[:2] < (3,14) else 1)' \
    || die "Python 3.11-3.13 is needed (found $("$py" --version 2>&1)); set PYTHON=/path/to/python3.11"
  if [ ! -x "$PY" ]; then
    step venv "creating the virtual environment in .venv" "$py" -m venv "$VENV"
  fi
  local stamp="$VENV/.meteoflow-installed" want
  want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    step pip "installing Python dependencies (hash-checked from requirements.lock)" pip_install
    echo "$want" > "$stamp"
  fi
}

webapp_build() {
  # Builds the React app when its sources changed (the build script decides).
  if [ -f webapp/frontend/package.json ]; then
    "$PY" -m webapp.build
  fi
}

cmd=${1:-run}
[ $# -gt 0 ] && shift
case "$cmd" in
  run)
    system_deps
    python_env
    webapp_build
    exec "$PY" -m stack run
    ;;
  up)
    # ./run.sh up NAME...: start (again) named servers or services and return.
    [ $# -gt 0 ] || die "usage: ./run.sh up NAME... (./run.sh alone starts everything)"
    python_env
    exec "$PY" -m stack up "$@"
    ;;
  test)
    system_deps test
    python_env
    webapp_build
    set +e
    "$PY" -m pytest "$@"
    code=$?
    set -e
    # pytest's 5 means "no tests collected": that is a failure here, not a pass.
    exit $code
    ;;
  status|logs|down|install)
    python_env
    exec "$PY" -m stack "$cmd" "$@"
    ;;
  recompute|train-rain|predict-rain)
    # Batch jobs over the Parquet archive (batch/): ./run.sh recompute --from YYYY-MM-DD --to YYYY-MM-DD
    # [--region ID] rebuilds statistics; train-rain trains and evaluates the rain model; predict-rain
    # stores every region's rain chance.
    python_env
    exec "$PY" -m batch "$cmd" "$@"
    ;;
  docker)
    # Docker Compose deployment (compose.yaml): up | down | logs | ps | config
    exec "$ROOT/docker/docker.sh" "$@"
    ;;
  bench)
    system_deps
    python_env
    failed=()
    rm -rf "${METEOFLOW_RUN_DIR:-$ROOT/.run}/bench-results"  # the scoreboard shows this run only
    for bench in benchmarks/*_bench.py; do
      say "running $bench"
      "$PY" "$bench" "$@" || failed+=("$bench")
    done
    say "the goals, each next to the previous design measured in the same run:"
    "$PY" benchmarks/goals.py || true
    [ ${#failed[@]} -eq 0 ] || die "benchmarks that failed: ${failed[*]}"
    ;;
  -h|--help|help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    die "unknown command '$cmd' (try ./run.sh help)"
    ;;
esac
