"""Forecast refresh: which regions need a forecast, one batch call to the forecasting API,
the forecast documents and each region's state.

A region is *marked* (needs_forecast) when a batch touches it; the streaming job's forecast
thread (RetryTimer) refreshes every marked region on its own schedule, off the write path, so a
crash or an API outage never loses the work and never holds a batch back.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

import requests
from pydantic import ValidationError
from pymongo import UpdateOne
from pymongo.database import Database

from meteoflow.clock import utc_now
from meteoflow.errors import describe_errors
from meteoflow.contracts import (
    API_KEY_HEADER, FORECAST_RUNS, FORECAST_SKILL, FORECAST_STATE, FORECASTS, BatchResponse,
    ForecastAttempt, ForecastDocument, ForecastModel, ForecastRun, ForecastRunPoint, ForecastRunSummary, ForecastSkill,
    ForecastState, ModelFacts, OBSERVATIONS, ObservationPoint, Prediction, PredictRequest, REGION_SERIES, RegionSeries,
    SERIES_HOURS, bson_millis, find_by_ids, find_region_days, utc_days, valid_documents,
)
from meteoflow.metrics import StreamingMetrics
from meteoflow.settings import Settings
from streaming.baselines import baseline_forecast, climatology_value
from meteoflow.contracts import hour_floor
from streaming.records import hourly_means, hourly_series
from streaming.selection import MODEL, Plan, choose_all
from streaming.sinks import insert_or_update
from streaming.skill import SkillTracker

LOG = logging.getLogger(__name__)
HOUR = timedelta(hours=1)

@dataclass(frozen=True)
class RegionHistory:
    region_id: str
    lat: float
    lon: float
    last_observed_at: datetime
    points: list[tuple[datetime, float]]


@dataclass
class ForecastOutcome:
    ok: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # API unreachable/failed: retried
    skipped: dict[str, str] = field(default_factory=dict)  # too little history: waits for data
    errors: dict[str, str] = field(default_factory=dict)  # the API rejected this series
    forecasts_written: int = 0
    deferred: int = 0  # regions left marked for a later refresh: the API in back-off, or their refit not due

    @property
    def attempted(self) -> bool:
        return bool(self.ok or self.failed or self.skipped or self.errors)

    def summary(self) -> ForecastRunSummary:
        return ForecastRunSummary(ok=len(self.ok), failed=len(self.failed), skipped=len(self.skipped),
                                  errors=len(self.errors), deferred=self.deferred,
                                  forecasts_written=self.forecasts_written,
                                  failure=next(iter(self.failed.values()), None))


RETENTION_EVERY_SECONDS = 3600.0
BACKLOG_POLL_SECONDS = 0.5  # how often the waiting forecast thread looks whether the job has caught up


class ForecastUnavailable(RuntimeError):
    """The forecasting API could not answer (down, timeout, 5xx, malformed body)."""


# --- pure parts ---------------------------------------------------------------------------
def plan_requests(
    histories: Iterable[RegionHistory], horizon_hours: int, min_points: int
) -> tuple[list[tuple[RegionHistory, dict[str, Any]]], dict[str, str]]:
    """One PredictRequest body per region with enough hourly points; the others skipped with why."""
    planned, skipped = [], {}
    for hist in histories:
        series = hourly_series(hist.points)
        if len(series) < min_points:
            skipped[hist.region_id] = (
                f"only {len(series)} hourly points of history; the forecasting API needs at least {min_points}"
            )
            continue
        body = PredictRequest(region_id=hist.region_id, latitude=hist.lat, longitude=hist.lon,
                              data=series, horizon_hours=horizon_hours).model_dump(mode="json")
        planned.append((hist, body))
    return planned, skipped


def forecast_documents(
    planned: list[tuple[RegionHistory, dict[str, Any]]], response: BatchResponse, model_run_at: datetime,
    horizon_hours: int,
) -> tuple[list[ForecastDocument], list[str], dict[str, str]]:
    """Forecast documents of the items that succeeded, only for times after the last observation."""
    docs, ok, errors = [], [], {}
    by_index = {item.index: item for item in response.results}
    for index, (hist, _) in enumerate(planned):
        item = by_index.get(index)
        if item is None:
            errors[hist.region_id] = "the forecasting API returned no result for this series"
        elif item.status != "ok" or item.forecast is None:
            err = item.error
            errors[hist.region_id] = f"{err.field}: {err.message}" if err else "forecast failed"
        else:
            ok.append(hist.region_id)
            model = served_model(item.forecast.model)
            for pred in item.forecast.predictions:
                doc = ForecastDocument.from_prediction(hist.region_id, pred, model_run_at, horizon_hours, model)
                if doc.target_time > hist.last_observed_at:
                    docs.append(doc)
    return docs, ok, errors


def served_model(facts: ModelFacts) -> ForecastModel:
    """Which forecast the API served; an API of an earlier version does not say, and served Prophet."""
    return facts.model or "prophet"


def served_documents(api_docs: Iterable[ForecastDocument], histories: Iterable[RegionHistory],
                     plans: Mapping[str, Plan], model_run_at: datetime, horizon_hours: int,
                     band_level: float) -> list[ForecastDocument]:
    """The API's forecast documents with, at each lead where a region's plan serves a baseline, that
    baseline's point instead (labelled as such). A lead whose baseline cannot be computed keeps the model."""
    hist_of = {hist.region_id: hist for hist in histories}
    baselines: dict[tuple[str, str], dict[datetime, tuple[ForecastModel, Prediction]]] = {}
    served = []
    for doc in api_docs:
        plan = plans.get(doc.region_id)
        hist = hist_of.get(doc.region_id)
        lead = (doc.target_time - hour_floor(hist.last_observed_at)) / HOUR if hist else 0
        want = plan.serve_at(int(lead)) if plan and hist and lead == int(lead) else MODEL
        if want == MODEL:
            served.append(doc)
            continue
        key = (doc.region_id, want)
        if key not in baselines:
            found = baseline_forecast(hourly_means(hist.points), horizon_hours, band_level, want)
            baselines[key] = {p.timestamp: (found[0], p) for p in found[1]} if found else {}
        label, prediction = baselines[key].get(doc.target_time, (None, None))
        served.append(doc if prediction is None else ForecastDocument.from_prediction(
            doc.region_id, prediction, model_run_at, horizon_hours, label))
    return served


