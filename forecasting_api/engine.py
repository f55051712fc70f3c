"""Runs fits in a pool of killable worker processes, with the cache, in-flight de-duplication and
the bound on pending work in front.

Prophet's fitting is CPU-bound Python + a Stan subprocess, so parallelism across cores needs
processes; a fit past forecast_timeout_seconds is cancelled by killing its worker
(forecasting_api.workers), so it cannot keep a core busy for a caller that has given up.

Warm start: the parameters of each region's last fit are kept here, in the server process (an LRU
of forecast_warm_start_regions regions, a few hundred floats each), sent with the region's next fit
and replaced by what that fit returns. Workers keep no state, so killing one loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from forecasting_api.cache import LruCache, cache_key
from forecasting_api.model import ModelConfig, forecast, worker_init
from forecasting_api.validation import CleanSeries
from forecasting_api.workers import CallTimedOut, WorkerPool, WorkerUnavailable
from meteoflow.settings import Settings

log = logging.getLogger("forecasting_api")


class ForecastFailed(Exception):
    """A fit that did not produce a forecast; `status` is the HTTP status for a single request."""

    def __init__(self, message: str, status: int, field: str = "data"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


class QueueFull(Exception):
    """Starting these fits would exceed forecast_max_pending_fits: answered 429 with Retry-After."""

    def __init__(self, pending: int, needed: int, limit: int, retry_after: int):
        super().__init__(f"{pending} fits are pending and this request needs {needed} more; the limit is {limit} "
                         f"(forecast_max_pending_fits); retry in {retry_after} s")
        self.message = str(self)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]  # the worker's dict (ok=True)
    cached: bool


@dataclass(frozen=True)
class Ticket:
    """One series' forecast once started: already known (cached) or a fit to wait for."""

    outcome: Outcome | None = None
    future: Future | None = None


