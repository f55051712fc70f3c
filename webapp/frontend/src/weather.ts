// Pure shaping for the weather pages' charts and map: aligned series for uPlot, optional
// precipitation, the map's projection and colours. Unit-tested with Vitest (weather.test.ts).

import type { Freshness } from "./api";
import type { Units } from "./format";

/** uPlot's data: x (epoch seconds) first, then one array per series, null where a series has no value. */
export type Aligned = [number[], ...(number | null)[][]];

export interface TimedSeries {
  /** epoch milliseconds -> value */
  points: { t: number; v: number | null }[];
}

/** Several series on one time axis (the union of their times, sorted), as uPlot wants them. */
export function align(series: TimedSeries[]): Aligned {
  const times = Array.from(new Set(series.flatMap((s) => s.points.map((p) => p.t)))).sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const col: (number | null)[] = new Array(times.length).fill(null);
    for (const p of s.points) col[index.get(p.t)!] = p.v;
    return col;
  });
  return [times.map((t) => t / 1000), ...columns];
}

/** Precipitation (mm over the last hour) when observations carry it: rain_1h and snow_1h are
 * optional fields, absent from older observations and older APIs. null: no observation has any. */
export function precipitation(observations: { observed_at: string }[]): { rain: TimedSeries; snow: TimedSeries } | null {
  let any = false;
  const value = (o: object, key: "rain_1h" | "snow_1h"): number | null => {
    const v = (o as Record<string, unknown>)[key];
    if (typeof v === "number" && Number.isFinite(v)) {
      any = true;
      return v;
    }
    return null;
  };
  const rain = observations.map((o) => ({ t: Date.parse(o.observed_at), v: value(o, "rain_1h") }));
  const snow = observations.map((o) => ({ t: Date.parse(o.observed_at), v: value(o, "snow_1h") }));
  return any ? { rain: { points: rain }, snow: { points: snow } } : null;
}

/** Where the next hours' strip starts: the first `n` points after `afterIso`. */
export function nextPoints<T extends { target_time: string }>(points: T[], afterIso: string | null | undefined, n: number): T[] {
  const after = afterIso ? Date.parse(afterIso) : -Infinity;
  return points.filter((p) => Date.parse(p.target_time) > after).slice(0, n);
}

// --- the map: an equirectangular projection, corrected for latitude, of a GeoJSON outline ---------
export interface Projection {
  project: (lon: number, lat: number) => [number, number];
  width: number;
  height: number;
}

export function projection(rings: number[][][], width: number, pad = 12): Projection {
  const lons = rings.flat().map((p) => p[0]);
  const lats = rings.flat().map((p) => p[1]);
  const [lon0, lon1, lat0, lat1] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  const k = Math.cos((((lat0 + lat1) / 2) * Math.PI) / 180); // a degree of longitude is shorter than one of latitude
  const scale = (width - 2 * pad) / ((lon1 - lon0) * k);
  const height = Math.round((lat1 - lat0) * scale + 2 * pad);
  return {
    width,
    height,
    project: (lon, lat) => [pad + (lon - lon0) * k * scale, pad + (lat1 - lat) * scale],
  };
}

export function ringPath(ring: number[][], p: Projection): string {
  return ring.map(([lon, lat], i) => `${i ? "L" : "M"}${p.project(lon, lat).map((v) => v.toFixed(1)).join(",")}`).join("") + "Z";
}

const FRESHNESS_COLOUR: Record<Freshness, string> = { fresh: "#16a34a", late: "#d97706", silent: "#dc2626" };

export function freshnessColour(f: Freshness): string {
  return FRESHNESS_COLOUR[f];
}

// Blue (cool) to red (hot) through yellow, for the temperatures of West Africa (15 to 40 °C).
const TEMP_STOPS: [number, [number, number, number]][] = [
  [15, [37, 99, 235]], [24, [34, 197, 94]], [30, [234, 179, 8]], [36, [234, 88, 12]], [42, [185, 28, 28]],
];

export function temperatureColour(celsius: number | null | undefined): string {
  if (celsius === null || celsius === undefined || !Number.isFinite(celsius)) return "#94a3b8";
  const c = Math.min(TEMP_STOPS[TEMP_STOPS.length - 1][0], Math.max(TEMP_STOPS[0][0], celsius));
  let i = 0;
  while (i < TEMP_STOPS.length - 2 && c > TEMP_STOPS[i + 1][0]) i++;
  const [[t0, a], [t1, b]] = [TEMP_STOPS[i], TEMP_STOPS[i + 1]];
  const f = (c - t0) / (t1 - t0);
  const rgb = a.map((v, j) => Math.round(v + (b[j] - v) * f));
  return `rgb(${rgb.join(",")})`;
}

/** Skill as people read it: "12% better than the best baseline" / "8% worse". */
export function skillText(skill: number | null | undefined): string {
  if (skill === null || skill === undefined) return "not measured yet";
  const pct = Math.round(Math.abs(skill) * 100);
  if (pct === 0) return "as good as the best baseline";
  return `${pct}% ${skill > 0 ? "better" : "worse"} than the best baseline`;
}

/** What a card says of its observation: "current", or "old" once the observation itself is older
 * than the silent threshold, however recently it arrived (a back-fill replaying history). An old
 * observation is never badged fresh. */
export function observationState(ageSeconds: number | null | undefined, silentAfterSeconds: number): "current" | "old" | "none" {
  if (ageSeconds === null || ageSeconds === undefined) return "none";
  return ageSeconds > silentAfterSeconds ? "old" : "current";
}

const MODEL_LABEL: Record<string, string> = {
  prophet: "Prophet model",
  blend: "Prophet blended with baselines",
  persistence: "Baseline: persistence (last observed value)",
  climatology: "Baseline: same hour yesterday",
};

/** The served forecast's name; the baselines say they are baselines. */
export function modelLabel(model: string | null | undefined): string | null {
  return model ? (MODEL_LABEL[model] ?? model) : null;
}

/** A temperature difference (an error, a bias) in the chosen units: no 32 °F offset. */
export function formatDelta(celsius: number | null | undefined, units: Units, digits = 1): string {
  if (celsius === null || celsius === undefined || !Number.isFinite(celsius)) return "–";
  return `${(units === "F" ? celsius * 1.8 : celsius).toFixed(digits)} °${units}`;
}

/** The value of series `ys` nearest to x index `idx` within `maxGap` (seconds), for a tooltip:
 * series sampled at other times (observations at :17, forecasts on the hour) still show a value. */
export function nearestValue(xs: ArrayLike<number>, ys: ArrayLike<number | null | undefined>, idx: number, maxGap: number): number | null {
  const at = xs[idx];
  let best: number | null = null;
  let gap = Infinity;
  for (const step of [1, -1]) {
    for (let i = idx; i >= 0 && i < xs.length && Math.abs(xs[i] - at) <= maxGap; i += step) {
      const v = ys[i];
      if (v !== null && v !== undefined) {
        if (Math.abs(xs[i] - at) < gap) {
          gap = Math.abs(xs[i] - at);
          best = v;
        }
        break;
      }
    }
  }
  return best;
}
