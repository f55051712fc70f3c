"""A local stand-in for a healthchecks.io-style ping URL: records each GET or POST it gets,
and can be told to answer an error status.

    with PingServer() as hc:
        ... hc.url ... hc.pings   # one entry per request: {"at", "method", "path"}
"""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler

from tests.fakes.local_http import LocalHttpServer


class PingServer(LocalHttpServer):
    def __init__(self, path: str = "/ping/0f9a-SECRET-TOKEN", status: int = 200):
        self.status = status
        self.pings: list[dict] = []
        super().__init__(path)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _ping(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.pings.append({"at": time.time(), "method": self.command, "path": self.path})
                body = b"OK"
                self.send_response(fake.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _ping

        return Handler
