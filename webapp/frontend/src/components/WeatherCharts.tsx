// The region page's charts (uPlot): temperature with the served forecast and its band, a past run
// against what happened, then humidity, wind, pressure and (when observed) precipitation, sharing
// one cursor so a time can be read across all of them.
import { useMemo } from "react";
import uPlot from "uplot";
import type { DailyStat, ForecastPoint, Observation, VerifiedPoint } from "../api";
import { dailySeries, formatMm } from "../history";
import type { Units } from "../format";
import { formatTemp, localDate, localTime, toUnits } from "../format";
import { align, nearestValue, precipitation } from "../weather";
import { regionDate, tooltipPlugin, UChart } from "./UChart";

const SYNC = "region";
const COLOURS = { obs: "#1d4ed8", fc: "#0f766e", band: "rgba(15,118,110,0.15)", past: "#7c3aed", pastBand: "rgba(124,58,237,0.12)" };

function when(u: uPlot, idx: number, offset: number): string {
  const iso = new Date(u.data[0][idx] * 1000).toISOString();
  return `${localDate(iso, offset)} ${localTime(iso, offset)}`;
}

function baseOptions(offset: number, yLabel: string, fmt: (v: number) => string): Omit<uPlot.Options, "width" | "height" | "series"> {
  return {
    tzDate: regionDate(offset),
    cursor: { sync: { key: SYNC }, drag: { x: true, y: false, setScale: true }, points: { size: 7 } },
    legend: { show: true, live: false },
    axes: [
      { stroke: "#475569", grid: { stroke: "#e2e8f0" } },
      { stroke: "#475569", grid: { stroke: "#e2e8f0" }, label: yLabel, size: 56, values: (_u, vals) => vals.map(fmt) },
    ],
  };
}

const temps = (pts: { t: number; v: number | null }[], units: Units) => pts.map((p) => ({ t: p.t, v: p.v === null ? null : toUnits(p.v, units) }));

export function TemperatureChart({ regionName, observations, forecast, past, units, offset }: {
  regionName: string;
  observations: Observation[];
  forecast: ForecastPoint[];
  past: VerifiedPoint[] | null;
  units: Units;
  offset: number;
}) {
  const lastObs = observations.length ? Date.parse(observations[observations.length - 1].observed_at) : -Infinity;
  const ahead = forecast.filter((p) => Date.parse(p.target_time) >= lastObs - 3_600_000);
  const fc = (key: "yhat" | "yhat_lower" | "yhat_upper") =>
    ahead.map((p) => ({ t: Date.parse(p.target_time), v: p[key] ?? p.yhat }));
  const pastOf = (key: "yhat" | "yhat_lower" | "yhat_upper") =>
    (past ?? []).map((p) => ({ t: Date.parse(p.target_time), v: p[key] }));
  const data = useMemo(
    () =>
      align([
        { points: temps(observations.map((o) => ({ t: Date.parse(o.observed_at), v: o.temp })), units) },
        { points: temps(fc("yhat"), units) },
        { points: temps(fc("yhat_lower"), units) },
        { points: temps(fc("yhat_upper"), units) },
        { points: temps(pastOf("yhat"), units) },
        { points: temps(pastOf("yhat_lower"), units) },
        { points: temps(pastOf("yhat_upper"), units) },
      ]),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [observations, forecast, past, units],
  );
  const deg = (v: number) => `${v.toFixed(0)}°`;
  // Series are sampled at different times: a tooltip shows each one's nearest value (within 45 min).
  const show = (u: uPlot, s: number, idx: number) => {
    const v = nearestValue(u.data[0], u.data[s], idx, 45 * 60);
    return v === null || v === undefined ? null : `${v.toFixed(1)}°${units}`;
  };
  const options: Omit<uPlot.Options, "width" | "height"> = {
    ...baseOptions(offset, `°${units}`, deg),
    series: [
      {},
      { label: "Observed", stroke: COLOURS.obs, width: 2, spanGaps: true },
      { label: "Forecast", stroke: COLOURS.fc, width: 2, dash: [6, 4], spanGaps: true },
      { label: "Forecast low", class: "u-legend-hidden", stroke: "transparent", show: true, points: { show: false } },
      { label: "Forecast high", class: "u-legend-hidden", stroke: "transparent", show: true, points: { show: false } },
      { label: "Past run", class: past ? undefined : "u-legend-hidden", stroke: COLOURS.past, width: 2, dash: [3, 3], spanGaps: true, show: !!past },
      { label: "Past run low", class: "u-legend-hidden", stroke: "transparent", points: { show: false }, show: !!past },
      { label: "Past run high", class: "u-legend-hidden", stroke: "transparent", points: { show: false }, show: !!past },
    ],
    bands: [
      { series: [4, 3], fill: COLOURS.band },
      { series: [7, 6], fill: COLOURS.pastBand },
    ],
    plugins: [
      tooltipPlugin((u, idx) => {
        const rows = [when(u, idx, offset)];
        const obs = show(u, 1, idx);
        if (obs) rows.push(`Observed ${obs}`);
        const f = show(u, 2, idx);
        if (f) rows.push(`Forecast ${f} (${show(u, 3, idx)} to ${show(u, 4, idx)})`);
        const p = show(u, 5, idx);
        if (p) rows.push(`Past run ${p} (${show(u, 6, idx)} to ${show(u, 7, idx)})`);
        return rows;
      }),
    ],
  };
  const summary =
    `Temperature in ${regionName}: ${observations.length} observations` +
    (observations.length ? `, latest ${formatTemp(observations[observations.length - 1].temp, units, 1)}` : "") +
    (ahead.length ? `; forecast of the next ${ahead.length} hours` : "; no forecast yet") +
    (past ? `; a past run of ${past.length} hours drawn against what happened` : "");
  return (
    <UChart
      options={options}
      optionsKey={`temp-${units}-${offset}-${past ? "past" : "none"}`}
      data={data}
      height={300}
      testId="temp-chart"
      label={summary}
    />
  );
}

