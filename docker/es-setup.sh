#!/bin/bash
# One-shot Elasticsearch security setup, run by compose's `es-setup` (in the Elasticsearch
# image, which has curl). Idempotent: every call sets the same passwords and role again.
#   - kibana_system gets KIBANA_PASSWORD, so Kibana can connect;
#   - the role `meteoflow_writer` reads and writes the `<prefix>-*` indices and nothing else
#     (no template, ILM or cluster management: es-init installs the templates as `elastic`);
#     the user `meteoflow` (APP_ES_PASSWORD) has only that role: the Meteoflow services and
#     Logstash use it, never the `elastic` superuser;
#   - the role `meteoflow_webapp` reads the `<prefix>-*` indices and writes only the operator
#     actions the web app records (`<prefix>-silences`, `<prefix>-acks`); the user
#     `meteoflow_webapp` (WEBAPP_ES_PASSWORD) has only that role.
# `monitor` (read-only cluster state and health) is the only cluster privilege either has.
set -euo pipefail

ES=${ES_URL:-http://elasticsearch:9200}
PREFIX=${METEOFLOW_ES_INDEX_PREFIX:-meteoflow}
: "${ELASTIC_PASSWORD:?}" "${KIBANA_PASSWORD:?}" "${APP_ES_PASSWORD:?}" "${WEBAPP_ES_PASSWORD:?}"

json_string() {
  # A JSON string literal of $1 (passwords may hold quotes or backslashes).
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

call() {
  local method=$1 path=$2 body=$3 out
  if ! out=$(curl -sS -f -u "elastic:${ELASTIC_PASSWORD}" -X "$method" -H 'Content-Type: application/json' \
      "$ES$path" -d "$body" 2>&1); then
    echo "es-setup: $method $path failed: $out" >&2
    return 1
  fi
}

for attempt in $(seq 1 60); do
  if curl -sS -f -o /dev/null -u "elastic:${ELASTIC_PASSWORD}" "$ES/_security/_authenticate"; then break; fi
  [ "$attempt" -eq 60 ] && { echo "es-setup: Elasticsearch at $ES did not accept the elastic user" >&2; exit 1; }
  sleep 5
done

call POST /_security/user/kibana_system/_password "{\"password\": $(json_string "$KIBANA_PASSWORD")}"
call PUT /_security/role/meteoflow_writer "{
  \"cluster\": [\"monitor\"],
  \"indices\": [{\"names\": [\"${PREFIX}-*\"], \"privileges\": [\"create_index\", \"read\", \"write\", \"view_index_metadata\", \"manage\"]}]
}"
call PUT /_security/role/meteoflow_webapp "{
  \"cluster\": [\"monitor\"],
  \"indices\": [
    {\"names\": [\"${PREFIX}-*\"], \"privileges\": [\"read\", \"view_index_metadata\"]},
    {\"names\": [\"${PREFIX}-silences\", \"${PREFIX}-acks\"], \"privileges\": [\"create_index\", \"index\"]}
  ]
}"
call PUT /_security/user/meteoflow "{
  \"password\": $(json_string "$APP_ES_PASSWORD"),
  \"roles\": [\"meteoflow_writer\"],
  \"full_name\": \"Meteoflow services and Logstash\"
}"
call PUT /_security/user/meteoflow_webapp "{
  \"password\": $(json_string "$WEBAPP_ES_PASSWORD"),
  \"roles\": [\"meteoflow_webapp\"],
  \"full_name\": \"Meteoflow web app\"
}"
echo "es-setup: kibana_system password set; users meteoflow (role meteoflow_writer) and meteoflow_webapp (role meteoflow_webapp) on ${PREFIX}-* ready"
