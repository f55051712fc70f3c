"""The native Elasticsearch refuses wildcard index deletes and keeps disk watermarks on."""

import pytest
from elasticsearch import BadRequestError

from meteoflow.es import make_es_client
from stack.servers import ES_DISK_WATERMARKS


def test_a_wildcard_index_delete_is_refused(isolated):
    es = make_es_client(isolated)
    names = [f"{isolated.es_index_prefix}-wild-{n}" for n in range(2)]
    for name in names:
        es.indices.create(index=name)
    with pytest.raises(BadRequestError) as refused:
        es.indices.delete(index=f"{isolated.es_index_prefix}-wild-*")
    assert "Wildcard expressions or all indices are not allowed" in str(refused.value)
    with pytest.raises(BadRequestError):
        es.indices.delete(index="_all")
    assert all(es.indices.exists(index=name) for name in names)  # nothing was deleted
    es.indices.delete(index=",".join(names))  # named ones still go
    assert not any(es.indices.exists(index=name) for name in names)


def test_disk_watermarks_are_enabled(stack):
    es = make_es_client(stack)
    settings = es.cluster.get_settings(include_defaults=True, flat_settings=True)
    effective = {**settings["defaults"], **settings["persistent"], **settings["transient"]}
    assert effective["cluster.routing.allocation.disk.threshold_enabled"] == "true"
    for level, size in ES_DISK_WATERMARKS.items():
        assert effective[f"cluster.routing.allocation.disk.watermark.{level}"] == size
    assert effective["action.destructive_requires_name"] == "true"
