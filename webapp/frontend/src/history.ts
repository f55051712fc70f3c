// Pure shaping for the history views: the region page's daily chart, the overview cards' yesterday
// and rain chance, the quality page's rain model section. Unit-tested with Vitest (history.test.ts).

import type { DailyStat, RainChance, RainModel, RainResponse } from "./api";
import type { Units } from "./format";
import { toUnits } from "./format";
import type { Aligned } from "./weather";

export const HISTORY_WINDOWS = [
  { value: "7d", label: "7 d" },
  { value: "30d", label: "30 d" },
  { value: "1y", label: "1 y" },
] as const;
export type HistoryWindowValue = (typeof HISTORY_WINDOWS)[number]["value"];

const DAY_SECONDS = 86_400;

/** uPlot data of daily stats: x = the UTC day's start (epoch s), then min, mean, max (in units) and precipitation (mm).
 * A day without statistics between two that have them gets a row of nulls, so the lines break there
 * instead of drawing a straight line across the missing days. */
export function dailySeries(days: DailyStat[], units: Units): Aligned {
  const sorted = [...days].sort((a, b) => a.day.localeCompare(b.day));
  const xs: number[] = [];
  const rows: (DailyStat | null)[] = [];
  for (const d of sorted) {
    const x = Date.parse(`${d.day}T00:00:00Z`) / 1000;
    const previous = xs.length ? xs[xs.length - 1] : null;
    for (let t = previous === null ? x : previous + DAY_SECONDS; t < x; t += DAY_SECONDS) {
      xs.push(t);
      rows.push(null);
    }
    xs.push(x);
    rows.push(d);
  }
  return [
    xs,
    rows.map((d) => (d ? toUnits(d.temp_min, units) : null)),
    rows.map((d) => (d ? toUnits(d.temp_mean, units) : null)),
    rows.map((d) => (d ? toUnits(d.temp_max, units) : null)),
    rows.map((d) => (d ? d.precipitation_mm : null)),
  ];
}

/** A precipitation total as people read it: "0 mm", "0.4 mm", "12 mm". */
export function formatMm(mm: number | null | undefined): string {
  if (mm === null || mm === undefined || !Number.isFinite(mm)) return "–";
  if (mm === 0) return "0 mm";
  return mm < 10 ? `${mm.toFixed(1)} mm` : `${Math.round(mm)} mm`;
}

/** A probability 0-1 as a percentage; tiny and near-certain chances do not round to 0 % / 100 %. */
export function formatChance(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return "–";
  if (p > 0 && p < 0.01) return "<1 %";
  if (p < 1 && p > 0.99) return ">99 %";
  return `${Math.round(p * 100)} %`;
}

/** Lookup of a list by region id (yesterday's stats, rain chances). */
export function byRegion<T extends { region_id: string }>(rows: T[] | null | undefined): Map<string, T> {
  return new Map((rows ?? []).map((r) => [r.region_id, r]));
}

/** A region's rain chance to show, or null: none when no model was selected (nothing is served) or the region has no prediction. */
export function rainChanceOf(rain: RainResponse | null | undefined, regionId: string): RainChance | null {
  if (!rain || !rain.models.some((m) => m.selected)) return null;
  return rain.predictions.find((p) => p.region_id === regionId) ?? null;
}

const MODEL_NAMES: Record<string, string> = { decision_tree: "Decision tree", gbt: "Gradient-boosted trees" };

export function rainModelName(model: string): string {
  return MODEL_NAMES[model] ?? model;
}

/** The confusion matrix as labelled cells, with each cell's share of the hold-out. */
export function confusionCells(m: Pick<RainModel, "confusion">): { label: string; count: number; share: number }[] {
  const [[tn, fp], [fn, tp]] = m.confusion;
  const total = tn + fp + fn + tp;
  return [
    { label: "Dry, predicted dry", count: tn },
    { label: "Dry, predicted rain", count: fp },
    { label: "Rain, predicted dry", count: fn },
    { label: "Rain, predicted rain", count: tp },
  ].map((c) => ({ ...c, share: total ? c.count / total : 0 }));
}

/** AUC with 3 digits; "–" when the hold-out had one class only. */
export function formatAuc(auc: number | null | undefined): string {
  return auc === null || auc === undefined || !Number.isFinite(auc) ? "–" : auc.toFixed(3);
}