type Extra = { key: "humidity" | "wind_speed" | "pressure"; label: string; unit: (u: Units) => string; convert: (v: number, u: Units) => number; colour: string };

const EXTRAS: Extra[] = [
  { key: "humidity", label: "Humidity", unit: () => "%", convert: (v) => v, colour: "#0891b2" },
  { key: "wind_speed", label: "Wind", unit: (u) => (u === "F" ? "mph" : "m/s"), convert: (v, u) => (u === "F" ? v * 2.23694 : v), colour: "#65a30d" },
  { key: "pressure", label: "Pressure", unit: () => "hPa", convert: (v) => v, colour: "#9333ea" },
];

function SmallChart({ title, testId, unit, offset, data, series, optionsKey, digits = 0 }: {
  title: string; testId: string; unit: string; offset: number; data: uPlot.AlignedData;
  series: uPlot.Series[]; optionsKey: string; digits?: number;
}) {
  const options: Omit<uPlot.Options, "width" | "height"> = {
    ...baseOptions(offset, unit, (v) => v.toFixed(digits)),
    series: [{}, ...series],
    plugins: [
      tooltipPlugin((u, idx) => [
        when(u, idx, offset),
        ...series.map((s, i) => {
          const v = u.data[i + 1][idx];
          return `${s.label} ${v === null || v === undefined ? "–" : `${v.toFixed(digits === 0 ? 1 : digits)} ${unit}`}`;
        }),
      ]),
    ],
  };
  return (
    <div className="small-chart">
      <h3>{title}</h3>
      <UChart options={options} optionsKey={optionsKey} data={data} height={150} testId={testId} label={`${title} over the window, in ${unit}`} />
    </div>
  );
}

export function ConditionCharts({ observations, units, offset }: { observations: Observation[]; units: Units; offset: number }) {
  const precip = precipitation(observations);
  return (
    <div className="small-charts" data-testid="condition-charts">
      {EXTRAS.map((e) => (
        <SmallChart
          key={e.key}
          title={e.label}
          testId={`chart-${e.key}`}
          unit={e.unit(units)}
          offset={offset}
          optionsKey={`${e.key}-${units}-${offset}`}
          data={align([{ points: observations.map((o) => ({ t: Date.parse(o.observed_at), v: o[e.key] === null ? null : e.convert(o[e.key], units) })) }])}
          series={[{ label: e.label, stroke: e.colour, width: 2, spanGaps: true }]}
          digits={e.key === "wind_speed" ? 1 : 0}
        />
      ))}
      {precip && (
        <SmallChart
          title="Precipitation"
          testId="chart-precipitation"
          unit="mm/h"
          offset={offset}
          optionsKey={`precip-${offset}`}
          data={align([precip.rain, precip.snow])}
          series={[
            { label: "Rain", stroke: "#2563eb", fill: "rgba(37,99,235,0.25)", width: 1 },
            { label: "Snow", stroke: "#64748b", fill: "rgba(100,116,139,0.25)", width: 1 },
          ]}
          digits={1}
        />
      )}
    </div>
  );
}


/** Daily min / mean / max temperature over UTC days, with each day's precipitation total as bars on a second axis. */
export function DailyHistoryChart({ days, units, window }: { days: DailyStat[]; units: Units; window: string }) {
  const data = useMemo(() => dailySeries(days, units), [days, units]);
  const deg = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${v.toFixed(1)}°${units}`);
  const options: Omit<uPlot.Options, "width" | "height"> = {
    tzDate: regionDate(0),
    cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 7 } },
    legend: { show: true, live: false },
    scales: { mm: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [
      { stroke: "#475569", grid: { stroke: "#e2e8f0" } },
      { stroke: "#475569", grid: { stroke: "#e2e8f0" }, label: `°${units}`, size: 56, values: (_u, vals) => vals.map((v) => `${v.toFixed(0)}°`) },
      { scale: "mm", side: 1, stroke: "#2563eb", grid: { show: false }, label: "mm", size: 48, values: (_u, vals) => vals.map((v) => v.toFixed(0)) },
    ],
    series: [
      {},
      // Missing days are null rows (dailySeries): a gap in the lines, not a line across them.
      { label: "Min", stroke: "#2563eb", width: 2, spanGaps: false },
      { label: "Mean", stroke: "#0f766e", width: 2, dash: [6, 4], spanGaps: false },
      { label: "Max", stroke: "#dc2626", width: 2, spanGaps: false },
      { label: "Precipitation", scale: "mm", stroke: "#2563eb", fill: "rgba(37,99,235,0.25)", width: 1,
        paths: uPlot.paths.bars?.({ size: [0.6, 24] }), points: { show: false } },
    ],
    plugins: [
      tooltipPlugin((u, idx) => [
        new Date(u.data[0][idx] * 1000).toISOString().slice(0, 10),
        `Min ${deg(u.data[1][idx])} · mean ${deg(u.data[2][idx])} · max ${deg(u.data[3][idx])}`,
        `Precipitation ${formatMm(u.data[4][idx])}`,
      ]),
    ],
  };
  return (
    <UChart options={options} optionsKey={`daily-${units}-${window}`} data={data} height={240} testId="history-chart"
      label={`Daily temperature range and precipitation over ${days.length} days (UTC days)`} />
  );
}
