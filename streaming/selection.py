"""Which forecast to serve for a region, chosen by its tracked skill (forecast_skill): a baseline
(persistence / same hour yesterday) replaces the model for a region where, over enough scored
pairs, the baseline's MAE beats the served forecast's. Pure functions of plain values; the
refresher reads the skill documents (one query per refresh) and serves the choice.

A window's MAE over the leads is the mean weighted by each lead's pair count, over the leads
where both figures are known. The 7 d window is used when it holds enough pairs, else the 24 h
one; neither: the model stays.

While a baseline is served, the served forecast *is* that baseline, so its MAE equals the
baseline's (a tie): a tie keeps what is served now (the model, unless a baseline was chosen
before), so a region does not flip back every refresh on a tie that says nothing of the model.
The refresher puts a baseline on trial after forecast_model_retrial_hours by passing the model as
what is served: the model is served and scored again, and loses the region at once if it is worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from meteoflow.contracts import BASELINE_MODELS, ForecastSkill

MODEL = "model"  # the forecasting API's forecast (prophet/blend), whatever it labels itself
WINDOW_ORDER = ("7d", "24h")


@dataclass(frozen=True)
class WindowFigures:
    """One region's skill over one window, summed over the leads."""

    window: str
    pairs: int
    model_mae: float | None
    # baseline -> (its MAE, the served forecast's MAE on the same leads); only baselines with figures
    baselines: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Choice:
    serve: str  # MODEL or a baseline name
    reason: str  # the figures behind it, for the log


def window_figures(window: str, skills: Iterable[ForecastSkill]) -> WindowFigures:
    """Count-weighted MAEs of one region's lead documents of one window."""
    rows = [s for s in skills if s.window == window and s.count > 0]
    pairs = sum(s.count for s in rows)
    scored = [s for s in rows if s.model_mae is not None]
    model_mae = _weighted([(s.model_mae, s.count) for s in scored])
    baselines: dict[str, tuple[float, float]] = {}
    for name in BASELINE_MODELS:
        # Compared on the same leads: only the leads where both the model and the baseline are scored.
        both = [(s, getattr(s, f"{name}_mae")) for s in scored if getattr(s, f"{name}_mae") is not None]
        if both:
            baselines[name] = (_weighted([(mae, s.count) for s, mae in both]),
                               _weighted([(s.model_mae, s.count) for s, _ in both]))
    return WindowFigures(window, pairs, model_mae, baselines)


def _weighted(values: list[tuple[float, int]]) -> float | None:
    total = sum(n for _, n in values)
    return math.fsum(v * n for v, n in values) / total if total else None


def choose(skills: Iterable[ForecastSkill], min_pairs: int, current: str = MODEL) -> Choice:
    """What to serve for one region given its skill documents (any windows and leads) and what it
    is served now. A baseline is chosen when it strictly beats the served forecast on the first
    window (7 d, then 24 h) holding at least `min_pairs` pairs; of two such, the lower MAE."""
    rows = list(skills)
    for window in WINDOW_ORDER:
        figures = window_figures(window, rows)
        if figures.pairs < min_pairs:
            continue
        best, best_mae, model_mae = None, math.inf, None
        for name, (mae, served_mae) in figures.baselines.items():
            if mae < served_mae and mae < best_mae:
                best, best_mae, model_mae = name, mae, served_mae
        if best is not None:
            return Choice(best, f"{window} window, {figures.pairs} pairs: {best} MAE {best_mae:.2f} C "
                                f"beats the served forecast's {model_mae:.2f} C")
        served = f"{figures.model_mae:.2f} C" if figures.model_mae is not None else "unknown"
        others = ", ".join(f"{n} {mae:.2f} C" for n, (mae, _) in figures.baselines.items())
        keep = current if current in BASELINE_MODELS and _tied(figures, current) else MODEL
        return Choice(keep, f"{window} window, {figures.pairs} pairs: served forecast MAE {served}, "
                            f"baselines {others or 'unscored'}")
    pairs = max(window_figures(w, rows).pairs for w in WINDOW_ORDER)
    return Choice(MODEL, f"too few scored pairs ({pairs} < {min_pairs})")


def _tied(figures: WindowFigures, baseline: str) -> bool:
    if baseline not in figures.baselines:
        return False
    mae, served_mae = figures.baselines[baseline]
    return math.isclose(mae, served_mae, abs_tol=1e-9)


def choose_all(skills: Iterable[ForecastSkill], regions: Iterable[str], min_pairs: int,
               current: Mapping[str, str]) -> dict[str, Choice]:
    """choose() for each of `regions`, from the skill documents of all of them."""
    by_region: dict[str, list[ForecastSkill]] = {}
    for s in skills:
        by_region.setdefault(s.region_id, []).append(s)
    return {r: choose(by_region.get(r, []), min_pairs, current.get(r, MODEL)) for r in regions}
