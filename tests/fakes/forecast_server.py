"""A small local HTTP server speaking the forecasting API's contract (meteoflow.contracts):
POST /predict/batch with a BatchRequest, answering a BatchResponse, and GET /health.

It predicts a daily-cycle persistence (each future hour = the mean of the history at the same
hour of day), which is enough for the streaming job's tests. `mode` switches it to fail
("fail": HTTP 500), to hang ("hang": no answer until switched back or stopped) or to be busy
("busy": HTTP 429 with Retry-After). With `api_key`, a POST without it in X-API-Key is a 401.
"""

from __future__ import annotations

import json
import statistics
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from meteoflow.contracts import (
    API_KEY_HEADER, BatchItem, BatchRequest, BatchResponse, ItemError, ModelFacts, Prediction, PredictRequest, PredictResponse,
)
from meteoflow.errors import field_errors
from tests.fakes.local_http import serve_thread


def persistence_forecast(req: PredictRequest) -> PredictResponse:
    by_hour: dict[int, list[float]] = {}
    times = []
    for point in req.data:
        when = datetime.fromisoformat(point.ds.replace("Z", "+00:00"))
        when = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        times.append(when)
        by_hour.setdefault(when.hour, []).append(point.y)
    overall = [p.y for p in req.data]
    last = max(times)
    predictions = []
    for step in range(1, req.horizon_hours + 1):
        target = last + timedelta(hours=step)
        same_hour = by_hour.get(target.hour) or overall
        mean = statistics.fmean(same_hour)
        spread = statistics.pstdev(same_hour) if len(same_hour) > 1 else 1.0
        predictions.append(Prediction(timestamp=target, temperature=round(mean, 3),
                                      lower=round(mean - 2 * spread - 0.5, 3), upper=round(mean + 2 * spread + 0.5, 3)))
    facts = ModelFacts(points_used=len(req.data), fit_seconds=0.0, seasonalities=["daily"])
    return PredictResponse(region_id=req.region_id, predictions=predictions, model=facts)


def answer(body: dict[str, Any], min_points: int) -> BatchResponse:
    batch = BatchRequest.model_validate(body)
    results = []
    for index, raw in enumerate(batch.series):
        region = raw.get("region_id") if isinstance(raw, dict) else None
        try:
            req = PredictRequest.model_validate(raw)
        except ValidationError as exc:
            first = field_errors(exc, prefix=f"series[{index}]")[0]  # the first, as the real API reports it
            results.append(BatchItem(index=index, region_id=region, status="error",
                                     error=ItemError(field=first.field, message=first.detail)))
            continue
        if len(req.data) < min_points:
            results.append(BatchItem(index=index, region_id=region, status="error", error=ItemError(
                field="data", message=f"needs at least {min_points} points, got {len(req.data)}")))
            continue
        results.append(BatchItem(index=index, region_id=region, status="ok", forecast=persistence_forecast(req)))
    return BatchResponse(results=results)


class FakeForecastServer:
    def __init__(self, host: str = "127.0.0.1", min_points: int = 24, api_key: str | None = None):
        self.mode = "ok"  # "ok" | "fail" | "hang" | "busy"
        self.min_points = min_points
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # of each POST
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload, default=str).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/health":
                    self._send(200, {"status": "ok"})
                else:
                    self._send(404, {"detail": "not found"})

            def do_POST(self):
                if self.path != "/predict/batch":
                    return self._send(404, {"detail": "not found"})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(body)
                server.headers.append(dict(self.headers.items()))
                if server.api_key is not None and self.headers.get(API_KEY_HEADER) != server.api_key:
                    return self._send(401, {"detail": [{"field": API_KEY_HEADER, "message": "wrong API key"}]})
                if server.mode == "busy":
                    return self._send(429, {"detail": [{"field": "request", "message": "queue full"}]},
                                      headers={"Retry-After": "7"})
                if server.mode == "hang":
                    server._release.wait(120)
                    return
                if server.mode == "fail":
                    return self._send(500, {"detail": "model store unavailable"})
                try:
                    self._send(200, answer(body, server.min_points).model_dump(mode="json"))
                except ValidationError as exc:
                    self._send(422, {"detail": exc.errors(include_url=False)})

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = serve_thread(self.httpd)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode != "hang":
            self._release.set()
            self._release = threading.Event()

    def __enter__(self) -> "FakeForecastServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
