from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st
from pydantic import SecretStr

from meteoflow.contracts import (
    BatchItem, BatchResponse, ForecastAttempt, ForecastDocument, ForecastState, ItemError, ModelFacts,
    ObservationPoint, Prediction, PredictResponse,
)
from meteoflow.settings import load_settings
from streaming.forecasts import (
    ForecastClient, ForecastUnavailable, RegionHistory, forecast_documents, histories_from_documents, plan_requests,
)
from tests.fakes.forecast_server import FakeForecastServer

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def history(region, hours, last=T0):
    points = [(last - timedelta(hours=h), 20.0 + h % 24) for h in range(hours)]
    return RegionHistory(region, 14.7, -17.4, last, points)


def test_plan_skips_regions_with_too_little_history_and_says_why():
    planned, skipped = plan_requests([history("long", 30), history("short", 5)], horizon_hours=6, min_points=24)
    assert [h.region_id for h, _ in planned] == ["long"]
    body = planned[0][1]
    assert body["region_id"] == "long" and body["horizon_hours"] == 6 and len(body["data"]) == 30
    assert body["data"][-1] == {"ds": "2026-03-01T12:00:00Z", "y": 20.0}
    assert skipped == {"short": "only 5 hourly points of history; the forecasting API needs at least 24"}


def prediction(hours_after):
    return Prediction(timestamp=T0 + timedelta(hours=hours_after), temperature=25.0, lower=23.0, upper=27.0)


def test_forecast_documents_keep_only_times_after_the_last_observation_and_report_item_errors():
    planned, _ = plan_requests([history("a", 24), history("b", 24), history("c", 24)], 2, 24)
    facts = ModelFacts(points_used=24, fit_seconds=0.1, seasonalities=["daily"])
    response = BatchResponse(results=[
        BatchItem(index=0, region_id="a", status="ok",
                  forecast=PredictResponse(region_id="a", predictions=[prediction(0), prediction(1), prediction(2)],
                                           model=facts)),
        BatchItem(index=1, region_id="b", status="error", error=ItemError(field="data", message="constant series")),
    ])
    run_at = T0 + timedelta(minutes=1)
    docs, ok, errors = forecast_documents(planned, response, run_at, horizon_hours=2)
    assert ok == ["a"]
    assert errors == {"b": "data: constant series", "c": "the forecasting API returned no result for this series"}
    assert [d.target_time for d in docs] == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert docs[0].to_document() == dict(
        _id="a|2026-03-01T13:00:00Z", region_id="a", target_time=T0 + timedelta(hours=1), yhat=25.0, yhat_lower=23.0,
        yhat_upper=27.0, model_run_at=run_at, horizon_hours=2, model="prophet")


def test_a_prediction_is_renamed_once_into_the_stored_forecast():
    # The forecasting API's temperature/lower/upper become yhat/yhat_lower/yhat_upper, the names the
    # collection and the web API share; a naive timestamp is UTC.
    naive = Prediction(timestamp=datetime(2026, 3, 1, 13), temperature=25.0, lower=23.0, upper=27.0)
    doc = ForecastDocument.from_prediction("a", naive, T0, horizon_hours=24)
    assert (doc.id, doc.target_time, doc.yhat, doc.yhat_lower, doc.yhat_upper) == (
        "a|2026-03-01T13:00:00Z", T0 + timedelta(hours=1), 25.0, 23.0, 27.0)
    assert ForecastDocument.from_document(doc.to_document()) == doc


def test_forecast_state_updates_say_what_each_outcome_sets():
    assert ForecastState.mark_update("a", T0) == {"$set": {"region_id": "a", "needs_forecast": True},
                                                  "$max": {"last_observed_at": T0}}
    assert ForecastAttempt.ok(T0).to_update() == {"$set": {
        "status": "ok", "needs_forecast": False, "last_attempt_at": T0, "last_error": None, "reason": None,
        "last_success_at": T0}}
    assert ForecastAttempt.ok(T0, origin=T0 - timedelta(minutes=5)).to_update()["$set"]["forecast_origin"] == (
        T0 - timedelta(minutes=5))
    assert ForecastAttempt.skipped(T0, "too short").to_update()["$set"]["reason"] == "too short"
    assert ForecastAttempt.error(T0, "bad").to_update()["$set"]["last_error"] == "bad"
    # failed keeps the region marked and leaves its last success and reason as they were
    assert ForecastAttempt.failed(T0, "down").to_update() == {"$set": {
        "status": "failed", "needs_forecast": True, "last_attempt_at": T0, "last_error": "down"}}


