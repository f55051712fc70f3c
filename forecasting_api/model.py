"""The forecast served for hourly temperatures. `forecast` runs inside a worker process.

Method "blend" (the default, forecast_method): Prophet with a flat trend and a daily cycle, fit on
the series (7 days from the streaming job), corrected by its residual at the last observation
(decaying with lead time), blended with the two baselines (same hour yesterday, last value) by
weights that depend on the lead time; the band is split conformal: the lead time's quantile of
|error| / scale from a calibration set of real observed temperatures (forecasting_api/
calibration.json, written by benchmarks/forecast_skill_bench.py --calibrate), times the series'
own scale (its recent same-hour-yesterday error). With under FULL_MODEL_MIN_SPAN of history the
baseline "climatology" (same hour yesterday) is served instead, labelled as such, with its own
calibrated band.

Method "prophet": the previous design, kept as the benchmarks' baseline: Prophet with a linear
trend and its Monte Carlo band.

Warm start: a blend fit can start Stan's optimizer from the parameters of the region's previous
fit (Prophet's documented `fit(df, init=...)`); the result carries its own parameters back under
"warm" for the server to keep.

Determinism: MAP estimates (no MCMC) with a fixed optimizer seed; the Monte Carlo band of the
"prophet" method uses numpy's global RNG, seeded right before predict (a worker runs one task at a time).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HOUR = 3600
DAY = 24 * HOUR
WEEKLY_MIN_SPAN = 14 * DAY  # two full weekly cycles before a weekly pattern is believable
YEARLY_MIN_SPAN = 730 * DAY  # two years
FULL_MODEL_MIN_SPAN = 2 * DAY  # below: the blend's "same hour yesterday" and scale are not there yet
MIN_SCALE_PAIRS = 12  # same-hour-yesterday pairs needed before the series' own scale is believed
MIN_SCALE = 0.2  # deg C: a perfectly regular series still gets a band
MODEL_VERSION = "prophet-hourly-2"  # bump when the model changes, so cached results are not reused
METHODS = ("blend", "prophet")
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class ModelConfig:
    interval_width: float = 0.95
    seed: int = 0
    method: str = "blend"
    uncertainty_samples: int = 500  # the "prophet" method's Monte Carlo band only
    changepoint_prior_scale: float = 0.05

    def key(self) -> dict[str, Any]:
        return {"version": MODEL_VERSION, "calibration": calibration_digest(), **asdict(self)}


# --- calibration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """What the blend learnt from real data (see calibration.json's "tuned_on")."""

    daily_fourier_order: int
    level_decay: float  # the last residual's weight after h hours: level_decay ** h
    weights: dict[str, tuple[float, float]]  # baseline -> (a, b): weight a + b * min(h, 24) / 24
    levels: tuple[float, ...]  # nominal band levels the quantiles are given for, ascending
    quantiles: dict[str, tuple[tuple[float, ...], ...]]  # model -> per level, per lead 1..24
    default_scale: float  # deg C, for a series too short to measure its own

    def weight(self, baseline: str, lead: int) -> float:
        a, b = self.weights[baseline]
        return a + b * min(lead, 24) / 24

    def quantile(self, model: str, level: float, lead: int) -> float:
        """The calibrated |error| / scale quantile at `level` for `lead` hours, interpolated between
        levels; past 24 h (not calibrated) grown like a random walk from the 24 h figure."""
        table = self.quantiles[model]
        column = [row[min(lead, 24) - 1] for row in table]
        value = _interp(level, self.levels, column)
        return value * math.sqrt(lead / 24) if lead > 24 else value


def _interp(x: float, xs: tuple[float, ...], ys: list[float]) -> float:
    if x <= xs[0]:
        return ys[0] * x / xs[0]  # towards a zero-width band at level 0
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


def parse_calibration(raw: dict[str, Any]) -> Calibration:
    """Validated: a broken calibration file fails loudly at the first forecast, naming what is wrong."""
    try:
        levels = tuple(float(v) for v in raw["levels"])
        quantiles = {name: tuple(tuple(float(q) for q in row) for row in table)
                     for name, table in raw["quantiles"].items()}
        calibration = Calibration(
            daily_fourier_order=int(raw["daily_fourier_order"]), level_decay=float(raw["level_decay"]),
            weights={name: (float(a), float(b)) for name, (a, b) in raw["weights"].items()},
            levels=levels, quantiles=quantiles, default_scale=float(raw["default_scale"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{CALIBRATION_FILE.name}: {type(exc).__name__}: {exc}") from None
    if list(levels) != sorted(levels) or not all(0 < v < 1 for v in levels):
        raise ValueError(f"{CALIBRATION_FILE.name}: levels must be ascending, between 0 and 1")
    for name in ("blend", "climatology"):
        table = quantiles.get(name)
        if table is None or len(table) != len(levels) or any(len(row) != 24 or min(row) <= 0 for row in table):
            raise ValueError(f"{CALIBRATION_FILE.name}: quantiles.{name} must hold 24 positive values per level")
    if set(calibration.weights) != {"climatology", "persistence"}:
        raise ValueError(f"{CALIBRATION_FILE.name}: weights must be given for climatology and persistence")
    return calibration


@functools.lru_cache(maxsize=1)
def _calibration_text() -> str:
    return CALIBRATION_FILE.read_text()


def load_calibration() -> Calibration:
    return parse_calibration(json.loads(_calibration_text()))


def calibration_digest() -> str:
    return hashlib.sha256(_calibration_text().encode()).hexdigest()[:16]


# --- shared parts ------------------------------------------------------------------------------
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
    """Pool initializer: pay Prophet's import (and read the calibration) once per worker."""
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "plotly missing": plots are never drawn here
    import prophet  # noqa: F401

    quiet_prophet_logs()
    load_calibration()


def forecast(epoch_seconds: tuple[int, ...], values: tuple[float, ...], horizon_hours: int,
             config: ModelConfig, warm: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit one series and forecast `horizon_hours` hourly steps after its last timestamp.
    `warm`: the parameters of this region's previous fit ("blend" only).

    Never raises: a failure comes back as {"ok": False, "message": ...} so one bad series
    cannot break a batch or the worker pool.
    """
    try:
        if config.method == "prophet":
            return _prophet_as_before(epoch_seconds, values, horizon_hours, config)
        return _blend(epoch_seconds, values, horizon_hours, config, warm)
    except Exception as exc:  # noqa: BLE001 - reported per series to the caller
        return {"ok": False, "message": f"the model could not be fitted: {type(exc).__name__}: {exc}"[:500]}


def _prophet(seasonalities: list[str], points: int, config: ModelConfig, **options):
    from prophet import Prophet

    quiet_prophet_logs()
    return Prophet(
        daily_seasonality=options.pop("daily", "daily" in seasonalities),
        weekly_seasonality="weekly" in seasonalities,
        yearly_seasonality="yearly" in seasonalities,
        n_changepoints=options.pop("n_changepoints", changepoints_for(points)),
        changepoint_prior_scale=config.changepoint_prior_scale,
        interval_width=config.interval_width,
        mcmc_samples=0,
        **options,
    )


def _frame(epochs) -> Any:
    import pandas as pd

    return pd.DataFrame({"ds": pd.to_datetime(list(epochs), unit="s")})


def _finite(rows) -> bool:
    return all(math.isfinite(v) for _, *triple in rows for v in triple)


NON_FINITE = {"ok": False, "message": "the model produced non-finite values for this series"}


# --- "prophet": the previous design -------------------------------------------------------------------
def _prophet_as_before(epoch_seconds, values, horizon_hours, config: ModelConfig) -> dict[str, Any]:
    import numpy as np

    seasonalities = seasonalities_for(epoch_seconds[-1] - epoch_seconds[0])
    history = _frame(epoch_seconds).assign(y=list(values))
    started = time.perf_counter()
    model = _prophet(seasonalities, len(values), config, growth="linear",
                     uncertainty_samples=config.uncertainty_samples)
    model.fit(history, seed=config.seed)
    future_epochs = [epoch_seconds[-1] + step * HOUR for step in range(1, horizon_hours + 1)]
    np.random.seed(config.seed)
    frame = model.predict(_frame(future_epochs))
    rows = list(zip(future_epochs, frame["yhat"], frame["yhat_lower"], frame["yhat_upper"]))
    if not _finite(rows):
        return NON_FINITE
    return {"ok": True, "predictions": [(epoch, float(y), float(lo), float(hi)) for epoch, y, lo, hi in rows],
            "fit_seconds": round(time.perf_counter() - started, 4), "seasonalities": seasonalities,
            "points_used": len(values), "model": "prophet", "interval_width": config.interval_width,
            "band": "prophet"}


# --- "blend" -----------------------------------------------------------------------------------------
def baselines(epochs, values, future_epochs):
    """(same hour on the last day with data, last value) for each future time, and the series'
    scale: its mean |y(t) - y(t - 24 h)| (None with fewer than MIN_SCALE_PAIRS pairs). Gaps are
    interpolated in time."""
    import numpy as np

    epochs = np.asarray(epochs, dtype=float)
    values = np.asarray(values, dtype=float)
    future = np.asarray(future_epochs, dtype=float)
    days_back = np.ceil((future - epochs[-1]) / DAY)
    climatology = np.interp(future - days_back * DAY, epochs, values)
    persistence = np.full(len(future), values[-1])
    paired = epochs - DAY >= epochs[0]
    scale = None
    if paired.sum() >= MIN_SCALE_PAIRS:
        yesterday = np.interp(epochs[paired] - DAY, epochs, values)
        scale = max(MIN_SCALE, float(np.mean(np.abs(values[paired] - yesterday))))
    return climatology, persistence, scale


def _blend(epoch_seconds, values, horizon_hours, config: ModelConfig, warm) -> dict[str, Any]:
    import numpy as np

    started = time.perf_counter()
    calibration = load_calibration()
    last = epoch_seconds[-1]
    leads = np.arange(1, horizon_hours + 1)
    future_epochs = [last + int(step) * HOUR for step in leads]
    climatology, persistence, scale = baselines(epoch_seconds, values, future_epochs)
    scale = scale if scale is not None else calibration.default_scale
    span = last - epoch_seconds[0]
    facts: dict[str, Any] = {"warm_started": False}
    if span < FULL_MODEL_MIN_SPAN:
        model_name, seasonalities, point = "climatology", [], climatology
    else:
        model_name, seasonalities = "blend", seasonalities_for(span)
        corrected, facts = prophet_level_corrected(epoch_seconds, values, future_epochs, seasonalities, config,
                                                    calibration, warm)
        w_clim = np.array([calibration.weight("climatology", int(h)) for h in leads])
        w_pers = np.array([calibration.weight("persistence", int(h)) for h in leads])
        point = (1 - w_clim - w_pers) * corrected + w_clim * climatology + w_pers * persistence
    half = np.array([calibration.quantile(model_name, config.interval_width, int(h)) for h in leads]) * scale
    rows = list(zip(future_epochs, point, point - half, point + half))
    if not _finite(rows):
        return NON_FINITE
    return {"ok": True, "predictions": [(epoch, float(y), float(lo), float(hi)) for epoch, y, lo, hi in rows],
            "fit_seconds": round(time.perf_counter() - started, 4), "seasonalities": seasonalities,
            "points_used": len(values), "model": model_name, "interval_width": config.interval_width,
            "band": "conformal", **facts}


def prophet_level_corrected(epoch_seconds, values, future_epochs, seasonalities, config, calibration, warm):
    """Prophet (flat trend: a 7-day trend extrapolated 24 h hurts more than it helps on real data)
    at the future times, plus its residual at the last observation decaying with lead time; and
    {"warm": this fit's parameters, "warm_started": whether `warm` was used}."""
    import numpy as np
    from prophet.utilities import warm_start_params

    history = _frame(epoch_seconds).assign(y=list(values))
    daily = calibration.daily_fourier_order if "daily" in seasonalities else False
    # No changepoints: a flat trend has no slope to change, and their matrix was most of the data sent to Stan.
    model = _prophet(seasonalities, len(values), config, growth="flat", uncertainty_samples=0, daily=daily,
                     n_changepoints=0)
    init = _usable_init(warm)
    if init is not None:
        model.fit(history, seed=config.seed, init=init)
    else:
        model.fit(history, seed=config.seed)
    yhat = expected_values(model, [epoch_seconds[-1], *future_epochs])
    level = values[-1] - yhat[0]
    leads = np.arange(1, len(future_epochs) + 1)
    corrected = yhat[1:] + level * calibration.level_decay ** leads
    params = {name: np.asarray(value, dtype=float).ravel().tolist() for name, value in warm_start_params(model).items()}
    return corrected, {"warm": params, "warm_started": init is not None}


def expected_values(model, epoch_seconds) -> Any:
    """Prophet's `yhat` at these times, computed from the fitted parameters for the model built
    here (flat trend, additive seasonalities, nothing else): `Prophet.predict` adds the same terms
    through several pandas frames and per-component pivots (a fit at 169 points: 23.7 ms with it,
    20.4 ms with this). Any other model goes through `predict` itself (the tests hold the two equal)."""
    import numpy as np

    plain = (model.growth == "flat" and not model.extra_regressors and model.train_holiday_names is None
             and not model.logistic_floor
             and all(props["mode"] == "additive" and props["condition_name"] is None
                     for props in model.seasonalities.values()))
    if not plain:
        return model.predict(_frame(epoch_seconds))["yhat"].to_numpy()
    # Prophet.fourier_series's terms, in its order of operations, without pandas dates.
    x_t = np.pi * 2 * (np.asarray(epoch_seconds, dtype=float) / DAY)
    features = [np.sin(c) if part == 0 else np.cos(c)
                for props in model.seasonalities.values()
                for c in ((i + 1) / props["period"] * x_t for i in range(props["fourier_order"]))
                for part in (0, 1)]
    beta = np.nanmean(model.params["beta"], axis=0)
    level = float(np.nanmean(model.params["m"]))
    seasonal = np.column_stack(features) @ beta if features else np.zeros(len(x_t))
    return (level + seasonal) * model.y_scale


def _usable_init(warm: dict[str, Any] | None) -> dict[str, Any] | None:
    """Previous parameters in the shapes Stan wants (Prophet falls back to its defaults for an
    array whose shape no longer matches, e.g. after the number of changepoints changed)."""
    import numpy as np

    if not warm:
        return None
    try:
        init = {name: float(warm[name][0]) for name in ("k", "m", "sigma_obs")}
        init.update({name: np.asarray(warm[name], dtype=float) for name in ("delta", "beta")})
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    if not all(np.all(np.isfinite(v)) for v in init.values()) or init["sigma_obs"] <= 0:
        return None
    return init
