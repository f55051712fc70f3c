"""What to serve at each lead time of a region, chosen by its tracked skill (forecast_skill): at a
lead where a baseline (persistence / same hour yesterday) has a lower MAE than the forecasting API's
own forecast, over enough scored pairs, that baseline is served at that lead; elsewhere the model.
Pure functions of plain values; the refresher reads the skill documents (one query per refresh)
and serves the choice.

Per lead, because the better forecast differs by lead: an hour ahead the last observed value is
hard to beat, a day ahead it is not. The API is asked for every region with enough history and its
forecast is scored at every lead whether or not it is served (ForecastSkill.api_mae), so a served
baseline never hides the model's skill: the refresh after the model becomes the better one at a
lead serves it there again.

A lead uses its 7 d window when that holds `min_pairs` pairs of the API's forecast, else its 24 h
one; neither: the model is served there. A tie keeps the model. A baseline chosen on the 7 d window
must also beat the model over the last 24 h: a model that got better (more history, a change of
weather) wins its leads back the day it does, instead of once its worse week has left the window.
On a replay of real weather the 7 d window alone served same hour yesterday at leads where the
model had become the better one (BENCHMARKS.md, the replay).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from meteoflow.contracts import BASELINE_MODELS, ForecastSkill

MODEL = "model"  # the forecasting API's forecast (prophet/blend), whatever it labels itself
WINDOW_ORDER = ("7d", "24h")
MAX_LEAD_HOURS = 24


@dataclass(frozen=True)
class LeadChoice:
    """What one lead serves and the figures behind it."""

    lead_hours: int
    serve: str  # MODEL or a baseline name
    window: str | None = None  # the window the figures come from; None: too few pairs in either
    pairs: int = 0  # the API's scored pairs in that window
    api_mae: float | None = None
    baseline_mae: float | None = None  # the served baseline's MAE (None when the model is served)


@dataclass(frozen=True)
class Plan:
    """One region's choice for every lead; leads not listed serve the model."""

    baselines: dict[int, LeadChoice] = field(default_factory=dict)  # lead -> the baseline served there

    def serve_at(self, lead: int) -> str:
        choice = self.baselines.get(lead)
        return choice.serve if choice else MODEL

    def key(self) -> tuple[tuple[int, str], ...]:
        """What is served where, without the figures: two refreshes with the same key serve alike."""
        return tuple((lead, c.serve) for lead, c in sorted(self.baselines.items()))

    def describe(self) -> str:
        """E.g. "persistence at 1-3 h (7d: 0.52 C vs the model's 0.81 C), the model at the other leads"."""
        if not self.baselines:
            return "the model at every lead"
        runs: list[list[LeadChoice]] = []
        for lead, choice in sorted(self.baselines.items()):
            if runs and runs[-1][-1].lead_hours == lead - 1 and runs[-1][-1].serve == choice.serve:
                runs[-1].append(choice)
            else:
                runs.append([choice])
        parts = []
        for run in runs:
            first, last = run[0].lead_hours, run[-1].lead_hours
            span = f"{first} h" if first == last else f"{first}-{last} h"
            baseline = sum(c.baseline_mae or 0.0 for c in run) / len(run)
            api = sum(c.api_mae or 0.0 for c in run) / len(run)
            parts.append(f"{run[0].serve} at {span} ({run[0].window}: {baseline:.2f} C vs the model's {api:.2f} C)")
        rest = "the model at the other leads" if len(self.baselines) < MAX_LEAD_HOURS else "the model at none"
        return ", ".join(parts) + ", " + rest


def choose_lead(lead: int, skills: Iterable[ForecastSkill], min_pairs: int) -> LeadChoice:
    """The choice at one lead from its skill documents (any windows)."""
    by_window = {s.window: s for s in skills if s.lead_hours == lead}
    for window in WINDOW_ORDER:
        skill = by_window.get(window)
        if skill is None or skill.api_count < min_pairs or skill.api_mae is None:
            continue
        best, best_mae = MODEL, skill.api_mae
        for name in BASELINE_MODELS:
            mae = getattr(skill, f"{name}_mae")
            if mae is not None and mae < best_mae:
                best, best_mae = name, mae
        recent = by_window.get("24h")
        if best != MODEL and window != "24h" and recent is not None and recent.api_mae is not None \
                and not _beats(getattr(recent, f"{best}_mae"), recent.api_mae):
            best = MODEL  # the last 24 h say the model
        return LeadChoice(lead, best, window, skill.api_count, skill.api_mae, None if best == MODEL else best_mae)
    return LeadChoice(lead, MODEL)


def _beats(mae: float | None, model_mae: float) -> bool:
    return mae is not None and mae < model_mae


def choose(skills: Iterable[ForecastSkill], min_pairs: int) -> Plan:
    """One region's plan from its skill documents."""
    rows = list(skills)
    choices = (choose_lead(lead, rows, min_pairs) for lead in range(1, MAX_LEAD_HOURS + 1))
    return Plan({c.lead_hours: c for c in choices if c.serve != MODEL})


def choose_all(skills: Iterable[ForecastSkill], regions: Iterable[str], min_pairs: int) -> dict[str, Plan]:
    """choose() for each of `regions`, from the skill documents of all of them."""
    by_region: dict[str, list[ForecastSkill]] = {}
    for s in skills:
        by_region.setdefault(s.region_id, []).append(s)
    return {r: choose(by_region.get(r, []), min_pairs) for r in regions}
