"""The forecasting API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

# The header carrying METEOFLOW_FORECAST_API_KEY (Authorization: Bearer <key> is accepted too).
API_KEY_HEADER = "X-API-Key"


class SeriesPoint(BaseModel):
    ds: str = Field(description="timestamp, ISO 8601 (UTC assumed when no offset is given)")
    y: float = Field(description="temperature, deg C")


class PredictRequest(BaseModel):
    """One series. Field names match the ancestor's client (latitude, longitude, data[{ds, y}])."""

    region_id: str | None = Field(None, max_length=64)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    data: list[SeriesPoint]
    horizon_hours: int = Field(24, ge=1, le=168)
    frequency: Literal["h"] = "h"


class Prediction(BaseModel):
    timestamp: datetime
    temperature: float
    lower: float
    upper: float


# What produced a served forecast. The baselines are served, clearly labelled, while a region has
# too little history for the model, or when its tracked skill says they do better.
ForecastModel = Literal["prophet", "persistence", "climatology", "blend"]


class ModelFacts(BaseModel):
    points_used: int
    duplicates_merged: int = 0
    fit_seconds: float
    seasonalities: list[str]
    cached: bool = False
    # Optional, so bodies of earlier versions still parse: None means "not reported".
    model: ForecastModel | None = Field(
        None, description="what produced the temperatures: blend (Prophet level-corrected and blended with the "
        "baselines), climatology (same hour yesterday, while the history is under 2 days), or prophet (alone)")
    interval_width: float | None = Field(None, description="nominal level of the lower..upper band, e.g. 0.95")
    band: Literal["conformal", "prophet"] | None = Field(
        None, description="how the band was made: conformal (calibrated on real data, scaled by the series' own "
        "recent day-to-day error) or prophet (its Monte Carlo draws)")
    warm_started: bool = Field(False, description="the fit started from this region's previous parameters")


class PredictResponse(BaseModel):
    region_id: str | None = None
    predictions: list[Prediction]
    model: ModelFacts


class BatchRequest(BaseModel):
    # Items stay raw here and are validated one by one with PredictRequest, so one bad
    # series gets its own error while the others are still forecast. How many a batch may hold
    # is the setting forecast_max_batch_series (413 beyond), checked by the API.
    series: list[dict[str, Any]] = Field(min_length=1)


class ItemError(BaseModel):
    field: str
    message: str


class BatchItem(BaseModel):
    index: int
    region_id: str | None = None
    status: Literal["ok", "error"]
    forecast: PredictResponse | None = None
    error: ItemError | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem]
