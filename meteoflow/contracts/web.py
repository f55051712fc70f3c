"""The web app's HTTP bodies (webapp/routes/): what every /api endpoint answers, its errors included.

They describe the dicts webapp/views.py builds; the routes declare them as `response_model`, so
FastAPI checks each answer against them and the OpenAPI schema (GET /api/openapi.json) shows every
shape. The React app's TypeScript types are generated from that schema (webapp/openapi.py), so a
field added here reaches the UI's type checker, and a field a view adds without its model fails the
tests (extra="forbid") instead of disappearing.

Times are ISO 8601 text in UTC ("2026-01-01T00:00:00Z"). Fields are declared without defaults:
every key is always present (null when unknown), which the generated types say as `T | null`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from meteoflow.contracts.alerting import NotificationKind, NotificationStatus, SilenceState

# A number as stored (an int stays an int in the JSON, where `float` would write 80 as 80.0).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
Errors = Annotated[dict[str, str], Field(description="A degraded source's failure by source name; empty when all read")]


class WebBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- freshness (meteoflow/freshness.py computes them; the alerting service shares them) ----------
Freshness = Literal["fresh", "late", "silent"]


class Thresholds(BaseModel):
    """A region is late after late_after_seconds without data, silent after silent_after_seconds."""

    late_after_seconds: float
    silent_after_seconds: float


# --- errors ------------------------------------------------------------------------------------
class ErrorBody(WebBody):
    """404 (unknown region, incident, silence), 409 (a refused acknowledgement), 503 (a store is down)."""

    detail: str


class FieldError(WebBody):
    """One refused field of a request: which, where (query, path, body) and why."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str
    in_: Literal["query", "path", "body", "header"] | None = Field(alias="in")
    message: str
    input: Any = Field(description="The refused value (a raw body as text, at most 200 characters)")


class ValidationErrorBody(WebBody):
    """422: the request was refused; `detail` sums up `errors`."""

    detail: str
    errors: list[FieldError]


# --- GET /health, /api/config ------------------------------------------------------------------
class AppHealth(WebBody):
    status: Literal["ok"]
    service: Literal["webapp"]
    frontend_built: bool


class ConfigResponse(WebBody):
    refresh_seconds: float
    thresholds: Thresholds
    source: str
    expected_interval_seconds: float


# --- regions (views.region_summary, observation_body, hourly_body, forecast_body) ---------------
class ObservationBody(WebBody):
    """A stored observation (contracts.Observation) as the UI shows it (views.OBSERVATION_KEYS)."""

    region_id: str
    region_name: str
    lat: Number
    lon: Number
    observed_at: str
    temp: Number
    feels_like: Number | None
    humidity: Number
    pressure: Number
    dew_point: Number | None
    clouds: Number | None
    visibility: Number | None
    uvi: Number | None
    wind_speed: Number
    wind_deg: Number | None
    wind_gust: Number | None
    rain_1h: Number | None = Field(description="Rain over the hour before observed_at, mm (None: unknown)")
    snow_1h: Number | None = Field(description="Snow (water equivalent) over that hour, mm (None: unknown)")
    precipitation_reported: bool | None = Field(
        description="True: the source sent the amounts; False: it sent none and 0 is assumed (OpenWeatherMap "
        "leaves rain/snow out when nothing fell); None: not known")
    weather_main: str | None
    weather_description: str | None
    weather_icon: str | None
    sunrise: str | None
    sunset: str | None
    timezone_offset: int | None
    source: str
    batch_id: str


class RegionSummary(WebBody):
    region_id: str
    region_name: str
    latest: ObservationBody | None
    last_seen: str | None
    last_seen_basis: Literal["ingested_at", "stored_at", "observed_at", "none"] = Field(
        description="Where last_seen comes from: Elasticsearch's arrival time, else MongoDB's, else the observation's")
    age_seconds: float | None
    lag_seconds: float | None
    freshness: Freshness


class RegionsResponse(WebBody):
    generated_at: str
    thresholds: Thresholds
    regions: list[RegionSummary]
    errors: Errors


class TimeWindow(WebBody):
    start: str
    end: str


class HourlyStat(WebBody):
    hour: str
    temp_min: Number | None
    temp_max: Number | None
    temp_mean: Number | None
    count: int | None


class ForecastPoint(WebBody):
    target_time: str
    yhat: Number
    yhat_lower: Number | None
    yhat_upper: Number | None


