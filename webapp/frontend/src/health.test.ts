import { describe, expect, it } from "vitest";
import type { ConsumerHealth, ServiceHealth, StoreHealth } from "./api";
import { describeExit, formatUptime, lagPath, lagSummary, lagTicks, serviceBadge, storeBadge } from "./health";
import { minuteTicks } from "./format";

const sampled = { sampled_at: "2026-03-01T12:00:00Z", sample_age_seconds: 5, stale: false };

function service(state: string | null, extra: Partial<ServiceHealth> = {}): ServiceHealth {
  return { name: "streaming", state, up: state === "up", uptime_seconds: 0, restarts: 0, last_exit_code: null, last_error: null, ...sampled, ...extra };
}

function store(status: StoreHealth["status"], staleness: number | null, extra: Partial<StoreHealth> = {}): StoreHealth {
  return { name: "mongodb", newest_at: null, staleness_seconds: staleness, age_seconds: null, status, ...sampled, ...extra };
}

describe("service badges", () => {
  it("names each supervisor state with its own tone", () => {
    expect(serviceBadge(service("up"))).toMatchObject({ label: "Up", tone: "fresh" });
    expect(serviceBadge(service("backoff"))).toMatchObject({ label: "Backoff", tone: "late" });
    expect(serviceBadge(service("crash-loop"))).toMatchObject({ label: "Crash loop", tone: "silent" });
    expect(serviceBadge(service("held")).description).toContain("./run.sh up streaming");
  });
  it("never shows an old sample as the current state", () => {
    const badge = serviceBadge(service("up", { stale: true, sample_age_seconds: 600 }));
    expect(badge).toMatchObject({ label: "No recent sample", tone: "neutral" });
    expect(badge.description).toBe("No sample for 10 min; last known state up");
  });
  it("says uptime as people say it", () => {
    expect(formatUptime(42.7)).toBe("42 s");
    expect(formatUptime(725)).toBe("12 min");
    expect(formatUptime(5 * 3600 + 12 * 60 + 5)).toBe("5 h 12 min");
    expect(formatUptime(3 * 86400 + 4 * 3600)).toBe("3 d 4 h");
    expect(formatUptime(null)).toBe("–");
  });
  it("describes exits and signals", () => {
    expect(describeExit(1)).toBe("exit 1");
    expect(describeExit(-9)).toBe("signal SIGKILL");
    expect(describeExit(-40)).toBe("signal 40");
    expect(describeExit(null)).toBeNull();
  });
});

describe("store badges", () => {
  it("grades how far a store is behind Kafka", () => {
    expect(storeBadge(store("in_step", 0)).label).toBe("In step");
    expect(storeBadge(store("behind", 30)).description).toContain("30.0 s older");
    expect(storeBadge(store("far_behind", 600))).toMatchObject({ label: "Far behind", tone: "late" });
    expect(storeBadge(store("unknown", null)).label).toBe("Nothing yet");
    expect(storeBadge(store("far_behind", 600, { stale: true })).label).toBe("No recent sample");
  });
});

describe("lag chart", () => {
  const series = [
    { at: "2026-03-01T11:59:00Z", lag_records: 10, lag_seconds: 4 },
    { at: "2026-03-01T11:59:30Z", lag_records: null, lag_seconds: null },
    { at: "2026-03-01T12:00:00Z", lag_records: 120, lag_seconds: 45.5 },
  ];
  it("scales from zero to a round number above the peak", () => {
    expect(lagTicks(series, "lag_records")).toEqual([0, 100, 200]);
    expect(lagTicks([], "lag_seconds")).toEqual([0, 0.5, 1]);
  });
  it("breaks the line where a bucket has no sample", () => {
    const t0 = Date.parse(series[0].at);
    const path = lagPath(series, "lag_records", (t) => (t - t0) / 1000, (v) => 200 - v);
    expect(path).toBe("M0.0 190.0M60.0 80.0");
  });
  it("summarises for screen readers", () => {
    const c: ConsumerHealth = { name: "shipper", lag_records: 120, lag_seconds: 45.5, partitions: 9, started: true, series, ...sampled };
    expect(lagSummary(c, 30)).toBe("shipper consumer lag over the last 30 minutes: now 120 records and 45.5 s behind; peak 120 records, 45.5 s");
    expect(lagSummary({ ...c, stale: true, sample_age_seconds: 600 }, 30)).toContain("no recent sample (last 10 min ago)");
    expect(lagSummary({ ...c, started: false }, 30)).toContain("starting, nothing processed yet, 120 records waiting");
  });
  it("puts time ticks on round minutes", () => {
    const start = Date.parse("2026-03-01T11:30:10Z");
    const ticks = minuteTicks(start, start + 30 * 60_000, 6);
    expect(ticks.map((t) => new Date(t).toISOString().slice(11, 16))).toEqual(["11:35", "11:40", "11:45", "11:50", "11:55", "12:00"]);
    expect(minuteTicks(start, start + 6 * 3_600_000, 6).length).toBeLessThanOrEqual(6);
  });
});
