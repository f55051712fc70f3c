"""Import the Meteoflow saved objects into Kibana (Docker path), and optionally the
Slack connector and alert rules (they need a tier with alerting connectors).

    python -m elk.kibana.setup --kibana http://localhost:5601 [--alerting]

Index titles get METEOFLOW_ES_INDEX_PREFIX; the webhook comes from
METEOFLOW_SLACK_WEBHOOK_URL and is never printed. Re-running overwrites (idempotent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import requests

from meteoflow.settings import load_settings

HERE = Path(__file__).resolve().parent
HEADERS = {"kbn-xsrf": "true"}


def wait_for_kibana(session: requests.Session, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            resp = session.get(f"{url}/api/status", timeout=5)
            if resp.ok and resp.json().get("status", {}).get("overall", {}).get("level") == "available":
                return
        except (requests.RequestException, ValueError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"Kibana at {url} not available after {timeout:.0f} s")
        time.sleep(3)


def saved_objects_ndjson(prefix: str, observations_topic: str = "weather.observations") -> bytes:
    text = (HERE / "saved_objects.ndjson").read_text()
    return text.replace("__PREFIX__", prefix).replace("__OBSERVATIONS_TOPIC__", observations_topic).encode()


def import_saved_objects(session: requests.Session, url: str, prefix: str,
                         observations_topic: str = "weather.observations") -> dict:
    resp = session.post(f"{url}/api/saved_objects/_import", params={"overwrite": "true"}, headers=HEADERS,
                        files={"file": ("meteoflow.ndjson", saved_objects_ndjson(prefix, observations_topic),
                                          "application/ndjson")},
                        timeout=60)
    resp.raise_for_status()
    result = resp.json()
    if not result.get("success"):
        raise SystemExit(f"import failed: {json.dumps(result.get('errors'), indent=2)}")
    return result


def alerting_definitions(prefix: str, webhook: str) -> list[tuple[str, str, dict]]:
    """(api path, id, body) of the connector then the rules, placeholders filled."""
    defs = []
    connector = json.loads((HERE / "alerting" / "slack_connector.json").read_text())
    connector["body"]["secrets"]["webhookUrl"] = webhook
    defs.append(("api/actions/connector", connector["id"], connector["body"]))
    for path in sorted((HERE / "alerting").glob("rule_*.json")):
        rule = json.loads(path.read_text().replace("__PREFIX__", prefix))
        defs.append(("api/alerting/rule", rule["id"], rule["body"]))
    return defs


def install_alerting(session: requests.Session, url: str, prefix: str, webhook: str) -> None:
    for api, obj_id, body in alerting_definitions(prefix, webhook):
        resp = session.post(f"{url}/{api}/{obj_id}", headers=HEADERS, json=body, timeout=30)
        if resp.status_code == 409:  # exists: replace the updatable part
            update = {k: v for k, v in body.items() if k not in ("connector_type_id", "rule_type_id", "consumer")}
            resp = session.put(f"{url}/{api}/{obj_id}", headers=HEADERS, json=update, timeout=30)
        if not resp.ok:
            raise SystemExit(f"{api}/{obj_id}: HTTP {resp.status_code}: {resp.text[:300]}")
        print(f"installed {api}/{obj_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kibana", default="http://localhost:5601")
    parser.add_argument("--alerting", action="store_true", help="also create the Slack connector and rules")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    settings = load_settings()
    session = requests.Session()
    if settings.es_username and settings.es_password is not None:
        session.auth = (settings.es_username, settings.es_password.get_secret_value())
    wait_for_kibana(session, args.kibana, args.timeout)
    result = import_saved_objects(session, args.kibana, settings.es_index_prefix, settings.topic_observations)
    print(f"imported {result.get('successCount')} saved objects")
    if args.alerting:
        if settings.slack_webhook_url is None:
            print("METEOFLOW_SLACK_WEBHOOK_URL is not set: skipping the Slack connector and rules", file=sys.stderr)
            return 1
        install_alerting(session, args.kibana, settings.es_index_prefix, settings.slack_webhook_url.get_secret_value())
    return 0


if __name__ == "__main__":
    sys.exit(main())