class ForecastBody(WebBody):
    model_run_at: str | None
    model: Literal["prophet", "persistence", "climatology", "blend"] | None = Field(
        description="Which forecast is served (a baseline while the model lacks history or skill); null: not recorded")
    points: list[ForecastPoint]


class RegionResponse(WebBody):
    generated_at: str
    hours: int
    window: TimeWindow
    region: RegionSummary
    observations: list[ObservationBody]
    hourly: list[HourlyStat]
    forecast: ForecastBody | None
    errors: Errors


# --- GET /api/status ---------------------------------------------------------------------------
class StatusRegion(RegionSummary):
    arrivals_last_hour: int
    arrivals_per_bucket: list[int] = Field(description="Arrivals per 5-minute bucket over the last hour, oldest first")


class StreamingBatch(WebBody):
    """One batch of the streaming job, from its log line; a field its line lacks is null."""

    at: str | None
    batch_id: Number | None
    input_rows: Number | None
    rows_per_second: Number | None
    input_rows_per_second: Number | None
    duration_ms: Number | None
    durations_ms: dict[str, Number]
    stored: Number | None
    invalid: Number | None


class AlertBody(WebBody):
    """An incident of the alerting service as the status page lists it; "firing" shows as "active"."""

    id: str | None
    rule: str | None
    region_id: str | None
    region_name: str | None
    subject: str | None
    state: str | None
    severity: str | None
    started_at: str | None
    resolved_at: str | None
    message: str | None


class StatusSummary(WebBody):
    regions: int
    fresh: int
    late: int
    silent: int
    arrivals_last_hour: int
    active_alerts: int
    deadletters_total: int


class StreamingStatus(WebBody):
    batches: list[StreamingBatch]


class AlertsStatus(WebBody):
    active: list[AlertBody]
    recent: list[AlertBody]


class DeadLetterEntry(WebBody):
    failed_at: str | None
    service: str | None
    reason: str | None
    key: str | None


class DeadLettersStatus(WebBody):
    total: int
    last_hour: int
    by_service: dict[str, int]
    latest: list[DeadLetterEntry]


class AlertingStatus(WebBody):
    last_evaluation_at: str | None
    interval_seconds: Number | None
    stale: bool | None = Field(description="The last evaluation is older than 3 intervals; null: no heartbeat yet")


class StatusResponse(WebBody):
    generated_at: str
    thresholds: Thresholds
    summary: StatusSummary
    regions: list[StatusRegion]
    arrival_bucket: str
    streaming: StreamingStatus
    alerts: AlertsStatus
    deadletters: DeadLettersStatus
    alerting: AlertingStatus
    errors: Errors


# --- GET /api/health (views.health_body: the samples of elk/health/) ---------------------------
class Sampled(WebBody):
    """When the sample was taken; stale: older than 3 sampling intervals, so not the present."""

    sampled_at: str | None
    sample_age_seconds: float | None
    stale: bool


class ServiceHealth(Sampled):
    name: str
    state: str | None = Field(description="up, backoff, crash-loop or held (stopped with ./run.sh down)")
    up: bool | None
    uptime_seconds: Number | None
    restarts: Number | None
    last_exit_code: Number | None
    last_error: str | None = Field(description="Last error-looking line of its log, secrets masked")


class LagPoint(WebBody):
    at: str
    lag_records: int | None
    lag_seconds: float | None


class ConsumerHealth(Sampled):
    name: str
    lag_records: Number | None
    lag_seconds: Number | None
    partitions: Number | None
    started: bool | None = Field(description="false: it has processed nothing yet (starting); null: not known")
    series: list[LagPoint] = Field(description="Max per bucket over the window, oldest first; null: no sample")


StoreStatus = Literal["reference", "unknown", "in_step", "behind", "far_behind"]


class StoreHealth(Sampled):
    name: str
    newest_at: str | None
    staleness_seconds: Number | None = Field(description="How far its newest record lies behind Kafka's newest")
    age_seconds: Number | None
    status: StoreStatus


class ForecastHealth(Sampled):
    region_id: str
    model_run_at: str | None
    age_seconds: Number | None
    forecast_status: str | None


class HealthWindow(TimeWindow):
    bucket_seconds: int


class HealthResponse(WebBody):
    generated_at: str
    state: Literal["ok", "stale", "empty", "unavailable"] = Field(
        description="stale: the newest sample is older than 3 intervals; empty: no sample; unavailable: unreadable")
    message: str | None
    interval_seconds: float
    stale_after_seconds: float
    newest_sample_at: str | None
    newest_sample_age_seconds: float | None
    window: HealthWindow
    services: list[ServiceHealth]
    consumers: list[ConsumerHealth]
    stores: list[StoreHealth]
    forecasts: list[ForecastHealth]
    errors: Errors


