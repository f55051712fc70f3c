import { useState } from "react";
import type { HourlyStat, RegionResponse } from "../api";
import { Empty, ErrorBanner, FreshnessBadge, Loading, SourceErrors } from "../components/common";
import { TempChart } from "../components/TempChart";
import type { Units } from "../format";
import { ago, compass, formatDuration, formatTemp, formatWind, localDate, localTime } from "../format";
import { usePolling } from "../hooks";
import { WeatherIcon } from "../icons";

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

export function RegionPage({ regionId, units, refreshMs }: { regionId: string; units: Units; refreshMs: number }) {
  const [hours, setHours] = useState(48);
  const url = `/api/regions/${encodeURIComponent(regionId)}?hours=${hours}`;
  const { data, error, loading } = usePolling<RegionResponse>(url, refreshMs);
  const notFound = error?.startsWith("404");
  const r = data?.region;
  const o = r?.latest;
  const offset = o?.timezone_offset ?? 0;
  const points = data?.forecast?.points ?? [];
  return (
    <section aria-labelledby="page-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <a href="#/">Overview</a> <span aria-hidden="true">›</span> <span aria-current="page">{r?.region_name ?? regionId}</span>
      </nav>
      <div className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {r?.region_name ?? regionId}
        </h1>
        {r && <FreshnessBadge freshness={r.freshness} ageSeconds={r.age_seconds} />}
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
              <div><dt>Observed</dt><dd>{localDate(o?.observed_at, offset)} {localTime(o?.observed_at, offset)}</dd></div>
              <div><dt>Last seen</dt><dd>{ago(r.age_seconds)} (lag {formatDuration(r.lag_seconds)})</dd></div>
            </dl>
          </div>

          <div className="card">
            <div className="card-title-row">
              <h2>Temperature</h2>
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
            {data.observations.length === 0 ? (
              <Empty title="No observations in this window." />
            ) : (
              <TempChart
                regionName={r.region_name}
                observations={data.observations}
                forecast={points}
                units={units}
                offsetSeconds={offset}
                windowStart={data.window.start}
              />
            )}
            <p className="hint" data-testid="forecast-note">
              {data.forecast?.model_run_at
                ? `Forecast: ${points.length} hourly points from the model run at ${localDate(data.forecast.model_run_at, offset)} ${localTime(data.forecast.model_run_at, offset)}` +
                  (points.length ? `, ${formatTemp(Math.min(...points.map((p) => p.yhat)), units)} to ${formatTemp(Math.max(...points.map((p) => p.yhat)), units)}.` : ".")
                : "No forecast yet: the streaming job asks the forecasting API once a region has enough history."}
            </p>
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
