"""Runs fits in a pool of worker processes, with the cache and in-flight de-duplication in front.

Prophet's fitting is CPU-bound Python + a Stan subprocess, so parallelism across cores needs
processes. The pool uses `spawn` so workers never inherit the server's threads or locks.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from forecasting_api.cache import LruCache, cache_key
from forecasting_api.model import ModelConfig, forecast, worker_init
from forecasting_api.validation import CleanSeries
from meteoflow.settings import Settings

log = logging.getLogger("forecasting_api")


class ForecastFailed(Exception):
    """A fit that did not produce a forecast; `status` is the HTTP status for a single request."""

    def __init__(self, message: str, status: int, field: str = "data"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]  # the worker's dict (ok=True)
    cached: bool


def _warm() -> int:
    return os.getpid()


class Forecaster:
    def __init__(self, settings: Settings):
        self.workers = settings.forecast_workers or os.cpu_count() or 1
        self.timeout = settings.forecast_timeout_seconds
        self.config = ModelConfig(interval_width=settings.forecast_interval_width, seed=settings.forecast_seed)
        self.cache = LruCache(settings.forecast_cache_size)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}
        self.fits = 0
        self.coalesced = 0
        self.failures = 0

    # --- pool -------------------------------------------------------------------
    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=worker_init,
                )
            return self._pool

    def _discard_pool(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)

    async def warm_up(self) -> None:
        """Start every worker (and import Prophet there) before the first request arrives."""
        pool = self._get_pool()
        await asyncio.gather(*(asyncio.wrap_future(pool.submit(_warm)) for _ in range(self.workers)))

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # --- forecasting ----------------------------------------------------------------
    def _start_fit(self, key: str, series: CleanSeries, horizon_hours: int) -> tuple[Future | None, dict | None]:
        """(the running fit for this key, None), started if nobody did yet; or (None, cached result)
        when a fit finished between this request's first cache look and now."""
        pool = self._get_pool()
        with self._lock:
            running = self._inflight.get(key)
            if running is not None:
                self.coalesced += 1
                return running, None
            # _finish stores in the cache before it un-lists the fit, so under this lock one of the two is seen.
            finished = self.cache.get(key, count_miss=False)
            if finished is not None:
                return None, finished
            future = pool.submit(forecast, series.epoch_seconds, series.values, horizon_hours, self.config)
            self._inflight[key] = future
            self.fits += 1
        future.add_done_callback(lambda done: self._finish(key, done))
        return future, None

    def _finish(self, key: str, done: Future) -> None:
        # Runs in the pool's manager thread: store first, then un-list, so a new request finds one or the other.
        if not done.cancelled() and done.exception() is None and done.result().get("ok"):
            self.cache.put(key, done.result())
        with self._lock:
            if self._inflight.get(key) is done:
                del self._inflight[key]

    async def forecast(self, series: CleanSeries, horizon_hours: int) -> Outcome:
        key = cache_key(series, horizon_hours, self.config)
        hit = self.cache.get(key)
        if hit is not None:
            return Outcome(hit, cached=True)
        # forecast_timeout_seconds bounds one fit; fits queued ahead of this one (a big batch) extend the wait.
        timeout = self.timeout * (1 + len(self._inflight) // self.workers)
        try:
            future, finished = self._start_fit(key, series, horizon_hours)
            if finished is not None:
                return Outcome(finished, cached=True)
            # shield: a waiter that times out must not cancel a fit other requests share.
            result = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except asyncio.TimeoutError:
            self.failures += 1
            raise ForecastFailed(
                f"no forecast after {timeout:g} s (forecast_timeout_seconds={self.timeout:g} per fit)", status=504
            ) from None
        except BrokenProcessPool:
            self.failures += 1
            pool = self._pool
            if pool is not None:
                self._discard_pool(pool)
            log.error("a forecast worker died; the pool is restarted")
            raise ForecastFailed("a forecast worker died; retry the request", status=503) from None
        if not result.get("ok"):
            self.failures += 1
            raise ForecastFailed(result.get("message", "the model failed"), status=422)
        return Outcome(result, cached=False)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            inflight = len(self._inflight)
        return {
            "workers": self.workers,
            "fits": self.fits,
            "coalesced": self.coalesced,
            "failures": self.failures,
            "in_flight": inflight,
            "cache": self.cache.stats(),
        }