def test_histories_keep_the_window_before_each_regions_last_observation():
    docs = [ObservationPoint(_id=f"{region}|{when}", region_id=region, observed_at=when, temp=temp, lat=lat, lon=lon)
            for region, when, temp, lat, lon in [
                ("a", T0 - timedelta(days=8), 1.0, 1.0, 2.0),
                ("a", T0 - timedelta(days=1), 2.0, 1.0, 2.0),
                ("a", T0, 3.0, 1.5, 2.5),
                ("b", T0, 4.0, 3.0, 4.0)]]
    hist = histories_from_documents(docs, {"a": T0, "c": T0}, history_days=7)
    assert [(h.region_id, h.lat, h.lon, [t for _, t in h.points]) for h in hist] == [
        ("a", 1.5, 2.5, [2.0, 3.0]), ("c", 0.0, 0.0, [])]


@pytest.fixture
def fake_api():
    with FakeForecastServer() as server:
        yield server


def client_for(server, timeout=5.0):
    return ForecastClient(load_settings(METEOFLOW_FORECAST_API_URL=server.url, forecast_timeout_seconds=timeout))


def test_client_gets_a_batch_response_from_a_server_speaking_the_contract(fake_api):
    planned, _ = plan_requests([history("a", 48), history("b", 30)], 6, 24)
    response = client_for(fake_api).predict_batch([body for _, body in planned])
    assert [(r.index, r.status) for r in response.results] == [(0, "ok"), (1, "ok")]
    assert [p.timestamp for p in response.results[0].forecast.predictions][0] == T0 + timedelta(hours=1)
    assert len(fake_api.requests) == 1  # one call for all regions


@pytest.mark.parametrize("mode, message", [("fail", "HTTP 500"), ("hang", "within 0.5 s")])
def test_client_turns_a_failing_or_hanging_api_into_forecast_unavailable(fake_api, mode, message):
    fake_api.set_mode(mode)
    planned, _ = plan_requests([history("a", 30)], 6, 24)
    with pytest.raises(ForecastUnavailable, match=message):
        client_for(fake_api, timeout=0.5).predict_batch([body for _, body in planned])


def test_client_reports_an_unreachable_api():
    client = ForecastClient(load_settings(METEOFLOW_FORECAST_API_URL="http://127.0.0.1:9", forecast_timeout_seconds=2))
    with pytest.raises(ForecastUnavailable, match="cannot reach http://127.0.0.1:9/predict/batch"):
        client.predict_batch([{"region_id": "a"}])


def test_client_sends_the_api_key_and_splits_calls_by_the_batch_limit():
    key = "streaming-test-key"
    with FakeForecastServer(api_key=key) as server:
        settings = load_settings(METEOFLOW_FORECAST_API_URL=server.url, forecast_api_key=key,
                                 forecast_max_batch_series=1, forecast_timeout_seconds=5)
        planned, _ = plan_requests([history("a", 30), history("b", 30)], 6, 24)
        response = ForecastClient(settings).predict_batch([body for _, body in planned])
        assert [(r.index, r.region_id, r.status) for r in response.results] == [(0, "a", "ok"), (1, "b", "ok")]
        assert [len(r["series"]) for r in server.requests] == [1, 1]  # forecast_max_batch_series per call
        assert all(h.get("X-API-Key") == key for h in server.headers)
        # Without the key the API refuses, and the error does not show the key.
        with pytest.raises(ForecastUnavailable, match="HTTP 401"):
            client_for(server).predict_batch([body for _, body in planned])
        with pytest.raises(ForecastUnavailable) as refused:
            ForecastClient(settings.model_copy(update=dict(forecast_api_key=SecretStr("a-wrong-key")))).predict_batch(
                [body for _, body in planned])
        assert "a-wrong-key" not in str(refused.value) and key not in str(refused.value)


