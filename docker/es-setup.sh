#!/bin/bash
# One-shot Elasticsearch security setup, run by compose's `es-setup` (in the Elasticsearch
# image, which has curl). Idempotent: every call sets the same passwords and role again.
#   - kibana_system gets KIBANA_PASSWORD, so Kibana can connect;
#   - the role `meteoflow_writer` may manage index templates and read/write the
#     `<prefix>-*` indices, and the user `meteoflow` (APP_ES_PASSWORD) has only that role:
#     the Meteoflow services and Logstash use it, never the `elastic` superuser.
set -euo pipefail

ES=${ES_URL:-http://elasticsearch:9200}
PREFIX=${METEOFLOW_ES_INDEX_PREFIX:-meteoflow}
: "${ELASTIC_PASSWORD:?}" "${KIBANA_PASSWORD:?}" "${APP_ES_PASSWORD:?}"

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
  \"cluster\": [\"monitor\", \"manage_index_templates\"],
  \"indices\": [{\"names\": [\"${PREFIX}-*\"], \"privileges\": [\"create_index\", \"read\", \"write\", \"view_index_metadata\", \"manage\"]}]
}"
call PUT /_security/user/meteoflow "{
  \"password\": $(json_string "$APP_ES_PASSWORD"),
  \"roles\": [\"meteoflow_writer\"],
  \"full_name\": \"Meteoflow services and Logstash\"
}"
echo "es-setup: kibana_system password set; user meteoflow (role meteoflow_writer on ${PREFIX}-*) ready"
