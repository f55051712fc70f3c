"""A local HTTP server that speaks OpenWeatherMap's JSON, for testing the real client.

Endpoints: One Call 3.0 `/data/3.0/onecall` and `/data/3.0/onecall/timemachine`, and
Current Weather 2.5 `/data/2.5/weather`. It checks `appid` (wrong key: 401 with OWM's body)
and `units=metric`. Replies are scripted per request:

    with FakeOwm(api_key="k") as owm:
        owm.script(Reply.status(500), Reply.ok(), lat=14.69, lon=-17.45)  # next two requests for Dakar
        owm.always(Reply.status(404), lat=15.66, lon=-13.26)               # every request for Matam
        owm.script(Reply.slow(2.0))                                         # next request, any region

Unscripted requests get a realistic 200 body built from lat/lon/dt (at a fixed instant, or with
`FakeOwm(live=True)` at the current time with a daily cycle). Every request is
recorded in `owm.requests` (path and query) so tests can count retries.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.local_http import serve_thread

ONECALL = "/data/3.0/onecall"
TIMEMACHINE = "/data/3.0/onecall/timemachine"
CURRENT = "/data/2.5/weather"
FIXED_DT = 1_767_268_800  # 2026-01-01T12:00:00Z


@dataclass
class Reply:
    code: int = 200
    body: Any = None  # dict/list -> JSON; str -> sent as is; None -> the default body (200) or OWM's error
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (longer than the client timeout = a timeout)

    @classmethod
    def ok(cls, body: Any = None) -> "Reply":
        return cls(200, body)

    @classmethod
    def status(cls, code: int, message: str | None = None) -> "Reply":
        return cls(code, {"cod": code, "message": message or _MESSAGES.get(code, "error")})

    @classmethod
    def rate_limited(cls, retry_after: str | int | float) -> "Reply":
        return cls(429, {"cod": 429, "message": _MESSAGES[429]}, {"Retry-After": str(retry_after)})

    @classmethod
    def malformed(cls) -> "Reply":
        return cls(200, '{"lat": 14.69, "current": {"dt": 17672688')  # cut short, like a dropped connection

    @classmethod
    def slow(cls, seconds: float) -> "Reply":
        return cls(200, None, delay=seconds)


_MESSAGES = {
    401: "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info.",
    404: "city not found",
    429: "Your account is temporary blocked due to exceeding of requests limitation of your subscription type.",
    500: "Internal error",
}


@dataclass(frozen=True)
class Request:
    path: str
    params: dict[str, str]

    @property
    def where(self) -> tuple[float, float] | None:
        try:
            return _point(float(self.params["lat"]), float(self.params["lon"]))
        except (KeyError, ValueError):
            return None


def _point(lat: float, lon: float) -> tuple[float, float]:
    return round(lat, 3), round(lon, 3)


def _weather_point(lat: float, dt: int, lon: float | None = None) -> dict[str, Any]:
    """Constant weather of a place; with `lon` (a live stand-in), a daily cycle peaking at 15:00 local
    solar time and a fixed, hour-to-hour wobble, so a forecast has something to learn."""
    temp = round(30.0 - abs(lat) * 0.3, 2)
    if lon is not None:
        hour = (dt / 3600 + lon / 15) % 24
        wobble = ((dt // 3600) * 7919 + int(lat * 1000)) % 101 / 100 - 0.5
        temp = round(temp + 4.0 * math.sin(2 * math.pi * (hour - 9) / 24) + wobble, 2)
    return {
        "dt": dt, "sunrise": dt - 5 * 3600, "sunset": dt + 6 * 3600, "temp": temp, "feels_like": temp + 1.2,
        "pressure": 1012, "humidity": 62, "dew_point": round(temp - 6.5, 2), "uvi": 7.4, "clouds": 20,
        "visibility": 10000, "wind_speed": 4.6, "wind_deg": 330, "wind_gust": 6.1,
        "weather": [{"id": 801, "main": "Clouds", "description": "few clouds", "icon": "02d"}],
    }


def default_body(req: Request, live: bool = False) -> dict[str, Any]:
    """The 200 body of an unscripted request: a fixed instant (FIXED_DT) and constant weather, or with
    `live` the current time and weather that follows the clock (FakeOwm(live=True))."""
    lat, lon = float(req.params["lat"]), float(req.params["lon"])
    now = int(time.time()) // 60 * 60 if live else FIXED_DT
    cycle = lon if live else None
    if req.path == CURRENT:
        point = _weather_point(lat, now, cycle)
        return {
            "coord": {"lon": lon, "lat": lat}, "weather": point["weather"], "base": "stations",
            "main": {"temp": point["temp"], "feels_like": point["feels_like"], "temp_min": point["temp"] - 1,
                     "temp_max": point["temp"] + 1, "pressure": 1012, "humidity": 62, "sea_level": 1012,
                     "grnd_level": 1010},
            "visibility": 10000, "wind": {"speed": 4.6, "deg": 330, "gust": 6.1}, "clouds": {"all": 20},
            "dt": now, "sys": {"country": "SN", "sunrise": now - 5 * 3600, "sunset": now + 6 * 3600},
            "timezone": 0, "id": 2253354, "name": "Somewhere", "cod": 200,
        }
    head = {"lat": lat, "lon": lon, "timezone": "Africa/Dakar", "timezone_offset": 0}
    if req.path == TIMEMACHINE:
        return {**head, "data": [_weather_point(lat, int(req.params["dt"]), cycle)]}
    return {**head, "current": _weather_point(lat, now, cycle)}


class FakeOwm:
    def __init__(self, api_key: str = "fake-owm-key-0123456789abcdef", live: bool = False):
        self.api_key = api_key
        self.live = live  # unscripted answers at the current time, with a daily cycle (default_body)
        self.requests: list[Request] = []
        self._queues: dict[tuple[float, float] | None, deque[Reply]] = {}
        self._always: dict[tuple[float, float], Reply] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- scripting ---------------------------------------------------------------------
    def script(self, *replies: Reply, lat: float | None = None, lon: float | None = None) -> None:
        """Queue replies for the next requests of one place (lat/lon) or, without one, of any place."""
        key = None if lat is None else _point(lat, lon)
        with self._lock:
            self._queues.setdefault(key, deque()).extend(replies)

    def always(self, reply: Reply, lat: float, lon: float) -> None:
        with self._lock:
            self._always[_point(lat, lon)] = reply

    def count(self, path: str | None = None) -> int:
        return sum(1 for r in self.requests if path is None or r.path == path)

    def _next_reply(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            where = req.where
            if where in self._always:
                return self._always[where]
            for key in (where, None):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
        return Reply.ok()

    # --- server ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeOwm":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                parsed = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                req = Request(parsed.path, params)
                reply = fake._next_reply(req)
                if params.get("appid") != fake.api_key:
                    reply = Reply.status(401)
                elif parsed.path not in (ONECALL, TIMEMACHINE, CURRENT):
                    reply = Reply.status(404, "Internal error: 404")
                elif params.get("units") != "metric":
                    reply = Reply.status(400, "units must be metric in these tests")
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body if reply.body is not None else (
                    default_body(req, fake.live) if reply.code == 200 else {})
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(reply.code)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of a slow reply

            def log_message(self, *args):  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        serve_thread(self._server, name="fake-owm").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeOwm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
