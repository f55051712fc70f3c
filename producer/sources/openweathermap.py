"""OpenWeatherMap: the HTTP client (requests) and the source built on it.

The API key travels only in the `appid` query parameter, so every text that could carry
a URL (exception messages, log lines, urllib3's debug lines) is scrubbed before it
leaves this module. Errors:
- 401: `OwmAuthError` (fatal) "OpenWeatherMap rejected the API key", raised at once.
- 5xx, timeouts, connection errors: retried with exponential backoff, then a per-region failure.
- 429: waits Retry-After (seconds or HTTP date) up to a cap, then retries.
- other 4xx (404 ...), malformed JSON, unexpected shape: a per-region failure.
- the key's request budget (producer/budget.py) spent for today: `OwmBudgetError`, a per-region
  failure without a request (the importers stop on it, their progress kept).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable

import requests

from meteoflow.clock import utc_now
from meteoflow.logs import mask_secrets
from meteoflow.contracts import describe_exception
from meteoflow.settings import Settings
from producer.budget import BudgetExhausted, RequestBudget
from producer.regions import Region
from producer.sources.base import FatalSourceError, RegionFailure, Source, SourceResult
from producer.sources.owm_mapping import MappingError, map_current, map_onecall

log = logging.getLogger("producer.openweathermap")

ONECALL_PATH = "/data/3.0/onecall"
TIMEMACHINE_PATH = "/data/3.0/onecall/timemachine"
CURRENT_PATH = "/data/2.5/weather"
_MAX_PAYLOAD_CHARS = 20_000  # what a dead letter keeps of a malformed body


class _MaskUrlFilter(logging.Filter):
    """urllib3 logs request lines (with the query string) at DEBUG: mask them first."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or "appid" in str(record.msg).lower():
            record.msg = mask_secrets(record.getMessage())
            record.args = ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_MaskUrlFilter())


class OwmAuthError(FatalSourceError):
    pass


class OwmRequestError(Exception):
    """One request failed for good (after retries, or not retryable)."""

    def __init__(self, reason: str, payload: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.payload = payload


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or utc_now())).total_seconds())


class OwmBudgetError(OwmRequestError):
    """The key's request budget allows no call now (see producer/budget.py)."""


