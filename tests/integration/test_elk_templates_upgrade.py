"""Upgrading Meteoflow adds fields to strict mappings: installing the templates must bring the
indices that already exist up to date, or every new document would be refused (HTTP 400)."""

import pytest

from elk.templates import install_templates, load_templates
from meteoflow.es import make_es_client

pytestmark = pytest.mark.integration


def test_installing_the_templates_adds_new_fields_to_an_existing_strict_index(isolated):
    es = make_es_client(isolated)
    index = isolated.index("alerts")
    # The alerts template and index as an older Meteoflow made them: strict, without the newer fields.
    old = load_templates(isolated.es_index_prefix)[index]
    props = old["template"]["mappings"]["properties"]
    for newer in ("pending_since", "inhibited_by", "title"):
        props.pop(newer)
    es.indices.put_index_template(name=index, **old)
    es.indices.create(index=index)
    with pytest.raises(Exception, match="strict_dynamic_mapping_exception"):
        es.index(index=index, id="x", document={"incident_id": "x", "pending_since": "2026-12-02T06:00:00Z"})

    install_templates(isolated, es)

    es.index(index=index, id="x", document={"incident_id": "x", "pending_since": "2026-12-02T06:00:00Z"}, refresh=True)
    mapped = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapped["pending_since"] == {"type": "date"} and mapped["rule"] == {"type": "keyword"}
