"""Prophet tuned for hourly temperatures. `forecast` runs inside a worker process.

Determinism: the fit is a MAP estimate (no MCMC) from Prophet's fixed initial values with a
fixed optimizer seed, and the band's Monte Carlo draws use numpy's global RNG, which is
seeded right before predict. A worker process runs one task at a time, so the global seed
cannot be disturbed by another request.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

HOUR = 3600
DAY = 24 * HOUR
WEEKLY_MIN_SPAN = 14 * DAY  # two full weekly cycles before a weekly pattern is believable
YEARLY_MIN_SPAN = 730 * DAY  # two years
MODEL_VERSION = "prophet-hourly-1"  # bump when the tuning changes, so cached results are not reused


@dataclass(frozen=True)
class ModelConfig:
    interval_width: float = 0.95
    seed: int = 0
    uncertainty_samples: int = 500
    changepoint_prior_scale: float = 0.05

    def key(self) -> dict[str, Any]:
        return {"version": MODEL_VERSION, **asdict(self)}


def seasonalities_for(span_seconds: int) -> list[str]:
    """Daily always; weekly and yearly only with enough history to see them twice."""
    chosen = ["daily"]
    if span_seconds >= WEEKLY_MIN_SPAN:
        chosen.append("weekly")
    if span_seconds >= YEARLY_MIN_SPAN:
        chosen.append("yearly")
    return chosen


def changepoints_for(points: int) -> int:
    """About one possible trend change per half day: enough for weather fronts, cheap to fit."""
    return max(1, min(25, points // 12))


def quiet_prophet_logs() -> None:
    # cmdstanpy installs its own INFO handler lazily; create it now, then silence it.
    from cmdstanpy.utils import get_logger

    stan_logger = get_logger()
    for handler in list(stan_logger.handlers):
        stan_logger.removeHandler(handler)
    stan_logger.setLevel(logging.ERROR)
    logging.getLogger("prophet").setLevel(logging.WARNING)


def worker_init() -> None:
    """Pool initializer: pay Prophet's import once per worker, not once per request."""
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "plotly missing": plots are never drawn here
    import prophet  # noqa: F401

    quiet_prophet_logs()


def forecast(epoch_seconds: tuple[int, ...], values: tuple[float, ...], horizon_hours: int,
             config: ModelConfig) -> dict[str, Any]:
    """Fit one series and forecast `horizon_hours` hourly steps after its last timestamp.

    Never raises: a failure comes back as {"ok": False, "message": ...} so one bad series
    cannot break a batch or the worker pool.
    """
    try:
        return _forecast(epoch_seconds, values, horizon_hours, config)
    except Exception as exc:  # noqa: BLE001 - reported per series to the caller
        return {"ok": False, "message": f"the model could not be fitted: {type(exc).__name__}: {exc}"[:500]}


def _forecast(epoch_seconds, values, horizon_hours, config: ModelConfig) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from prophet import Prophet

    quiet_prophet_logs()
    span = epoch_seconds[-1] - epoch_seconds[0]
    seasonalities = seasonalities_for(span)
    history = pd.DataFrame({"ds": pd.to_datetime(list(epoch_seconds), unit="s"), "y": list(values)})
    started = time.perf_counter()
    model = Prophet(
        growth="linear",
        daily_seasonality="daily" in seasonalities,
        weekly_seasonality="weekly" in seasonalities,
        yearly_seasonality="yearly" in seasonalities,
        n_changepoints=changepoints_for(len(values)),
        changepoint_prior_scale=config.changepoint_prior_scale,
        interval_width=config.interval_width,
        uncertainty_samples=config.uncertainty_samples,
        mcmc_samples=0,
    )
    model.fit(history, seed=config.seed)
    last = epoch_seconds[-1]
    future_epochs = [last + step * HOUR for step in range(1, horizon_hours + 1)]
    future = pd.DataFrame({"ds": pd.to_datetime(future_epochs, unit="s")})
    np.random.seed(config.seed)
    frame = model.predict(future)
    fit_seconds = time.perf_counter() - started
    rows = list(zip(future_epochs, frame["yhat"], frame["yhat_lower"], frame["yhat_upper"]))
    if not all(math.isfinite(v) for _, *triple in rows for v in triple):
        return {"ok": False, "message": "the model produced non-finite values for this series"}
    return {
        "ok": True,
        "predictions": [(epoch, float(y), float(lo), float(hi)) for epoch, y, lo, hi in rows],
        "fit_seconds": round(fit_seconds, 4),
        "seasonalities": seasonalities,
        "points_used": len(values),
    }
