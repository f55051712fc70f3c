"""What the local stand-ins for outside HTTP services share: a threaded server on a free
loopback port, its URL, and start/stop as a context manager. Subclasses give `_handler()`."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


# serve_forever polls for shutdown() every 0.5 s by default: each stop would cost up to that.
POLL_INTERVAL = 0.02


def serve_thread(server, name: str | None = None) -> threading.Thread:
    """A daemon thread (not started) serving `server` until its shutdown(), which then returns promptly."""
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, name=name,
                            daemon=True)


class LocalHttpServer:
    def __init__(self, path: str):
        self.path = path
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = serve_thread(self._server)

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