# --- incidents, acknowledgements and silences --------------------------------------------------
class IncidentNotification(WebBody):
    delivery_id: str
    kind: NotificationKind
    status: NotificationStatus
    attempts: int | None
    last_error: str | None
    silenced_by: str | None = Field(description="The silence that held it back (status silenced)")
    created_at: str | None
    sent_at: str | None


class AcknowledgementBody(WebBody):
    author: str
    comment: str
    at: str | None


class IncidentBody(WebBody):
    id: str
    rule: str
    subject: str
    region_id: str | None
    region_name: str | None
    title: str | None = Field(description="The rule's own title for it, when it has one")
    status: Literal["firing", "resolved"]
    severity: str | None
    summary: str | None
    inhibited_by: str | None = Field(description='"rule|subject" of the cause that holds it back (nothing is sent)')
    hint: str | None
    opened_at: str | None
    updated_at: str | None
    resolved_at: str | None
    last_seen: str | None
    value: Number | None
    threshold: Number | None
    notifications: list[IncidentNotification]
    acknowledgement: AcknowledgementBody | None


class IncidentsResponse(WebBody):
    generated_at: str
    total: int
    limit: int
    offset: int
    incidents: list[IncidentBody]


class IncidentResponse(WebBody):
    generated_at: str
    incident: IncidentBody


class IncidentAcknowledgement(WebBody):
    incident_id: str
    author: str
    comment: str
    at: str | None


class AckResponse(WebBody):
    acknowledgement: IncidentAcknowledgement


class SilenceBody(WebBody):
    """A contracts.Silence as the API shows it, with its state now."""

    id: str
    rule: str | None
    subject: str | None
    starts_at: str
    ends_at: str
    expired_at: str | None
    created_at: str
    comment: str
    author: str
    state: SilenceState


class SilencesResponse(WebBody):
    generated_at: str
    rules: list[str] = Field(description="The rule names a silence may match")
    max_seconds: int
    silences: list[SilenceBody]


class SilenceResponse(WebBody):
    silence: SilenceBody


# --- the weather pages: overview cards, past forecast runs, forecast quality --------------------
# (webapp/routes/weather.py, forecasts.py; views.overview_card, run_body, quality_body). Operator
# details (lag, batch ids) stay on the health pages: these bodies carry weather and forecasts.
ServedModel = Literal["prophet", "persistence", "climatology", "blend"]  # contracts.ForecastModel
Problem = Literal["silent", "late", "degraded"]


class DayRange(WebBody):
    """The high and low of the region's local day of its latest observation (from the hourly stats)."""

    day: str = Field(description="Local date of the region, YYYY-MM-DD")
    is_today: bool = Field(description="The day is the region's current local day (false: the data is older)")
    high: Number | None
    low: Number | None


class OverviewCard(WebBody):
    region: RegionSummary
    observed_age_seconds: float | None = Field(description="Age of the observation itself (now - observed_at)")
    from_backfill: bool = Field(description="The latest observation came from a back-fill batch (history replayed)")
    today: DayRange | None
    next_hours: list[ForecastPoint] = Field(description="The served forecast's next hours after the latest observation")
    forecast_model: ServedModel | None
    forecast_is_baseline: bool = Field(description="The served forecast is a baseline (persistence, climatology)")
    degraded: bool
    degraded_reason: str | None
    problem: Problem | None = Field(description="silent, late or degraded (in that order of gravity); null: none")


class BackfillStatus(WebBody):
    running: bool
    regions: list[str] = Field(description="Regions whose latest observations come from back-fill batches")
    newest_observed_at: str | None = Field(description="The newest back-filled observation so far")


class OverviewResponse(WebBody):
    generated_at: str
    thresholds: Thresholds
    cards: list[OverviewCard] = Field(description="Problems first (silent, late, degraded), then by name")
    backfill: BackfillStatus
    errors: Errors


class ForecastRunItem(WebBody):
    """One kept forecast run (contracts.ForecastRun) without its points."""

    run_at: str
    origin: str
    model: ServedModel
    is_baseline: bool
    horizon_hours: int
    band_level: Number


class ForecastRunsResponse(WebBody):
    generated_at: str
    region_id: str
    window: TimeWindow
    runs: list[ForecastRunItem] = Field(description="Newest first")