def test_client_reports_a_busy_api_with_its_retry_after(fake_api):
    fake_api.set_mode("busy")
    planned, _ = plan_requests([history("a", 30)], 6, 24)
    with pytest.raises(ForecastUnavailable, match=r"busy \(HTTP 429, Retry-After 7 s\)"):
        client_for(fake_api).predict_batch([body for _, body in planned])


@given(status=st.sampled_from(["ok", "failed", "error", "skipped", None]),
       data_ahead=st.integers(0, 600), forecast_age=st.integers(0, 600), min_seconds=st.integers(0, 300),
       known=st.booleans())
def test_a_marked_region_waits_only_after_a_recent_successful_forecast_of_nearly_the_same_data(
        status, data_ahead, forecast_age, min_seconds, known):
    state = ForecastState(_id="a", region_id="a", needs_forecast=True, status=status,
                          last_observed_at=T0 + timedelta(seconds=data_ahead),
                          forecast_origin=T0 if known else None, last_success_at=T0 if known else None)
    waits = status == "ok" and known and data_ahead < min_seconds and forecast_age < min_seconds
    assert state.refit_due(T0 + timedelta(seconds=forecast_age), min_seconds) is not waits


def test_the_forecast_thread_waits_out_a_backlog_for_a_bounded_time():
    import logging

    from streaming.forecasts import RetryTimer

    now = [0.0]
    timer = RetryTimer(refresher=None, interval=3.0, log=logging.getLogger("test"), backlog_wait=60.0,
                       clock=lambda: now[0])
    ticks = []
    for second in range(0, 150, 3):  # the thread's ticks, 3 s apart, the job behind all along
        now[0] = float(second)
        ticks.append(timer.waits_for_backlog(True))
    refreshed_at = [3 * i for i, waits in enumerate(ticks) if not waits]
    assert refreshed_at == [60, 123]  # once every 60 s at least: forecasts never starve behind a backlog

    assert not timer.waits_for_backlog(False)  # caught up: refresh at once
    now[0] += 3
    assert timer.waits_for_backlog(True)  # a new backlog: a new wait

    never = RetryTimer(refresher=None, interval=3.0, log=logging.getLogger("test"), backlog_wait=0.0)
    assert not never.waits_for_backlog(True)  # METEOFLOW_FORECAST_BACKLOG_WAIT_SECONDS=0


def test_the_forecast_thread_settles_once_it_has_refreshed_with_the_job_caught_up():
    import logging

    from streaming.forecasts import BACKLOG_POLL_SECONDS, ForecastOutcome, RetryTimer

    class Refresher:
        calls = 0
        fail = False

        def refresh(self):
            self.calls += 1
            if self.fail:
                raise RuntimeError("the store is restarting")
            return ForecastOutcome(ok=["r1"])

    refresher, behind = Refresher(), [True]
    timer = RetryTimer(refresher, interval=3.0, log=logging.getLogger("test"), behind=lambda: behind[0],
                       backlog_wait=60.0, clock=lambda: 0.0)
    assert timer.tick() is None and refresher.calls == 0 and not timer.settled.is_set()
    assert timer.next_wait() == BACKLOG_POLL_SECONDS  # waiting: looks again soon, to fit as soon as it catches up
    behind[0] = False
    refresher.fail = True
    with pytest.raises(RuntimeError):
        timer.tick()
    assert timer.settled.is_set()  # a failed refresh must not hold the archive back either
    assert timer.next_wait() == 3.0
    refresher.fail = False
    assert timer.tick().ok == ["r1"] and refresher.calls == 2

    # a refresh forced by the wait's bound, still behind, has not settled anything
    behind[0] = True
    bounded = RetryTimer(refresher, interval=3.0, log=logging.getLogger("test"), behind=lambda: behind[0],
                         backlog_wait=0.0)
    assert bounded.tick().ok == ["r1"] and not bounded.settled.is_set()
