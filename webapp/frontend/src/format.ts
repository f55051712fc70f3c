// Pure helpers: units, times, numbers and chart scales. Unit-tested with Vitest.

export type Units = "C" | "F";

export function toUnits(celsius: number, units: Units): number {
  return units === "F" ? (celsius * 9) / 5 + 32 : celsius;
}

export function formatTemp(celsius: number | null | undefined, units: Units, digits = 0): string {
  if (celsius === null || celsius === undefined || Number.isNaN(celsius)) return "–";
  const value = toUnits(celsius, units);
  const shown = value.toFixed(digits);
  return `${shown === "-0" ? "0" : shown}°${units}`;
}

/** Wind in m/s (metric) or mph (with °F). */
export function formatWind(ms: number | null | undefined, units: Units): string {
  if (ms === null || ms === undefined) return "–";
  return units === "F" ? `${(ms * 2.23694).toFixed(1)} mph` : `${ms.toFixed(1)} m/s`;
}

const COMPASS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];

export function compass(deg: number | null | undefined): string {
  if (deg === null || deg === undefined) return "";
  return COMPASS[Math.round((((deg % 360) + 360) % 360) / 45) % 8];
}

/** "just now", "42 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "never";
  const s = Math.max(0, Math.round(seconds));
  if (s < 2) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "–";
  const abs = Math.abs(seconds);
  if (abs < 1) return `${Math.round(seconds * 1000)} ms`;
  if (abs < 120) return `${seconds.toFixed(1)} s`;
  if (abs < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (abs < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** Clock time in the region's local time (offset in seconds from UTC, as OpenWeatherMap gives it). */
export function localTime(iso: string | null | undefined, offsetSeconds = 0, withSeconds = false): string {
  if (!iso) return "–";
  const d = new Date(Date.parse(iso) + offsetSeconds * 1000);
  if (Number.isNaN(d.getTime())) return "–";
  const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return withSeconds ? `${hm}:${pad(d.getUTCSeconds())}` : hm;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function localDate(iso: string | null | undefined, offsetSeconds = 0): string {
  if (!iso) return "–";
  const d = new Date(Date.parse(iso) + offsetSeconds * 1000);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}

export function utcOffsetLabel(offsetSeconds: number | null | undefined): string {
  const s = offsetSeconds ?? 0;
  if (s === 0) return "UTC";
  const sign = s > 0 ? "+" : "-";
  const h = Math.floor(Math.abs(s) / 3600);
  const m = Math.round((Math.abs(s) % 3600) / 60);
  return `UTC${sign}${h}${m ? `:${pad(m)}` : ""}`;
}

export function formatNumber(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

// --- chart scales -------------------------------------------------------------------------

export function linearScale(domain: [number, number], range: [number, number]): (v: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  return (v: number) => r0 + ((v - d0) / span) * (r1 - r0);
}

/** Round tick values covering [lo, hi] with about `count` steps of 1, 2, 2.5 or 5 x 10^n. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const first = Math.floor(lo / step) * step;
  const ticks: number[] = [];
  for (let v = first; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((first + ticks.length * step).toFixed(10)));
  return ticks;
}

/** SVG path "M x y L x y ..." through points; gaps (null y) start a new segment. */
export function linePath(points: { x: number; y: number | null }[]): string {
  let d = "";
  let pen = false;
  for (const p of points) {
    if (p.y === null || !Number.isFinite(p.y)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${p.x.toFixed(1)} ${p.y.toFixed(1)}`;
    pen = true;
  }
  return d;
}

/** Closed band between an upper and a lower line (same x's). */
export function bandPath(points: { x: number; lo: number; hi: number }[]): string {
  if (points.length === 0) return "";
  const top = points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)} ${p.hi.toFixed(1)}`).join("");
  const bottom = [...points]
    .reverse()
    .map((p) => `L${p.x.toFixed(1)} ${p.lo.toFixed(1)}`)
    .join("");
  return `${top}${bottom}Z`;
}

/** Time ticks every `stepHours` aligned on local hours. Returns epoch millis. */
export function timeTicks(startMs: number, endMs: number, offsetSeconds: number, maxTicks = 8): number[] {
  const hours = (endMs - startMs) / 3_600_000;
  const step = [1, 2, 3, 6, 12, 24, 48, 72, 168].find((h) => hours / h <= maxTicks) ?? 168;
  const stepMs = step * 3_600_000;
  const offsetMs = offsetSeconds * 1000;
  let t = Math.ceil((startMs + offsetMs) / stepMs) * stepMs - offsetMs;
  const ticks: number[] = [];
  for (; t <= endMs; t += stepMs) ticks.push(t);
  return ticks;
}

/** Time ticks on round minutes (1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6 h) for windows of minutes to hours. Epoch millis. */
export function minuteTicks(startMs: number, endMs: number, maxTicks = 6): number[] {
  const minutes = (endMs - startMs) / 60_000;
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360].find((m) => minutes / m <= maxTicks) ?? 720;
  const stepMs = step * 60_000;
  const ticks: number[] = [];
  for (let t = Math.ceil(startMs / stepMs) * stepMs; t <= endMs; t += stepMs) ticks.push(t);
  return ticks;
}