def baseline_documents(histories: Iterable[RegionHistory], regions: Iterable[str], model_run_at: datetime,
                       horizon_hours: int, band_level: float) -> tuple[list[ForecastDocument], list[str]]:
    """Baseline forecasts (labelled persistence/climatology) of `regions`, which have too little history
    for the model; a region without any observation gets none. Returns the documents and the regions served."""
    wanted = set(regions)
    docs, served = [], []
    for hist in histories:
        if hist.region_id not in wanted:
            continue
        baseline = baseline_forecast(hourly_means(hist.points), horizon_hours, band_level)
        if baseline is None:
            continue
        model, predictions = baseline
        served.append(hist.region_id)
        docs += [ForecastDocument.from_prediction(hist.region_id, p, model_run_at, horizon_hours, model)
                 for p in predictions if p.timestamp > hist.last_observed_at]
    return docs, served


def forecast_runs(docs: Iterable[ForecastDocument], histories: Iterable[RegionHistory],
                  band_level: float, api_docs: Iterable[ForecastDocument] = ()) -> list[ForecastRun]:
    """One kept run per region of `docs` (one refresh: what is served), with the baselines' forecasts of
    its targets, known at run time: the origin hour's value (persistence) and the same hour yesterday
    (climatology), and the forecasting API's own forecast of each target (`api_docs`) whether served or not."""
    by_region: dict[str, list[ForecastDocument]] = {}
    for doc in docs:
        by_region.setdefault(doc.region_id, []).append(doc)
    api = {(d.region_id, d.target_time): d for d in api_docs}
    api_label = {d.region_id: d.model for d in api.values()}
    hist_of = {hist.region_id: hist for hist in histories}
    runs = []
    for region_id, points in sorted(by_region.items()):
        hist = hist_of[region_id]
        hourly = hourly_means(hist.points)
        origin_hour = hour_floor(hist.last_observed_at)
        points.sort(key=lambda d: d.target_time)
        first = points[0]
        runs.append(ForecastRun(
            _id=ForecastRun.make_id(region_id, first.model_run_at), region_id=region_id, run_at=first.model_run_at,
            origin=hist.last_observed_at, model=api_label.get(region_id) or first.model or "prophet",
            horizon_hours=first.horizon_hours or len(points), band_level=band_level,
            persistence=hourly.get(origin_hour),
            points=[ForecastRunPoint(target_time=d.target_time, yhat=d.yhat, yhat_lower=d.yhat_lower,
                                     yhat_upper=d.yhat_upper,
                                     climatology=climatology_value(hourly, d.target_time, origin_hour),
                                     model=d.model, api_yhat=api[(region_id, d.target_time)].yhat
                                     if (region_id, d.target_time) in api else None)
                    for d in points]))
    return runs


