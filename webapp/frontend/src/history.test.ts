import { describe, expect, it } from "vitest";
import type { DailyStat, RainResponse } from "./api";
import { byRegion, confusionCells, dailySeries, formatAuc, formatChance, formatMm, rainChanceOf } from "./history";

const day = (d: string, over: Partial<DailyStat> = {}): DailyStat => ({
  region_id: "dakar", day: d, temp_min: 20, temp_max: 30, temp_mean: 25, humidity_mean: 60, wind_speed_mean: 3,
  precipitation_mm: 0, precipitation_hours: 0, count: 24, ...over,
});

const rain = (selected: boolean): RainResponse => ({
  generated_at: "2026-06-02T12:00:00Z",
  models: [{ model: "gbt", trained_at: "2026-06-02T01:00:00Z", selected, lead_hours: 3, train_until: "2026-05-25T00:00:00Z",
    train_rows: 900, test_rows: 100, rain_share: 0.2, auc: 0.81, accuracy: 0.86, confusion: [[70, 10], [4, 16]], training_seconds: 2.5 }],
  predictions: [{ region_id: "dakar", from_hour: "2026-06-02T11:00:00Z", lead_hours: 3, probability: 0.42, model: "gbt", predicted_at: "2026-06-02T11:05:00Z" }],
});

describe("dailySeries", () => {
  it("sorts days and puts each on its UTC midnight, temperatures in the chosen units", () => {
    const [xs, min, mean, max, mm] = dailySeries([day("2026-06-02", { precipitation_mm: 4.5 }), day("2026-06-01", { temp_min: 0 })], "F");
    expect(xs).toEqual([Date.UTC(2026, 5, 1) / 1000, Date.UTC(2026, 5, 2) / 1000]);
    expect(min).toEqual([32, 68]);
    expect(mean).toEqual([77, 77]);
    expect(max).toEqual([86, 86]);
    expect(mm).toEqual([0, 4.5]);
  });
  it("puts a row of nulls on each missing day, so the lines break there instead of crossing the gap", () => {
    const [xs, min, mean, max, mm] = dailySeries([day("2026-06-04", { temp_min: 22 }), day("2026-06-01")], "C");
    expect(xs).toEqual([1, 2, 3, 4].map((d) => Date.UTC(2026, 5, d) / 1000));
    expect(min).toEqual([20, null, null, 22]);
    expect(mean).toEqual([25, null, null, 25]);
    expect(max).toEqual([30, null, null, 30]);
    expect(mm).toEqual([0, null, null, 0]);
    expect(dailySeries([], "C")[0]).toEqual([]);
  });
});

describe("formatting", () => {
  it("shows precipitation with a decimal below 10 mm only", () => {
    expect(formatMm(0)).toBe("0 mm");
    expect(formatMm(0.44)).toBe("0.4 mm");
    expect(formatMm(12.6)).toBe("13 mm");
    expect(formatMm(null)).toBe("–");
  });
  it("never rounds a small or near-certain chance to 0 or 100 %", () => {
    expect(formatChance(0.004)).toBe("<1 %");
    expect(formatChance(0.996)).toBe(">99 %");
    expect(formatChance(0)).toBe("0 %");
    expect(formatChance(1)).toBe("100 %");
    expect(formatChance(0.425)).toBe("43 %");
  });
  it("shows no AUC when the hold-out had one class", () => {
    expect(formatAuc(null)).toBe("–");
    expect(formatAuc(0.8126)).toBe("0.813");
  });
});

describe("rain chance and model", () => {
  it("shows a region's chance only when a model is served", () => {
    expect(rainChanceOf(rain(true), "dakar")?.probability).toBe(0.42);
    expect(rainChanceOf(rain(true), "thies")).toBeNull();
    expect(rainChanceOf(rain(false), "dakar")).toBeNull();
    expect(rainChanceOf(null, "dakar")).toBeNull();
  });
  it("labels the confusion matrix cells with their share of the hold-out", () => {
    const cells = confusionCells(rain(true).models[0]);
    expect(cells.map((c) => [c.label, c.count])).toEqual([
      ["Dry, predicted dry", 70], ["Dry, predicted rain", 10], ["Rain, predicted dry", 4], ["Rain, predicted rain", 16],
    ]);
    expect(cells[3].share).toBeCloseTo(0.16);
    expect(confusionCells({ confusion: [[0, 0], [0, 0]] }).every((c) => c.share === 0)).toBe(true);
  });
  it("indexes rows by region", () => {
    expect(byRegion([day("2026-06-01")]).get("dakar")?.day).toBe("2026-06-01");
    expect(byRegion(undefined).size).toBe(0);
  });
});
