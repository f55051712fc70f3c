"""Whether a region's served forecast is degraded: one judgment for the overview cards, the Forecast
quality page and the `forecast_degraded` alert rule (elk/alert_rules.yaml may set other thresholds
for the alert; the pages use these defaults).

Too few pairs say nothing: in the first hours (or during a back-fill) a band calibrated on a dozen
changes held 40-70% of a few observations, and every card read "degraded" until enough were scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pydantic import BaseModel, Field

from meteoflow.contracts import ForecastSkill


class DegradedThresholds(BaseModel):
    min_pairs: int = Field(288, ge=1)  # half a day of hourly runs at every lead; fewer say too little
    mae_margin: float = Field(0.0, ge=0)  # degraded when its MAE > persistence's MAE x (1 + margin)...
    min_coverage: float = Field(0.8, ge=0, le=1)  # ...or when its band held a smaller share than this


@dataclass(frozen=True)
class SkillFigures:
    """A region's skill documents (every lead of one window) summed up, each lead weighted by its
    pairs. The MAEs are taken over the leads where both are known, so the model and persistence are
    compared on the same pairs."""

    pairs: int
    model_mae: float | None
    persistence_mae: float | None
    coverage: float | None
    band_level: float | None

    @classmethod
    def of(cls, skills: Iterable[ForecastSkill]) -> "SkillFigures":
        rows = list(skills)
        scored = [r for r in rows if r.count and r.model_mae is not None]
        both = [r for r in scored if r.persistence_mae is not None]
        covered = [r for r in scored if r.coverage is not None]
        newest = max(rows, key=lambda r: r.updated_at) if rows else None
        return cls(pairs=sum(r.count for r in scored), model_mae=_weighted(both, "model_mae"),
                   persistence_mae=_weighted(both, "persistence_mae"), coverage=_weighted(covered, "coverage"),
                   band_level=newest.band_level if newest else None)


@dataclass(frozen=True)
class Verdict:
    worse: bool  # MAE above persistence's (with the margin)
    undercovered: bool  # band held less than min_coverage
    reasons: tuple[str, ...]  # what is wrong, in words ("" when nothing is)

    @property
    def degraded(self) -> bool:
        return self.worse or self.undercovered


def judge(figures: SkillFigures, thresholds: DegradedThresholds | None = None) -> Verdict:
    """Degraded or not, and why; never degraded below `min_pairs` scored pairs."""
    t = thresholds or DegradedThresholds()
    if figures.pairs < t.min_pairs:
        return Verdict(False, False, ())
    worse = (figures.model_mae is not None and figures.persistence_mae is not None
             and figures.model_mae > figures.persistence_mae * (1 + t.mae_margin))
    undercovered = figures.coverage is not None and figures.coverage < t.min_coverage
    reasons = []
    if worse:
        reasons.append(f"MAE {figures.model_mae:.2f} °C is above persistence's {figures.persistence_mae:.2f} °C")
    if undercovered:
        nominal = f", nominal {figures.band_level:.0%}" if figures.band_level is not None else ""
        reasons.append(f"band held {figures.coverage:.0%} of the observations "
                       f"(threshold {t.min_coverage:.0%}{nominal})")
    return Verdict(worse, undercovered, tuple(reasons))


def _weighted(rows: list[ForecastSkill], field_name: str) -> float | None:
    total = sum(r.count for r in rows)
    return sum(getattr(r, field_name) * r.count for r in rows) / total if total else None
