import { describe, expect, it } from "vitest";
import { align, formatDelta, modelLabel, nearestValue, nextPoints, observationState, precipitation, projection, ringPath, skillText, temperatureColour } from "./weather";

describe("align", () => {
  it("puts several series on the union of their times, null where one has no value", () => {
    const data = align([
      { points: [{ t: 2000, v: 1 }, { t: 1000, v: 0 }] },
      { points: [{ t: 3000, v: 5 }, { t: 2000, v: null }] },
    ]);
    expect(data).toEqual([[1, 2, 3], [0, 1, null], [null, null, 5]]);
  });
});

describe("precipitation", () => {
  it("is null when no observation carries rain_1h or snow_1h (older observations, older APIs)", () => {
    expect(precipitation([{ observed_at: "2026-01-01T00:00:00Z" }])).toBeNull();
  });
  it("reads the optional fields when present, null elsewhere", () => {
    const p = precipitation([
      { observed_at: "2026-01-01T00:00:00Z" },
      { observed_at: "2026-01-01T01:00:00Z", rain_1h: 0.4 } as { observed_at: string },
    ]);
    expect(p?.rain.points.map((x) => x.v)).toEqual([null, 0.4]);
    expect(p?.snow.points.map((x) => x.v)).toEqual([null, null]);
  });
});

describe("nextPoints", () => {
  it("keeps the first n points after the latest observation", () => {
    const pts = [0, 1, 2, 3].map((h) => ({ target_time: `2026-01-01T0${h}:00:00Z` }));
    expect(nextPoints(pts, "2026-01-01T00:30:00Z", 2).map((p) => p.target_time)).toEqual(["2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"]);
    expect(nextPoints(pts, null, 10)).toHaveLength(4);
  });
});

describe("projection", () => {
  it("fits the outline to the width, north up, keeping the aspect of the latitude", () => {
    const ring = [[-17, 12], [-11, 12], [-11, 17], [-17, 17], [-17, 12]];
    const p = projection([ring], 612, 6);
    expect(p.project(-17, 17)).toEqual([6, 6]);
    const [x, y] = p.project(-11, 12);
    expect(x).toBeCloseTo(606);
    expect(y).toBeCloseTo(p.height - 6, 0);
    // 6 degrees of longitude at ~14.5°N are ~5.8 degrees of latitude wide: wider than the 5 tall.
    expect(p.height).toBeLessThan(612);
    expect(ringPath(ring, p)).toMatch(/^M6\.0,\d+\.\dL606\.0,\d+\.\dL606\.0,6\.0L6\.0,6\.0L.*Z$/);
  });
});

describe("temperatureColour", () => {
  it("goes from blue to red and is grey when unknown", () => {
    expect(temperatureColour(10)).toBe("rgb(37,99,235)");
    expect(temperatureColour(50)).toBe("rgb(185,28,28)");
    expect(temperatureColour(27)).toBe("rgb(134,188,51)");
    expect(temperatureColour(null)).toBe("#94a3b8");
  });
});

describe("skillText", () => {
  it("says better or worse than the best baseline", () => {
    expect(skillText(0.123)).toBe("12% better than the best baseline");
    expect(skillText(-0.08)).toBe("8% worse than the best baseline");
    expect(skillText(null)).toBe("not measured yet");
  });
});

describe("observationState", () => {
  it("calls an observation older than the silent threshold old, whenever it arrived", () => {
    expect(observationState(120, 3600)).toBe("current");
    expect(observationState(3 * 86400, 3600)).toBe("old");
    expect(observationState(null, 3600)).toBe("none");
  });
});

describe("modelLabel", () => {
  it("labels the baselines as such", () => {
    expect(modelLabel("persistence")).toMatch(/^Baseline/);
    expect(modelLabel("climatology")).toMatch(/^Baseline/);
    expect(modelLabel("prophet")).toBe("Prophet model");
    expect(modelLabel(null)).toBeNull();
  });
});

describe("formatDelta", () => {
  it("converts a difference without the 32 °F offset", () => {
    expect(formatDelta(1.25, "C")).toBe("1.3 °C");
    expect(formatDelta(1, "F")).toBe("1.8 °F");
    expect(formatDelta(null, "C")).toBe("–");
  });
});

describe("nearestValue", () => {
  it("finds the nearest known value within the gap, or null", () => {
    const xs = [0, 600, 1800, 3600, 9000];
    const ys = [10, null, 12, null, 20];
    expect(nearestValue(xs, ys, 0, 900)).toBe(10);
    expect(nearestValue(xs, ys, 1, 900)).toBe(10); // 600 s back beats 1200 s ahead
    expect(nearestValue(xs, ys, 3, 1800)).toBe(12);
    expect(nearestValue(xs, ys, 3, 900)).toBeNull();
  });
});
