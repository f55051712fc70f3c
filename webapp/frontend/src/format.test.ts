import { describe, expect, it } from "vitest";
import {
  ago, bandPath, compass, formatTemp, formatWind, linePath, linearScale, localTime, niceTicks, timeTicks, toUnits,
  utcOffsetLabel,
} from "./format";

describe("units", () => {
  it("converts Celsius to Fahrenheit", () => {
    expect(toUnits(0, "F")).toBe(32);
    expect(toUnits(100, "F")).toBe(212);
    expect(toUnits(21.5, "C")).toBe(21.5);
  });
  it("formats temperatures and never shows -0", () => {
    expect(formatTemp(27.44, "C")).toBe("27°C");
    expect(formatTemp(27.44, "F", 1)).toBe("81.4°F");
    expect(formatTemp(-0.2, "C")).toBe("0°C");
    expect(formatTemp(null, "C")).toBe("–");
  });
  it("formats wind in m/s or mph", () => {
    expect(formatWind(10, "C")).toBe("10.0 m/s");
    expect(formatWind(10, "F")).toBe("22.4 mph");
  });
  it("names compass directions", () => {
    expect(compass(0)).toBe("N");
    expect(compass(350)).toBe("N");
    expect(compass(225)).toBe("SW");
    expect(compass(null)).toBe("");
  });
});

describe("times", () => {
  it("says how long ago", () => {
    expect(ago(0.5)).toBe("just now");
    expect(ago(42)).toBe("42 s ago");
    expect(ago(180)).toBe("3 min ago");
    expect(ago(7300)).toBe("2 h ago");
    expect(ago(null)).toBe("never");
  });
  it("shows the region's local clock", () => {
    expect(localTime("2026-01-01T23:30:00Z", 3600)).toBe("00:30");
    expect(localTime("2026-01-01T23:30:05Z", 0, true)).toBe("23:30:05");
    expect(utcOffsetLabel(-16200)).toBe("UTC-4:30");
    expect(utcOffsetLabel(0)).toBe("UTC");
  });
  it("aligns time ticks on local hours", () => {
    const start = Date.parse("2026-01-01T00:10:00Z");
    const ticks = timeTicks(start, start + 48 * 3_600_000, 0, 8);
    expect(ticks.length).toBeLessThanOrEqual(8);
    expect(new Date(ticks[0]).getUTCMinutes()).toBe(0);
    expect((ticks[1] - ticks[0]) % 3_600_000).toBe(0);
  });
});

describe("chart geometry", () => {
  it("maps a domain onto a range", () => {
    const y = linearScale([0, 10], [100, 0]);
    expect(y(0)).toBe(100);
    expect(y(5)).toBe(50);
  });
  it("makes round ticks covering the domain", () => {
    const ticks = niceTicks(21.3, 33.8, 5);
    expect(ticks[0]).toBeLessThanOrEqual(21.3);
    expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(33.8);
    expect(ticks).toContain(25);
  });
  it("breaks a line at gaps", () => {
    expect(linePath([{ x: 0, y: 1 }, { x: 1, y: null }, { x: 2, y: 3 }])).toBe("M0.0 1.0M2.0 3.0");
  });
  it("closes a band from upper to lower", () => {
    expect(bandPath([{ x: 0, lo: 1, hi: 2 }, { x: 1, lo: 1, hi: 3 }])).toBe("M0.0 2.0L1.0 3.0L1.0 1.0L0.0 1.0Z");
  });
});
