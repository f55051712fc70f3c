#!/bin/bash
# One-shot Kibana setup, run by compose's `kibana-setup` in the Kibana image (it has curl):
# imports every saved-objects file under elk/kibana/ (mounted at /meteoflow/kibana),
# overwriting what an earlier run imported, so re-running is harmless.
set -euo pipefail

KIBANA=${KIBANA_URL:-http://kibana:5601}
DIR=${KIBANA_OBJECTS_DIR:-/meteoflow/kibana}
: "${ELASTIC_PASSWORD:?}"

shopt -s nullglob globstar
files=("$DIR"/**/*.ndjson)
if [ ${#files[@]} -eq 0 ]; then
  echo "kibana-setup: no saved objects (*.ndjson) under $DIR" >&2
  exit 1
fi

for file in "${files[@]}"; do
  out=$(curl -sS -u "elastic:${ELASTIC_PASSWORD}" -H 'kbn-xsrf: meteoflow' \
    -X POST "$KIBANA/api/saved_objects/_import?overwrite=true" --form "file=@${file}")
  # Kibana answers 200 even when some objects failed; its body says so.
  if ! grep -q '"success":true' <<<"$out"; then
    echo "kibana-setup: importing ${file#$DIR/} failed: $out" >&2
    exit 1
  fi
  echo "kibana-setup: imported ${file#$DIR/}"
done
