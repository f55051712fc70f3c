"""What the local stand-ins for outside HTTP services share: a threaded server on a free
loopback port, its URL, and start/stop as a context manager. Subclasses give `_handler()`."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class LocalHttpServer:
    def __init__(self, path: str):
        self.path = path
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self):
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
