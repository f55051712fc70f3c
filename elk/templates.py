"""Installing the Elasticsearch index templates shipped as files under elk/templates/.

Each `<kind>.json` is a composable index template whose `index_patterns` use the
placeholder `__PREFIX__` (the configured index prefix). Installing is idempotent,
and indices are never left to dynamic mapping.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from meteoflow.settings import Settings

log = logging.getLogger("elk.templates")
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def load_templates(prefix: str) -> dict[str, dict]:
    templates = {}
    for path in sorted(TEMPLATE_DIR.glob("*.json")):
        text = path.read_text().replace("__PREFIX__", prefix)
        try:
            templates[f"{prefix}-{path.stem}"] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return templates


def install_templates(settings: Settings, client=None) -> list[str]:
    """PUT every template, then bring the indices that already exist up to date; return the names.

    A template applies only to indices created after it, and the alerts, heartbeats and silences
    indices are created once and kept: without this, an upgrade that adds a field to a strict
    mapping would have every new document refused (HTTP 400 strict_dynamic_mapping_exception)."""
    from meteoflow.es import make_es_client

    es = client or make_es_client(settings)
    names = []
    for name, body in load_templates(settings.es_index_prefix).items():
        es.indices.put_index_template(name=name, **body)
        update_existing_mappings(es, body)
        names.append(name)
    return names


def update_existing_mappings(es, template: dict) -> None:
    """Add the template's fields to the existing indices it matches (adding a field is always
    allowed; a field whose type changed is left as it is and reported)."""
    mappings = template.get("template", {}).get("mappings", {})
    if not mappings.get("properties"):
        return
    for pattern in template.get("index_patterns", []):
        try:
            es.options(ignore_status=404).indices.put_mapping(
                index=pattern, properties=mappings["properties"], allow_no_indices=True, ignore_unavailable=True)
        except Exception as exc:  # noqa: BLE001 - an old index with a conflicting field must not stop the stack
            log.warning("could not add the fields of %s to its existing indices: %s", pattern, str(exc)[:300])