def histories_from_documents(
    points: Iterable[ObservationPoint], last_observed: dict[str, datetime], history_days: int
) -> list[RegionHistory]:
    """Group stored observations per region, keeping the `history_days` before each region's last one."""
    window = timedelta(days=history_days)
    grouped: dict[str, list[ObservationPoint]] = {}
    for point in points:
        last = last_observed.get(point.region_id)
        if last is not None and last - window <= point.observed_at <= last:
            grouped.setdefault(point.region_id, []).append(point)
    out = []
    for region_id, last in sorted(last_observed.items()):
        rows = sorted(grouped.get(region_id, []), key=lambda p: p.observed_at)
        if not rows:
            out.append(RegionHistory(region_id, 0.0, 0.0, last, []))
            continue
        out.append(RegionHistory(region_id, rows[-1].lat, rows[-1].lon, last,
                                 [(p.observed_at, p.temp) for p in rows]))
    return out


# --- HTTP client ----------------------------------------------------------------------------
class ForecastClient:
    def __init__(self, settings: Settings, session: requests.Session | None = None):
        self.url = settings.forecast_api_url.rstrip("/") + "/predict/batch"
        self.timeout = settings.forecast_timeout_seconds
        self.max_series = settings.forecast_max_batch_series  # the API's limit per call (413 beyond)
        self.session = session or requests.Session()
        # Sent with every call, never logged: an error names the URL and the status, not the headers.
        self.headers = ({API_KEY_HEADER: settings.forecast_api_key.get_secret_value()}
                        if settings.forecast_api_key else {})

    def predict_batch(self, series: list[dict[str, Any]]) -> BatchResponse:
        results = []
        for start in range(0, len(series), self.max_series):
            chunk = series[start:start + self.max_series]
            response = self._post(chunk)
            for item in response.results:
                results.append(item.model_copy(update={"index": item.index + start}))
        return BatchResponse(results=results)

    def _post(self, series: list[dict[str, Any]]) -> BatchResponse:
        try:
            resp = self.session.post(self.url, json={"series": series}, headers=self.headers, timeout=self.timeout)
        except requests.Timeout:
            raise ForecastUnavailable(f"no answer from {self.url} within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise ForecastUnavailable(f"cannot reach {self.url}: {type(exc).__name__}") from None
        if resp.status_code == 429:  # the API's queue is full: the regions stay marked for the retry timer
            raise ForecastUnavailable(f"{self.url} is busy (HTTP 429, Retry-After {resp.headers.get('Retry-After')} s): "
                                      f"{resp.text[:200]}")
        if resp.status_code != 200:
            raise ForecastUnavailable(f"{self.url} answered HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            return BatchResponse.model_validate(resp.json())
        except ValueError as exc:  # not JSON, or not the shape (a ValidationError names the fields)
            reason = describe_errors(exc, default_field="body") if isinstance(exc, ValidationError) else str(exc)
            raise ForecastUnavailable(f"{self.url} answered a body that is not a BatchResponse: {reason}"[:300]) from None


# --- MongoDB side ---------------------------------------------------------------------------
class ForecastRefresher:
    """Marks regions, refreshes every marked one with one API call, records each region's state.

    Called by the forecast thread (and once at the end of run_until_idle); a lock keeps calls from
    overlapping. MongoDB errors propagate (the thread logs and tries again); API errors only leave
    the regions marked.
    """

    def __init__(self, db: Database, settings: Settings, client: ForecastClient | None = None,
                 clock: Callable[[], datetime] = utc_now,
                 metrics: StreamingMetrics | None = None):
        self.db = db
        self.settings = settings
        self.client = client or ForecastClient(settings)
        self.clock = clock
        self.metrics = metrics or StreamingMetrics()
        self._lock = threading.Lock()
        self._backoff_until = 0.0
        self._retention_due = 0.0  # monotonic time of the next retention pass over forecast_runs
        self.skill = SkillTracker(db, clock)
        self._serving: dict[str, Plan] = {}  # region -> what its tracked skill chose last, per lead

    def mark(self, latest: dict[str, datetime]) -> None:
        if not latest:
            return
        self.db[FORECAST_STATE].bulk_write(
            [UpdateOne({"_id": region}, ForecastState.mark_update(region, when), upsert=True)
             for region, when in latest.items()],
            ordered=False,
        )

    def refresh(self, force: bool = False) -> ForecastOutcome:
        """Forecast every marked region. After a failure the API is left alone for
        forecast_retry_seconds (a call then only counts the regions left marked, instead of
        waiting out a timeout again); force=True asks the API anyway. Then the skill of the kept
        runs is brought up to date with the hours observed since (streaming/skill.py)."""
        with self._lock:
            outcome, histories, runs = self._refresh(force)
            # The hours just read include the new observations: score the kept runs against them.
            self.skill.update({h.region_id: hourly_means(h.points) for h in histories if h.points}, runs)
            return outcome

    def _refresh(self, force: bool) -> tuple[ForecastOutcome, list[RegionHistory], list[ForecastRun]]:
        marked = list(valid_documents(ForecastState, self.db[FORECAST_STATE].find({"needs_forecast": True})))
        outcome = ForecastOutcome()
        if not force:
            # A region whose data arrives every few seconds waits, marked, for its next refit (one fit
            # per forecast_refit_min_seconds instead of one per refresh, on the cores the batches need).
            now = self.clock()
            due = [s for s in marked if s.refit_due(now, self.settings.forecast_refit_min_seconds)]
            outcome.deferred, marked = len(marked) - len(due), due
        pending = {s.id: s.last_observed_at for s in marked}
        if not pending:
            return outcome, [], []
        if not force and time.monotonic() < self._backoff_until:
            outcome.deferred += len(pending)
            return outcome, [], []
        histories = self._histories(pending)
        planned, outcome.skipped = plan_requests(
            histories, self.settings.forecast_horizon_hours, self.settings.forecast_min_points)
        # At the leads where a region's tracked skill says a baseline beats the model, the baseline is
        # served; the API is asked all the same, so the model's own forecast goes on being scored.
        plans = self._lead_plans([hist.region_id for hist, _ in planned])
        now = bson_millis(self.clock())
        # Too little history for the model: a baseline forecast, labelled as such, rather than none.
        baseline_docs, baseline_ok = baseline_documents(
            histories, list(outcome.skipped), now, self.settings.forecast_horizon_hours,
            self.settings.forecast_interval_width)
        for region in baseline_ok:
            outcome.skipped.pop(region, None)
        api_docs: list[ForecastDocument] = []
        if planned:
            try:
                response = self.client.predict_batch([body for _, body in planned])
            except ForecastUnavailable as exc:
                outcome.failed = {hist.region_id: str(exc) for hist, _ in planned}
                self._backoff_until = time.monotonic() + self.settings.forecast_retry_seconds
            else:
                self._backoff_until = 0.0
                api_docs, outcome.ok, outcome.errors = forecast_documents(
                    planned, response, now, self.settings.forecast_horizon_hours)
        outcome.ok += baseline_ok
        docs = served_documents(api_docs, histories, plans, now, self.settings.forecast_horizon_hours,
                                self.settings.forecast_interval_width) + baseline_docs
        runs = self._write_forecasts(outcome.ok, docs, histories, now, api_docs)
        outcome.forecasts_written = len(docs)
        self._write_state(outcome, pending, now)
        self.metrics.forecast_outcome(outcome)
        return outcome, histories, runs

    def _write_forecasts(self, regions: list[str], docs: list[ForecastDocument], histories: list[RegionHistory],
                         now: datetime, api_docs: list[ForecastDocument]) -> list[ForecastRun]:
        """Each run is kept in forecast_runs (older than the retention go); a region's forecasts are its
        latest run: the old run goes (its targets may now lie before the newest observations), the new
        one is inserted. A crash in between leaves the region marked, so the run is redone. Returns the runs."""
        if not regions:
            return []
        runs = forecast_runs(docs, histories, self.settings.forecast_interval_width, api_docs)
        insert_or_update(self.db[FORECAST_RUNS], [run.to_document() for run in runs])
        if time.monotonic() >= self._retention_due:
            # At most once per RETENTION_EVERY_SECONDS: deleting by run_at is an index range in MongoDB but
            # a pass over the whole collection in FerretDB (SQLite), which keeps every run of the retention.
            self.db[FORECAST_RUNS].delete_many(
                {"run_at": {"$lt": now - timedelta(days=self.settings.forecast_runs_retention_days)}})
            self._retention_due = time.monotonic() + RETENTION_EVERY_SECONDS
        self.db[FORECASTS].delete_many({"region_id": {"$in": regions}})
        insert_or_update(self.db[FORECASTS], [doc.to_document() for doc in docs])
        return runs

    def _lead_plans(self, regions: list[str]) -> dict[str, Plan]:
        """What each of `regions` serves at each lead, by its tracked skill: one indexed query for all of
        them. Each change of a region's plan is logged once, with its figures."""
        if not regions:
            return {}
        skills = valid_documents(ForecastSkill, self.db[FORECAST_SKILL].find({"region_id": {"$in": sorted(regions)}}))
        plans = choose_all(skills, regions, self.settings.forecast_skill_min_pairs)
        for region, plan in sorted(plans.items()):
            previous = self._serving.get(region, Plan())
            if plan.key() != previous.key():
                reason = plan.describe()
                LOG.info("forecast for %s now serves %s (before: %s)", region, reason, previous.describe(),
                         extra={"fields": {"event.action": "forecast-model-switch", "meteoflow.streaming": {
                             "region": region, "serve": {str(lead): c.serve for lead, c in plan.baselines.items()},
                             "reason": reason}}})
            self._serving[region] = plan
        return plans

    def _histories(self, pending: dict[str, datetime]) -> list[RegionHistory]:
        """Each pending region's hours of history: its region_series document (one small read per
        region), or its observations where that does not cover the marked observation (a region stored
        before the series were kept) or the window (forecast_history_days beyond SERIES_HOURS)."""
        window = timedelta(days=self.settings.forecast_history_days)
        series: dict[str, RegionSeries] = {}
        if window < timedelta(hours=SERIES_HOURS):
            found = find_by_ids(self.db[REGION_SERIES], sorted(pending))
            series = {s.region_id: s for s in valid_documents(RegionSeries, found)
                      if s.last_observed_at >= pending[s.region_id]}
        histories = [RegionHistory(region, s.lat, s.lon, pending[region],
                                   [(hour, temp) for hour, temp in s.points()
                                    if pending[region] - window <= hour <= pending[region]])
                     for region, s in series.items()]
        rest = {region: when for region, when in pending.items() if region not in series}
        if rest:
            histories += self._observed_histories(rest)
        return sorted(histories, key=lambda hist: hist.region_id)

    def _observed_histories(self, pending: dict[str, datetime]) -> list[RegionHistory]:
        history = timedelta(days=self.settings.forecast_history_days)
        # each region's days read by their index: those days' documents only, whatever the history
        keys = [(region, day) for region, when in sorted(pending.items()) for day in utc_days(when - history, when)]
        docs = find_region_days(self.db[OBSERVATIONS], keys, ObservationPoint.projection())
        return histories_from_documents(valid_documents(ObservationPoint, docs), pending,
                                        self.settings.forecast_history_days)

    def _write_state(self, outcome: ForecastOutcome, pending: dict[str, datetime], now: datetime) -> None:
        ops = []

        def done(region: str, attempt: ForecastAttempt) -> None:
            # Cleared only if no newer observation marked the region meanwhile.
            ops.append(UpdateOne({"_id": region, "last_observed_at": pending[region]}, attempt.to_update()))

        for region in outcome.ok:
            done(region, ForecastAttempt.ok(now, origin=pending[region]))
        for region, reason in outcome.skipped.items():
            done(region, ForecastAttempt.skipped(now, reason))
        for region, message in outcome.errors.items():
            done(region, ForecastAttempt.error(now, message))
        for region, message in outcome.failed.items():
            ops.append(UpdateOne({"_id": region}, ForecastAttempt.failed(now, message).to_update()))
        if ops:
            self.db[FORECAST_STATE].bulk_write(ops, ordered=False)


class RetryTimer:
    """The forecast step's own thread: every `interval` seconds (forecast_refresh_seconds),
    refreshes the regions still marked, so forecasts follow new observations and catch up after
    an outage (respecting the refresher's back-off) without ever being on a batch's path.

    While `behind()` (the job is catching up a backlog) it waits, up to `backlog_wait` seconds in a
    row: the regions stay marked and are fit once the backlog is stored, from their whole history.
    Meanwhile it looks every BACKLOG_POLL_SECONDS, so that fit starts as soon as the job catches up.
    `settled` is set once a refresh has run with the job caught up (work that can wait, the archive,
    waits for it)."""

    def __init__(self, refresher: ForecastRefresher, interval: float, log: logging.Logger,
                 behind: Callable[[], bool] | None = None, backlog_wait: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        self.refresher = refresher
        self.interval = interval
        self.log = log
        self.behind = behind
        self.backlog_wait = backlog_wait
        self.clock = clock
        self.settled = threading.Event()
        self._waiting_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="forecast-retry", daemon=True)

    def start(self) -> "RetryTimer":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def waits_for_backlog(self, behind: bool) -> bool:
        """Whether this tick leaves the marked regions for later: behind, and not yet for backlog_wait."""
        if not behind or self.backlog_wait <= 0:
            self._waiting_since = None
            return False
        now = self.clock()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since < self.backlog_wait:
            return True
        self._waiting_since = None  # waited long enough: this tick refreshes, the next may wait again
        return False

    def next_wait(self) -> float:
        return min(BACKLOG_POLL_SECONDS, self.interval) if self._waiting_since is not None else self.interval

    def tick(self) -> ForecastOutcome | None:
        """One turn of the thread: None when it waits for the backlog, else the refresh's outcome
        (its exception propagates)."""
        behind = self.behind is not None and self.behind()
        if self.waits_for_backlog(behind):
            return None
        try:
            return self.refresher.refresh()
        finally:
            if not behind:
                self.settled.set()

    def _run(self) -> None:
        while not self._stop.wait(self.next_wait()):
            began, cpu = time.monotonic(), time.thread_time()
            try:
                outcome = self.tick()
            except Exception as exc:  # noqa: BLE001 - the timer must outlive a MongoDB hiccup
                self.log.warning("forecast refresh failed after %.1f s: %s", time.monotonic() - began, exc)
                continue
            if outcome is not None and outcome.attempted:
                took, cpu = time.monotonic() - began, time.thread_time() - cpu
                # The CPU is this process's share (the job's batches run beside it), the rest is waiting.
                self.log.info("forecast refresh: %d ok, %d failed, %d skipped, %d errors in %.1f s (%.2f s CPU here)",
                              len(outcome.ok), len(outcome.failed), len(outcome.skipped), len(outcome.errors), took,
                              cpu,
                              extra={"fields": {"event.action": "forecast-retry", "event.duration": int(took * 1e9),
                                                "meteoflow.streaming": {
                                                    "forecast": outcome.summary().model_dump(mode="json")}}})
