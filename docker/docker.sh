#!/usr/bin/env bash
# ./run.sh docker COMMAND: Meteoflow with Docker Compose (compose.yaml at the repository root).
#   up      build the images and start everything in the background, wait until healthy
#   down    stop and remove the containers (data volumes are kept; `down -v` deletes them)
#   logs    follow the logs (all services, or the ones named)
#   ps      state and health of each container
#   config  print the resolved configuration (checks compose.yaml and .env)
# Anything else is passed to `docker compose` as it is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { printf '[meteoflow] error: %s\n' "$*" >&2; exit 2; }
say() { printf '\033[1m[meteoflow]\033[0m %s\n' "$*"; }

need_compose() {
  # Compose v2 only (`up --wait`, YAML merge lists): the Docker CLI plugin.
  if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  else
    die "Docker Compose v2 is needed: install Docker's compose plugin (package docker-compose-plugin),
  or build it from the Go module proxy: .venv/bin/python docker/compose_tool.py install-plugin"
  fi
}

setting() {  # the value of $1 in .env, else $2
  local value
  value=$(grep -E "^$1=" .env 2>/dev/null | tail -n1 | cut -d= -f2- || true)
  echo "${value:-$2}"
}

env_ready() {
  if [ ! -f .env ]; then
    cp .env.example .env
    chmod 600 .env
    die "created .env from .env.example: set its passwords (every change-me-... value), then run this again"
  fi
  if grep -Eq '^[A-Z_]*(PASSWORD|KEY)=change-me' .env; then
    die ".env still has change-me-... passwords: set them ($(grep -Eo '^[A-Z_]*(PASSWORD|KEY)=change-me' .env | cut -d= -f1 | tr '\n' ' '))"
  fi
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  up)
    need_compose
    env_ready
    # --wait returns once every long-running service is healthy (and fails if one is not).
    "${compose[@]}" up -d --build --wait "$@"
    host=$(setting PUBLISH_HOST 127.0.0.1)
    say "Meteoflow is up:"
    say "  web app              http://$host:$(setting WEBAPP_PUBLISHED_PORT 8080)/"
    say "  forecasting API docs http://$host:$(setting FORECAST_API_PUBLISHED_PORT 8000)/docs"
    say "  Kibana               http://$host:$(setting KIBANA_PUBLISHED_PORT 5601)/  (user elastic, password ELASTIC_PASSWORD)"
    say "Logs: ./run.sh docker logs [SERVICE]; stop: ./run.sh docker down"
    ;;
  down)
    need_compose
    exec "${compose[@]}" down "$@"
    ;;
  logs)
    need_compose
    exec "${compose[@]}" logs -f --tail=200 "$@"
    ;;
  ps|config)
    need_compose
    [ -f .env ] || die "no .env yet: cp .env.example .env and set its passwords"
    exec "${compose[@]}" "$cmd" "$@"
    ;;
  -h|--help|help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    need_compose
    exec "${compose[@]}" "$cmd" "$@"
    ;;
esac
