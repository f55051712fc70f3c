"""Installing the Elasticsearch index templates shipped as files under elk/templates/.

Each `<kind>.json` is a composable index template whose `index_patterns` use the
placeholder `__PREFIX__` (the configured index prefix). Installing is idempotent,
and indices are never left to dynamic mapping.
"""

from __future__ import annotations

import json
from pathlib import Path

from meteoflow.settings import Settings

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
    """PUT every template; return their names."""
    from meteoflow.es import make_es_client

    es = client or make_es_client(settings)
    names = []
    for name, body in load_templates(settings.es_index_prefix).items():
        es.indices.put_index_template(name=name, **body)
        names.append(name)
    return names
