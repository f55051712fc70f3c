"""A local stand-in for a Slack incoming webhook: records what it receives and can be
scripted to answer 500, 429 (with Retry-After), a wrong answer, or to time out.

    with SlackServer() as slack:
        slack.script = [500, 500]          # next two requests fail, then 200 "ok"
        ... slack.url ... slack.messages   # bodies answered 200
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from tests.fakes.local_http import LocalHttpServer


class SlackServer(LocalHttpServer):
    """Script items: an int status (429 gets Retry-After: `retry_after`), or
    ("timeout", seconds) to sleep before answering 200 so the client times out."""

    def __init__(self, path: str = "/services/T000/B000/XXXXSECRETXXXX", retry_after: float = 1):
        self.retry_after = retry_after
        self.script: list = []
        self.requests: list[dict] = []  # every attempt: {"at", "status", "body"}
        self.messages: list[dict] = []  # bodies answered 200 ok (i.e. delivered)
        self._lock = threading.Lock()
        super().__init__(path)

    def wait_for(self, count: int, timeout: float, predicate=lambda m: True) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if predicate(m)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return [m for m in self.messages if predicate(m)]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _answer(self, status: int, text: str, headers: dict | None = None) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != fake.path:
                    self._answer(404, "no_service")
                    return
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._answer(400, "invalid_payload")
                    return
                if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                    self._answer(400, "no_text")
                    return
                with fake._lock:
                    step = fake.script.pop(0) if fake.script else 200
                status = 200
                if isinstance(step, tuple) and step[0] == "timeout":
                    time.sleep(step[1])
                    status = 504  # the client has given up; what it gets is irrelevant
                elif step != 200:
                    status = int(step)
                with fake._lock:
                    fake.requests.append({"at": time.time(), "status": status, "body": body})
                    if status == 200:
                        fake.messages.append({"at": time.time(), **body})
                try:
                    if status == 200:
                        self._answer(200, "ok")
                    elif status == 429:
                        self._answer(429, "rate_limited", {"Retry-After": str(fake.retry_after)})
                    else:
                        self._answer(status, "server_error" if status >= 500 else "invalid")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
