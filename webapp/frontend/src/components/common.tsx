import type { Freshness } from "../api";
import { ago } from "../format";

const FRESHNESS_TEXT: Record<Freshness, string> = { fresh: "Fresh", late: "Late", silent: "Silent" };

export function FreshnessBadge({ freshness, ageSeconds }: { freshness: Freshness; ageSeconds?: number | null }) {
  const label = `Data ${FRESHNESS_TEXT[freshness].toLowerCase()}${ageSeconds !== undefined ? `, last seen ${ago(ageSeconds)}` : ""}`;
  return (
    <span className={`badge badge-${freshness}`} data-testid="freshness-badge" data-freshness={freshness} title={label} aria-label={label}>
      <span className="badge-dot" aria-hidden="true" />
      {FRESHNESS_TEXT[freshness]}
    </span>
  );
}

/** The weather pages' badge: the arrival freshness, except that an observation older than the silent
 * threshold is never badged fresh, however recently it arrived (a back-fill replaying history). */
export function ObservationBadge({ freshness, ageSeconds, old, backfilled }: {
  freshness: Freshness; ageSeconds: number | null; old: boolean; backfilled: boolean;
}) {
  if (!old || freshness !== "fresh") return <FreshnessBadge freshness={freshness} ageSeconds={ageSeconds} />;
  return (
    <span className="badge badge-old" data-testid="freshness-badge" data-freshness={freshness}
          title="Arriving now, but the observation itself is old (history being replayed)">
      <span className="badge-dot" aria-hidden="true" />
      {backfilled ? "Back-filled" : "Old data"}
    </span>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite" data-testid="loading">
      <span className="spinner" aria-hidden="true" />
      Loading {what}…
    </div>
  );
}

export function ErrorBanner({ message, retrySeconds, stale }: { message: string; retrySeconds: number; stale: boolean }) {
  return (
    <div className="state state-error" role="alert" data-testid="error">
      <strong>{stale ? "Showing the last data received." : "Cannot load the data."}</strong> {message}. Retrying every{" "}
      {retrySeconds} s.
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: React.ReactNode }) {
  return (
    <div className="state state-empty" data-testid="empty">
      <strong>{title}</strong>
      {children && <div>{children}</div>}
    </div>
  );
}

export function SourceErrors({ errors }: { errors: Record<string, string> }) {
  const entries = Object.entries(errors ?? {});
  if (entries.length === 0) return null;
  return (
    <div className="state state-warning" role="status">
      <strong>Some data is unavailable:</strong>{" "}
      {entries.map(([k, v]) => (
        <span key={k}>
          {k}: {v}.{" "}
        </span>
      ))}
    </div>
  );
}

/** Small bar chart of counts (arrivals per 5 minutes), labelled for screen readers. */
export function Sparkline({ values, label, width = 120, height = 28 }: { values: number[]; label: string; width?: number; height?: number }) {
  const max = Math.max(1, ...values);
  const barW = values.length ? width / values.length : width;
  return (
    <svg width={width} height={height} role="img" aria-label={label} className="sparkline">
      <title>{label}</title>
      <line x1={0} y1={height - 0.5} x2={width} y2={height - 0.5} stroke="#cbd5e1" />
      {values.map((v, i) => {
        const h = v === 0 ? 0 : Math.max(2, (v / max) * (height - 2));
        return <rect key={i} x={i * barW + 1} y={height - h} width={Math.max(1, barW - 2)} height={h} rx={1} fill="#2563eb" />;
      })}
    </svg>
  );
}