class VerifiedPoint(WebBody):
    """A point of a past run and what happened: the observation nearest its target time (within 30 min)."""

    target_time: str
    lead_hours: Number
    yhat: Number
    yhat_lower: Number
    yhat_upper: Number
    observed: Number | None
    error: Number | None = Field(description="yhat - observed")
    inside_band: bool | None


class RunVerification(WebBody):
    verified: int = Field(description="Points with an observation to compare with")
    mae: Number | None
    bias: Number | None
    coverage: Number | None = Field(description="Share of the verified points inside the band")


class ForecastRunResponse(WebBody):
    generated_at: str
    region_id: str
    run: ForecastRunItem
    points: list[VerifiedPoint]
    verification: RunVerification
    observations: list[ObservationBody] = Field(description="What happened, from before the run's origin to its last point")


class LeadSkill(WebBody):
    """Skill at one lead time, count-weighted over the regions (or one region)."""

    lead_hours: int
    count: int
    model_mae: Number | None
    persistence_mae: Number | None
    climatology_mae: Number | None
    model_bias: Number | None
    coverage: Number | None
    api_mae: Number | None = Field(None, description="The forecasting API's own forecast, scored at every lead "
                                   "whether or not it is served (a baseline is served where it does better)")


class RegionSkill(WebBody):
    """A region's skill over every lead time (count-weighted)."""

    region_id: str
    region_name: str
    count: int
    model_mae: Number | None
    persistence_mae: Number | None
    climatology_mae: Number | None
    best_baseline: Literal["persistence", "climatology"] | None
    skill: Number | None = Field(description="1 - model MAE / best baseline MAE: > 0 beats the baselines")
    coverage: Number | None
    band_level: Number | None
    served_model: ServedModel | None
    degraded: bool
    degraded_reason: str | None
    updated_at: str | None


class ForecastQualityResponse(WebBody):
    generated_at: str
    window: Literal["24h", "7d"]
    region_id: str | None = Field(description="The region by_lead is for; null: every region")
    band_level: Number | None
    updated_at: str | None
    by_lead: list[LeadSkill]
    regions: list[RegionSkill] = Field(description="Worst first (lowest skill)")
# --- daily history (webapp/routes/history.py; DailyStats documents) ---------------------------
HistoryWindow = Literal["7d", "30d", "1y"]


class DailyStat(WebBody):
    region_id: str
    day: str = Field(description="UTC day, YYYY-MM-DD")
    temp_min: Number
    temp_max: Number
    temp_mean: Number
    humidity_mean: Number
    wind_speed_mean: Number
    precipitation_mm: Number = Field(description="Rain + snow over the day, mm (hours without a reading count 0)")
    precipitation_hours: int = Field(description="Hours of the day with a rain/snow reading")
    count: int = Field(description="Observations the day's figures come from")


class RegionHistoryResponse(WebBody):
    generated_at: str
    region_id: str
    window: HistoryWindow
    start: str = Field(description="First UTC day of the window, YYYY-MM-DD")
    end: str = Field(description="Last UTC day of the window (today), YYYY-MM-DD")
    days: list[DailyStat] = Field(description="The window's days that have statistics, oldest first")


class YesterdayResponse(WebBody):
    generated_at: str
    day: str = Field(description="Yesterday's UTC day, YYYY-MM-DD")
    regions: list[DailyStat] = Field(description="Every region with statistics for that day, by region id")


class RainModelBody(WebBody):
    model: str = Field(description="decision_tree or gbt")
    trained_at: str
    selected: bool = Field(description="The one whose predictions are served")
    lead_hours: int
    train_until: str = Field(description="Training used the hours before this; the hold-out the hours from it")
    train_rows: int
    test_rows: int
    rain_share: Number = Field(description="Share of hold-out hours followed by rain")
    auc: Number | None = Field(description="Area under the ROC curve on the hold-out (None: one class only)")
    accuracy: Number
    confusion: list[list[int]] = Field(description="[[true negatives, false positives], [false negatives, true positives]]")
    training_seconds: Number


class RainChance(WebBody):
    region_id: str
    from_hour: str = Field(description="The last hour of observations the chance comes from")
    lead_hours: int
    probability: Number = Field(description="Chance of rain within lead_hours after from_hour, 0-1")
    model: str
    predicted_at: str


class RainResponse(WebBody):
    generated_at: str
    models: list[RainModelBody] = Field(description="The latest training run's classifiers, compared")
    predictions: list[RainChance] = Field(description="Every region's latest rain chance, by region id")
