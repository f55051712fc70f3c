// Pure helpers of the pipeline-health panels (GET /api/health): badges and lag-chart geometry.
// Unit-tested with Vitest.

import type { ConsumerHealth, LagPoint, ServiceHealth, StoreHealth } from "./api";
import { ago, formatDuration, formatNumber, linePath, niceTicks } from "./format";

/** The badge classes of styles.css: green, amber, red, grey. */
export type Tone = "fresh" | "late" | "silent" | "neutral";

export interface Badge {
  label: string;
  tone: Tone;
  /** what the badge means, for its title and screen readers */
  description: string;
}

const NO_SAMPLE: Badge = { label: "No recent sample", tone: "neutral", description: "" };

export function serviceBadge(s: ServiceHealth): Badge {
  if (s.stale) {
    return { ...NO_SAMPLE, description: `No sample for ${ago(s.sample_age_seconds).replace(" ago", "")}; last known state ${s.state ?? "unknown"}` };
  }
  switch (s.state) {
    case "up":
      return { label: "Up", tone: "fresh", description: "Running" };
    case "backoff":
      return { label: "Backoff", tone: "late", description: "Exited; ./run.sh restarts it after a growing delay" };
    case "crash-loop":
      return { label: "Crash loop", tone: "silent", description: "Keeps exiting; ./run.sh retries it every few minutes" };
    case "held":
      return { label: "Held", tone: "neutral", description: `Stopped with ./run.sh down; ./run.sh up ${s.name} starts it` };
    default:
      return { label: s.state ?? "Unknown", tone: "neutral", description: "State not known" };
  }
}

/** `exit 1`, `signal SIGTERM` (negative codes are signals, as the supervisor records them). */
const SIGNALS: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM" };

export function describeExit(code: number | null): string | null {
  if (code === null) return null;
  return code < 0 ? `signal ${SIGNALS[-code] ?? -code}` : `exit ${code}`;
}

export function storeBadge(s: StoreHealth): Badge {
  if (s.stale) return { ...NO_SAMPLE, description: "No recent sample of this store" };
  switch (s.status) {
    case "reference":
      return { label: "Reference", tone: "neutral", description: "The other stores are measured against Kafka's newest record" };
    case "in_step":
      return { label: "In step", tone: "fresh", description: "Has Kafka's newest record" };
    case "behind":
      return { label: "Behind", tone: "neutral", description: `Its newest record is ${formatDuration(s.staleness_seconds)} older than Kafka's` };
    case "far_behind":
      return { label: "Far behind", tone: "late", description: `Its newest record is ${formatDuration(s.staleness_seconds)} older than Kafka's, longer than the late threshold` };
    default:
      return { label: "Nothing yet", tone: "neutral", description: "It or Kafka holds no record yet" };
  }
}

export type LagKey = "lag_records" | "lag_seconds";

/** Y ticks of one lag panel: round numbers from 0 covering the series (at least 0..1). */
export function lagTicks(series: LagPoint[], key: LagKey): number[] {
  const values = series.map((p) => p[key]).filter((v): v is number => v !== null);
  return niceTicks(0, Math.max(1, ...values), 2);
}

/** SVG path of one lag series; a bucket without a sample breaks the line. */
export function lagPath(series: LagPoint[], key: LagKey, x: (t: number) => number, y: (v: number) => number): string {
  return linePath(series.map((p) => ({ x: x(Date.parse(p.at)), y: p[key] === null ? null : y(p[key] as number) })));
}

/** One sentence a screen reader says for a consumer's chart. */
export function lagSummary(c: ConsumerHealth, windowMinutes: number): string {
  const values = (key: LagKey) => c.series.map((p) => p[key]).filter((v): v is number => v !== null);
  const peakRecords = Math.max(0, ...values("lag_records"));
  const peakSeconds = Math.max(0, ...values("lag_seconds"));
  const now = c.stale
    ? `no recent sample (last ${ago(c.sample_age_seconds)})`
    : c.started === false
      ? `starting, nothing processed yet, ${formatNumber(c.lag_records)} records waiting`
      : `now ${formatNumber(c.lag_records)} records and ${formatDuration(c.lag_seconds)} behind`;
  return `${c.name} consumer lag over the last ${windowMinutes} minutes: ${now}; peak ${formatNumber(peakRecords)} records, ${formatDuration(peakSeconds)}`;
}

/** Uptime as people say it: "42 s", "12 min", "5 h 12 min", "3 d 4 h". */
export function formatUptime(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