class Forecaster:
    """`fit` runs in the workers (forecasting_api.model.forecast; tests pass a fake)."""

    def __init__(self, settings: Settings, fit: Callable[..., dict[str, Any]] = forecast,
                 initializer: Callable[[], None] | None = worker_init, pool: Any = None):
        self.workers = settings.forecast_workers or os.cpu_count() or 1
        self.timeout = settings.forecast_timeout_seconds
        self.nice = settings.forecast_worker_nice
        self.max_pending = settings.forecast_max_pending_fits
        self.config = ModelConfig(interval_width=settings.forecast_interval_width, seed=settings.forecast_seed,
                                  method=settings.forecast_method)
        self.cache = LruCache(settings.forecast_cache_size)
        self.warm = LruCache(settings.forecast_warm_start_regions)  # region_id -> its last fit's parameters
        self._fit = fit
        self._initializer = initializer
        self._pool = pool  # started lazily (or by warm_up), so building the app costs nothing
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}
        self.fits = 0
        self.coalesced = 0
        self.failures = 0
        self.rejected = 0
        self.warm_started = 0
        self._fit_seconds = 1.0  # moving average of a fit's duration, for Retry-After

    # --- pool -------------------------------------------------------------------
    def _get_pool(self):
        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(self.workers, self.timeout, self._initializer, nice=self.nice)
            return self._pool

    async def warm_up(self) -> None:
        """Start every worker (and import Prophet there) before the first request arrives."""
        pool = self._get_pool()
        await asyncio.to_thread(pool.wait_ready)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # --- forecasting ----------------------------------------------------------------
    def start(self, jobs: Sequence[tuple[CleanSeries, int, str | None]]) -> list[Ticket]:
        """Start the fits of `jobs` (series, horizon, region_id) at once, or none of them: QueueFull when
        the fits not cached nor already running would take pending fits past the limit."""
        keys = [cache_key(series, horizon, self.config) for series, horizon, _ in jobs]
        pool = self._get_pool()
        with self._lock:
            # _finish stores in the cache before it un-lists the fit, so under this lock one of the two is seen.
            known = {key: self.cache.get(key) for key in set(keys) if key not in self._inflight}
            needed = sum(1 for value in known.values() if value is None)
            if needed and len(self._inflight) + needed > self.max_pending:
                self.rejected += 1
                raise QueueFull(len(self._inflight), needed, self.max_pending, self._retry_after())
            tickets, started = [], []
            for key, (series, horizon, region) in zip(keys, jobs):
                running = self._inflight.get(key)
                if running is not None:
                    if not any(key == k for k, _, _ in started):
                        self.coalesced += 1
                    tickets.append(Ticket(future=running))
                elif known.get(key) is not None:
                    tickets.append(Ticket(outcome=Outcome(known[key], cached=True)))
                else:
                    warm = self.warm.get(region, count_miss=False) if region else None
                    extra = (warm,) if warm else ()  # the fake fits of the tests take no warm start
                    self.warm_started += bool(warm)
                    future = pool.submit(self._fit, series.epoch_seconds, series.values, horizon, self.config, *extra)
                    self._inflight[key] = future
                    started.append((key, future, region))
                    self.fits += 1
                    tickets.append(Ticket(future=future))
        for key, future, region in started:
            future.add_done_callback(lambda done, key=key, region=region: self._finish(key, done, region))
        return tickets

    def _retry_after(self) -> int:
        """Seconds until about a batch's worth of pending fits is done (at least 1)."""
        return max(1, math.ceil(len(self._inflight) / self.workers * self._fit_seconds))

    def _finish(self, key: str, done: Future, region: str | None) -> None:
        # Runs in a pool thread: store first, then un-list, so a new request finds one or the other.
        ok = not done.cancelled() and done.exception() is None and done.result().get("ok")
        if ok:
            result = done.result()
            params = result.pop("warm", None)  # the region's, not the answer's: never cached nor served
            if region and params:
                self.warm.put(region, params)
            self.cache.put(key, result)
        with self._lock:
            if ok:
                self._fit_seconds = 0.8 * self._fit_seconds + 0.2 * float(done.result().get("fit_seconds", 1.0))
            if self._inflight.get(key) is done:
                del self._inflight[key]

    async def outcome(self, ticket: Ticket) -> Outcome:
        """The forecast of a started ticket, or ForecastFailed."""
        if ticket.outcome is not None:
            return ticket.outcome
        try:
            # shield: a waiter that is cancelled must not cancel a fit other requests share.
            result = await asyncio.shield(asyncio.wrap_future(ticket.future))
        except CallTimedOut:
            self._failed()
            raise ForecastFailed(
                f"the fit ran past forecast_timeout_seconds={self.timeout:g} s and was cancelled", status=504
            ) from None
        except (WorkerUnavailable, asyncio.CancelledError) as exc:
            self._failed()
            detail = str(exc) if isinstance(exc, WorkerUnavailable) else "the service is stopping"
            raise ForecastFailed(f"{detail}; retry the request", status=503) from None
        except RuntimeError as exc:
            self._failed()
            raise ForecastFailed(f"the model could not be fitted: {exc}"[:500], status=422) from None
        if not result.get("ok"):
            self._failed()
            raise ForecastFailed(result.get("message", "the model failed"), status=422)
        return Outcome(result, cached=False)

    def _failed(self) -> None:
        with self._lock:
            self.failures += 1

    async def forecast(self, series: CleanSeries, horizon_hours: int, region_id: str | None = None) -> Outcome:
        """One series (QueueFull, ForecastFailed)."""
        (ticket,) = self.start([(series, horizon_hours, region_id)])
        return await self.outcome(ticket)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            inflight = len(self._inflight)
            pool = self._pool
        pool_stats = getattr(pool, "stats", None)
        return {
            "workers": self.workers,
            "fits": self.fits,
            "coalesced": self.coalesced,
            "failures": self.failures,
            "in_flight": inflight,
            "max_pending": self.max_pending,
            "rejected": self.rejected,
            "warm_started": self.warm_started,
            "warm_regions": len(self.warm),
            "timeouts": getattr(pool_stats, "timeouts", 0),
            "worker_restarts": getattr(pool_stats, "restarts", 0),
            "cache": self.cache.stats(),
        }
