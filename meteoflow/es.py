"""The Elasticsearch client, configured once (8.x client for the 8.x server)."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from meteoflow.settings import Settings


def make_es_client(settings: Settings, **extra) -> Elasticsearch:
    auth = None
    if settings.es_username and settings.es_password is not None:
        auth = (settings.es_username, settings.es_password.get_secret_value())
    options = dict(request_timeout=30, retry_on_timeout=True, max_retries=3)
    options.update(extra)
    return Elasticsearch(settings.es_url, basic_auth=auth, **options)
