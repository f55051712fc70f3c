"""Dead-man's switch: after each completed evaluation the alerting service says it is alive,
to an optional external URL (healthchecks.io style: the receiver alerts when pings stop, which
is the one failure the service cannot report itself) and to Elasticsearch (the web app's banner).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

log = logging.getLogger("alerting")


def masked(url: str) -> str:
    """Scheme and host only: the path and query of a ping URL are its token."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/***"


class Pinger:
    def __init__(self, url: SecretStr | None, timeout: float = 5.0, session: requests.Session | None = None):
        self._url = url
        self.timeout = timeout
        self._session = session or requests.Session()

    @property
    def configured(self) -> bool:
        return self._url is not None

    def ping(self) -> bool:
        """One GET; a failure is logged (URL masked) and never raised: it must not stop the loop."""
        if self._url is None:
            return False
        url = self._url.get_secret_value()
        try:
            resp = self._session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("heartbeat ping to %s failed: %s", masked(url), type(exc).__name__)  # messages embed the URL
            return False
        if resp.status_code >= 400:
            log.warning("heartbeat ping to %s answered HTTP %s", masked(url), resp.status_code)
            return False
        return True