class OwmClient:
    """`budget`: every request (retries too: each is billed) takes a call from it first;
    `reserve`: calls it must leave today (an importer leaves the schedule's)."""

    def __init__(self, settings: Settings, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, budget: RequestBudget | None = None,
                 reserve: Callable[[], int] = lambda: 0):
        if settings.owm_api_key is None or not settings.owm_api_key.get_secret_value():
            raise FatalSourceError("no OpenWeatherMap API key: set METEOFLOW_OWM_API_KEY (or use --source simulator)")
        self._key = settings.owm_api_key.get_secret_value()
        self.base_url = settings.owm_base_url.rstrip("/")
        self.api = settings.owm_api
        self.timeout = settings.owm_timeout_seconds
        self.max_retries = settings.owm_max_retries
        self.backoff = settings.owm_backoff_seconds
        self.max_retry_after = settings.owm_max_retry_after_seconds
        self.session = session or requests.Session()
        self.sleep = sleep
        self.budget = budget
        self.reserve = reserve

    def scrub(self, text: str) -> str:
        """Mask the key wherever it could appear (URL parameter or bare)."""
        return mask_secrets(text).replace(self._key, "***")

    # --- endpoints ---------------------------------------------------------------------
    def onecall(self, lat: float, lon: float) -> Any:
        return self.get(ONECALL_PATH, {"lat": lat, "lon": lon, "exclude": "minutely,hourly,daily,alerts"})

    def timemachine(self, lat: float, lon: float, when: int) -> Any:
        return self.get(TIMEMACHINE_PATH, {"lat": lat, "lon": lon, "dt": when})

    def current(self, lat: float, lon: float) -> Any:
        return self.get(CURRENT_PATH, {"lat": lat, "lon": lon})

    # --- one GET with retries -----------------------------------------------------------
    def get(self, path: str, params: dict[str, Any]) -> Any:
        query = {**params, "units": "metric", "appid": self._key}
        attempts = self.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            delay = self.backoff * (2 ** attempt)
            if self.budget is not None:
                try:
                    self.budget.acquire(self.reserve())
                except BudgetExhausted as exc:
                    raise OwmBudgetError(str(exc)) from None
            try:
                resp = self.session.get(self.base_url + path, params=query, timeout=self.timeout)
            except requests.Timeout:
                problem = f"no answer within {self.timeout:g}s"
            except requests.RequestException as exc:
                problem = f"connection failed: {self.scrub(str(exc))}"
            else:
                status = resp.status_code
                if status == 200:
                    return self._json(resp)
                if status == 401:
                    hint = " (or it has no One Call 3.0 subscription: set METEOFLOW_OWM_API=current)" \
                        if path.startswith("/data/3.0") else ""
                    raise OwmAuthError(f"OpenWeatherMap rejected the API key (HTTP 401){hint}")
                if status == 429:
                    wait = retry_after_seconds(resp.headers.get("Retry-After"))
                    if wait is not None and wait > self.max_retry_after:
                        raise OwmRequestError(
                            f"rate limited (HTTP 429): Retry-After {wait:g}s is longer than "
                            f"METEOFLOW_OWM_MAX_RETRY_AFTER_SECONDS={self.max_retry_after:g}")
                    problem = "rate limited (HTTP 429)"
                    if wait is not None:
                        delay = wait
                elif status >= 500:
                    problem = f"server error (HTTP {status})"
                else:
                    raise OwmRequestError(f"HTTP {status}: {self._message(resp)}")
            if attempt + 1 < attempts:
                log.info("GET %s: %s; retry %d/%d in %.2fs", path, problem, attempt + 1, self.max_retries, delay)
                self.sleep(delay)
        raise OwmRequestError(f"{problem}; gave up after {attempts} attempt(s)")

    def _json(self, resp: requests.Response) -> Any:
        try:
            return resp.json()
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to parse
            body = self.scrub(resp.text[:_MAX_PAYLOAD_CHARS])
            raise OwmRequestError(f"malformed JSON in the response ({len(resp.content)} bytes)", payload=body) from None

    def _message(self, resp: requests.Response) -> str:
        try:
            body = resp.json()
            text = body.get("message") if isinstance(body, dict) else None
        except (ValueError, RecursionError):
            text = None
        return self.scrub(str(text or resp.reason or "no message"))[:300]


def collect(client: OwmClient, result: SourceResult, region: Region, request: Callable[[], Any],
            mapper: Callable[[Region, Any], list[dict[str, Any]]], context: str = "",
            reraise: tuple[type[Exception], ...] = ()) -> None:
    """One request for one region: its records into `result`, or its failure (one region costs only
    itself). `reraise`: request errors the caller handles itself (an importer stops on the budget)."""
    try:
        body = request()
    except reraise:
        raise
    except OwmRequestError as exc:
        result.failures.append(RegionFailure(region.id, context + exc.reason, exc.payload))
        return
    try:
        result.records.extend(mapper(region, body))
    except Exception as exc:  # noqa: BLE001 - one response can cost only its own region
        reason = str(exc) if isinstance(exc, MappingError) else describe_exception(exc)
        payload = client.scrub(json.dumps(body, default=str))[:_MAX_PAYLOAD_CHARS]
        result.failures.append(RegionFailure(region.id, f"{context}unexpected response: {reason}", payload))


class OpenWeatherMapSource(Source):
    """The current conditions of every region, each run. History (the first start's back-fill,
    bulk imports) comes from the timemachine importer (producer/importer.py)."""

    name = "openweathermap"

    def __init__(self, settings: Settings, client: OwmClient | None = None):
        self.client = client or OwmClient(settings, budget=RequestBudget.for_settings(settings))
        self.api = settings.owm_api
        self.default_interval = settings.producer_interval_seconds

    def fetch(self, regions: list[Region], now: datetime) -> SourceResult:
        result = SourceResult()
        for region in regions:
            if self.api == "onecall":
                collect(self.client, result, region, lambda r=region: self.client.onecall(r.lat, r.lon),
                        lambda r, body: [map_onecall(r, body)])
            else:
                collect(self.client, result, region, lambda r=region: self.client.current(r.lat, r.lon),
                        lambda r, body: [map_current(r, body)])
        return result

    def close(self) -> None:
        self.client.session.close()


__all__ = ["OwmClient", "OwmAuthError", "OwmRequestError", "OwmBudgetError", "collect", "OpenWeatherMapSource", "retry_after_seconds"]
