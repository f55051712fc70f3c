import { useState } from "react";
import type { ConfigResponse, ForecastRunResponse, ForecastRunsResponse, HourlyStat, RegionHistoryResponse, RegionResponse } from "../api";
import { Empty, ErrorBanner, Loading, ObservationBadge, SourceErrors } from "../components/common";
import { ConditionCharts, DailyHistoryChart, TemperatureChart } from "../components/WeatherCharts";
import type { Units } from "../format";
import { ago, compass, formatTemp, formatWind, localDate, localTime } from "../format";
import type { HistoryWindowValue } from "../history";
import { formatMm, HISTORY_WINDOWS } from "../history";
import { usePolling } from "../hooks";
import { WeatherIcon } from "../icons";
import { formatDelta, modelLabel, observationState } from "../weather";

const WINDOWS = [24, 48, 72, 168];

function HourlyTable({ rows, units, offset }: { rows: HourlyStat[]; units: Units; offset: number }) {
  const recent = [...rows].reverse().slice(0, 48);
  const values = recent.flatMap((r) => [r.temp_min, r.temp_max]).filter((v): v is number => v !== null);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pos = (v: number) => (hi === lo ? 50 : ((v - lo) / (hi - lo)) * 100);
  return (
    <>
    <p className="hint hint-top">
      Newest first. Bars span each hour's min to max on a scale from {formatTemp(lo, units)} to {formatTemp(hi, units)}; the tick is the mean.
    </p>
    <div className="table-wrap" tabIndex={0} role="region" aria-label="Hourly temperature statistics">
      <table className="table" data-testid="hourly-table">
        <caption className="sr-only">Hourly minimum, mean and maximum temperature, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Hour</th>
            <th scope="col" className="num">Min</th>
            <th scope="col" className="num">Mean</th>
            <th scope="col" className="num">Max</th>
            <th scope="col" className="range-col">Range</th>
            <th scope="col" className="num">Obs.</th>
          </tr>
        </thead>
        <tbody>
          {recent.map((r) => (
            <tr key={r.hour}>
              <th scope="row">
                {localDate(r.hour, offset)} {localTime(r.hour, offset)}
              </th>
              <td className="num">{formatTemp(r.temp_min, units, 1)}</td>
              <td className="num">{formatTemp(r.temp_mean, units, 1)}</td>
              <td className="num">{formatTemp(r.temp_max, units, 1)}</td>
              <td className="range-col" aria-hidden="true">
                {r.temp_min !== null && r.temp_max !== null && (
                  <div className="range-track">
                    <div className="range-bar" style={{ left: `${pos(r.temp_min)}%`, width: `${Math.max(1.5, pos(r.temp_max) - pos(r.temp_min))}%` }} />
                    {r.temp_mean !== null && <div className="range-mean" style={{ left: `${pos(r.temp_mean)}%` }} />}
                  </div>
                )}
              </td>
              <td className="num">{r.count ?? "–"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    </>
  );
}

function RunPicker({ regionId, hours, value, onChange, refreshMs, offset }: {
  regionId: string; hours: number; value: string; onChange: (runAt: string) => void; refreshMs: number; offset: number;
}) {
  const url = `/api/regions/${encodeURIComponent(regionId)}/forecast-runs?hours=${hours}`;
  const { data } = usePolling<ForecastRunsResponse>(url, refreshMs * 6);
  const runs = data?.runs ?? [];
  return (
    <label className="select-label">
      Past forecast
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid="run-picker" disabled={runs.length === 0}>
        <option value="">{runs.length ? "None (latest forecast only)" : "No past run kept yet"}</option>
        {runs.map((r) => (
          <option key={r.run_at} value={r.run_at}>
            {localDate(r.run_at, offset)} {localTime(r.run_at, offset)} · {r.is_baseline ? `baseline (${r.model})` : r.model}
          </option>
        ))}
      </select>
    </label>
  );
}

function RunVerdict({ run, units }: { run: ForecastRunResponse; units: Units }) {
  const v = run.verification;
  const level = Math.round(run.run.band_level * 100);
  return (
    <p className="hint run-verdict" data-testid="run-verdict">
      {v.verified === 0
        ? "Nothing observed yet to compare this run with."
        : `This run against what happened: mean error ${formatDelta(v.mae, units)} over ${v.verified} hours` +
          ` (bias ${v.bias !== null && v.bias >= 0 ? "+" : ""}${formatDelta(v.bias, units)}), band held ${Math.round((v.coverage ?? 0) * 100)}% (nominal ${level}%).`}
    </p>
  );
}

function HistoryPanel({ regionId, units, refreshMs }: { regionId: string; units: Units; refreshMs: number }) {
  const [window, setWindow] = useState<HistoryWindowValue>("7d");
  const url = `/api/regions/${encodeURIComponent(regionId)}/history?window=${window}`;
  // Daily figures change slowly: poll less often than the live charts.
  const { data, error, loading } = usePolling<RegionHistoryResponse>(url, refreshMs * 6);
  const shown = data && data.window === window ? data : null;
  const total = shown ? shown.days.reduce((a, d) => a + d.precipitation_mm, 0) : null;
  return (
    <div className="card" data-testid="history-panel" data-window={shown?.window ?? ""}>
      <div className="card-title-row">
        <h2>History</h2>
        <div className="segmented" role="group" aria-label="History window">
          {HISTORY_WINDOWS.map((w) => (
            <button key={w.value} type="button" aria-pressed={window === w.value} onClick={() => setWindow(w.value)} data-testid={`history-${w.value}`}>
              {w.label}
            </button>
          ))}
        </div>
      </div>
      {error && <ErrorBanner message={error} retrySeconds={(refreshMs * 6) / 1000} stale={!!data} />}
      {loading && !shown && <Loading what="daily statistics" />}
      {shown && shown.days.length === 0 && <Empty title="No daily statistics in this window yet." />}
      {shown && shown.days.length > 0 && (
        <>
          <DailyHistoryChart days={shown.days} units={units} window={shown.window} />
          <p className="hint" data-testid="history-note">
            {shown.days.length} of the days {shown.start} to {shown.end} (UTC) have statistics · precipitation over them {formatMm(total)}.
          </p>
        </>
      )}
    </div>
  );
}

export function RegionPage({ regionId, units, refreshMs }: { regionId: string; units: Units; refreshMs: number }) {
  const [hours, setHours] = useState(48);
  const [runAt, setRunAt] = useState("");
  const url = `/api/regions/${encodeURIComponent(regionId)}?hours=${hours}`;
  const { data, error, loading } = usePolling<RegionResponse>(url, refreshMs);
  const runUrl = runAt ? `/api/regions/${encodeURIComponent(regionId)}/forecast-runs/${encodeURIComponent(runAt)}` : null;
  const run = usePolling<ForecastRunResponse>(runUrl, refreshMs * 6);
  const config = usePolling<ConfigResponse>("/api/config", 60_000);
  const notFound = error?.startsWith("404");
  const r = data?.region;
  const o = r?.latest;
  const offset = o?.timezone_offset ?? 0;
  const points = data?.forecast?.points ?? [];
  const observedAge = data && o ? (Date.parse(data.generated_at) - Date.parse(o.observed_at)) / 1000 : null;
  const picked = runAt && run.data?.run.run_at === runAt ? run.data : null;
  // What happened around a past run too, when it lies before the window.
  const observations = (() => {
    if (!data) return [];
    if (!picked) return data.observations;
    const byTime = new Map([...picked.observations, ...data.observations].map((x) => [x.observed_at, x]));
    return [...byTime.values()].sort((a, b) => Date.parse(a.observed_at) - Date.parse(b.observed_at));
  })();
  const served = modelLabel(data?.forecast?.model);
  return (
    <section aria-labelledby="page-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <a href="#/">Overview</a> <span aria-hidden="true">›</span> <span aria-current="page">{r?.region_name ?? regionId}</span>
      </nav>
      <div className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {r?.region_name ?? regionId}
        </h1>
        {r && (
          <ObservationBadge freshness={r.freshness} ageSeconds={r.age_seconds} backfilled={false}
            old={!!config.data && observationState(observedAge, config.data.thresholds.silent_after_seconds) === "old"} />
        )}
      </div>
      {notFound && <Empty title={`No region "${regionId}".`}>It has no stored observation. <a href="#/">Back to the overview</a>.</Empty>}
      {error && !notFound && <ErrorBanner message={error} retrySeconds={refreshMs / 1000} stale={!!data} />}
      {loading && !data && <Loading what="the region's history" />}
      {data && <SourceErrors errors={data.errors} />}
      {data && r && (
        <>
          <div className="now-strip card">
            <WeatherIcon icon={o?.weather_icon} main={o?.weather_main} label={o?.weather_description ?? "conditions"} size={72} />
            <div>
              <div className="temp temp-xl" data-testid="region-temp">
                {formatTemp(o?.temp, units, 1)}
              </div>
              <div className="conditions">{o?.weather_description ?? o?.weather_main ?? "–"}</div>
            </div>
            <dl className="facts facts-wide">
              <div><dt>Feels like</dt><dd>{formatTemp(o?.feels_like, units, 1)}</dd></div>
              <div><dt>Humidity</dt><dd>{o ? `${Math.round(o.humidity)} %` : "–"}</dd></div>
              <div><dt>Wind</dt><dd>{formatWind(o?.wind_speed, units)} {compass(o?.wind_deg)}</dd></div>
              <div><dt>Pressure</dt><dd>{o ? `${Math.round(o.pressure)} hPa` : "–"}</dd></div>
              <div><dt>Observed</dt><dd data-testid="observed-age">{localDate(o?.observed_at, offset)} {localTime(o?.observed_at, offset)} ({ago(observedAge)})</dd></div>
            </dl>
          </div>

          <div className="card">
            <div className="card-title-row">
              <h2>Temperature</h2>
              <div className="controls">
                <RunPicker regionId={regionId} hours={hours} value={runAt} onChange={setRunAt} refreshMs={refreshMs} offset={offset} />
                <label className="select-label">
                  History
                  <select value={hours} onChange={(e) => setHours(Number(e.target.value))}>
                    {WINDOWS.map((h) => (
                      <option key={h} value={h}>
                        {h < 72 ? `${h} hours` : `${h / 24} days`}
                      </option>
                    ))}
                  </select>
                </label>
              </div>
            </div>
            {observations.length === 0 ? (
              <Empty title="No observations in this window." />
            ) : (
              <TemperatureChart regionName={r.region_name} observations={observations} forecast={points}
                past={picked ? picked.points : null} units={units} offset={offset} />
            )}
            {picked && <RunVerdict run={picked} units={units} />}
            <p className="hint" data-testid="forecast-note">
              {data.forecast?.model_run_at
                ? `Forecast: ${points.length} hourly points from the run at ${localDate(data.forecast.model_run_at, offset)} ${localTime(data.forecast.model_run_at, offset)}` +
                  (served ? ` · ${served}` : "") + "."
                : "No forecast yet: the streaming job asks the forecasting API once a region has enough history."}{" "}
              Drag across a chart to zoom in on a time; double-click to zoom out.
            </p>
            {data.forecast?.model && data.forecast.model !== "prophet" && data.forecast.model !== "blend" && (
              <p className="state state-warning" data-testid="baseline-label">
                The forecast shown is a baseline ({served?.replace(/^Baseline: /, "")}), not the model: the region has too little history yet, or the baseline has done better lately.
              </p>
            )}
          </div>

          <HistoryPanel regionId={regionId} units={units} refreshMs={refreshMs} />

          <div className="card">
            <h2>Humidity, wind and pressure</h2>
            {data.observations.length === 0 ? (
              <Empty title="No observations in this window." />
            ) : (
              <ConditionCharts observations={data.observations} units={units} offset={offset} />
            )}
          </div>

          <div className="card">
            <h2>Hourly statistics</h2>
            {data.hourly.length === 0 ? (
              <Empty title="No hourly statistics in this window yet." />
            ) : (
              <HourlyTable rows={data.hourly} units={units} offset={offset} />
            )}
          </div>
        </>
      )}
    </section>
  );
}
