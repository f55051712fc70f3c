"""Fake fit functions for the forecasting API's worker processes (module level: they are pickled
by name into `spawn`ed workers). Same signature and result shape as forecasting_api.model.forecast,
without Prophet, in microseconds."""

from __future__ import annotations

import os
import time

HOUR = 3600
HANG = -42.125  # a series whose first value is this never finishes its fit (a plausible temperature)


def instant(epoch_seconds, values, horizon_hours, config) -> dict:
    """A flat forecast at the last value, or, for a first value of HANG, a fit that never returns."""
    while values[0] == HANG:
        time.sleep(3600)
    last = epoch_seconds[-1]
    return {
        "ok": True,
        "predictions": [(last + step * HOUR, values[-1], values[-1] - 1, values[-1] + 1)
                        for step in range(1, horizon_hours + 1)],
        "fit_seconds": 0.0,
        "seasonalities": ["daily"],
        "points_used": len(values),
        "pid": os.getpid(),
    }


def warm_echo(epoch_seconds, values, horizon_hours, config, warm=None) -> dict:
    """`instant`, plus the warm-start protocol of forecasting_api.model.forecast: it returns its
    parameters under "warm" (here: the series' last timestamp) and says whether it got any."""
    result = instant(epoch_seconds, values, horizon_hours, config)
    return {**result, "warm": {"last": [epoch_seconds[-1]], "received": warm}, "warm_started": warm is not None}


def no_init() -> None:
    """A worker initializer that imports nothing (no Prophet)."""


def pid() -> int:
    return os.getpid()


def niceness() -> int:
    return os.nice(0)


def echo(*args):
    return args


def raises(message: str):
    raise ValueError(message)


def never_returns():
    while True:
        time.sleep(3600)


def exits(code: int):
    os._exit(code)
