import type { Alert, StatusResponse, StreamingBatch } from "../api";
import { Empty, ErrorBanner, FreshnessBadge, Loading, Sparkline } from "../components/common";
import { PipelineSelfCheck } from "../components/HealthPanels";
import { ago, formatDuration, formatNumber, localDate, localTime } from "../format";
import { usePolling } from "../hooks";
import { incidentHref } from "../incidents";

function Tile({ label, value, tone, testid }: { label: string; value: React.ReactNode; tone?: string; testid?: string }) {
  return (
    <div className={`tile ${tone ? `tile-${tone}` : ""}`} data-testid={testid}>
      <div className="tile-value">{value}</div>
      <div className="tile-label">{label}</div>
    </div>
  );
}

function SectionError({ message }: { message?: string }) {
  return message ? (
    <p className="state state-warning" role="status">
      Unavailable: {message}
    </p>
  ) : null;
}

function ThroughputChart({ batches }: { batches: StreamingBatch[] }) {
  const series = [...batches].reverse();
  const values = series.map((b) => b.rows_per_second ?? 0);
  const max = Math.max(1, ...values);
  const w = 560;
  const h = 120;
  // At least 20 slots, newest on the right, so a few batches do not become slabs.
  const slots = Math.max(values.length, 20);
  const barW = w / slots;
  const x0 = (slots - values.length) * barW;
  return (
    <svg viewBox={`0 0 ${w} ${h + 18}`} className="throughput" role="img" aria-label={`Rows per second over the last ${values.length} streaming batches, up to ${formatNumber(max, 1)}`} data-testid="throughput-chart">
      <line x1={0} x2={w} y1={h + 0.5} y2={h + 0.5} stroke="#94a3b8" />
      {values.map((v, i) => {
        const bh = (v / max) * (h - 20);
        return (
          <g key={i}>
            <rect x={x0 + i * barW + 2} y={h - bh} width={Math.max(2, barW - 4)} height={bh} rx={2} fill="#2563eb" />
          </g>
        );
      })}
      <text x={0} y={h + 15} className="axis-label">← older</text>
      <text x={w} y={h + 15} textAnchor="end" className="axis-label">latest batch →</text>
      <text x={0} y={11} className="axis-label">peak {formatNumber(max, 1)} rows/s</text>
    </svg>
  );
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

function AlertItem({ alert }: { alert: Alert }) {
  const active = alert.state === "active";
  const where = alert.region_name ?? alert.region_id;
  const title = `${(alert.rule ?? "alert").replace(/_/g, " ")}${where ? ` · ${where}` : ""}`;
  return (
    <li className={`alert-item ${active ? "alert-active" : "alert-resolved"}`} data-testid="alert">
      <span className={`badge ${active ? "badge-silent" : "badge-neutral"}`}>{active ? "Active" : capitalize(alert.state ?? "resolved")}</span>
      <div>
        <div className="alert-title">
          {alert.id ? <a href={incidentHref(alert.id)}>{title}</a> : title}
          {alert.severity ? <span className="muted"> ({alert.severity})</span> : null}
        </div>
        <div className="alert-msg">{alert.message}</div>
        <div className="muted">
          since {localDate(alert.started_at)} {localTime(alert.started_at)} UTC
          {alert.resolved_at ? ` · resolved ${localTime(alert.resolved_at)} UTC` : ""}
        </div>
      </div>
    </li>
  );
}

export function StatusPage({ refreshMs }: { refreshMs: number }) {
  const { data, error, loading } = usePolling<StatusResponse>("/api/status", refreshMs);
  const latest = data?.streaming.batches[0];
  const resolved = data ? data.alerts.recent.filter((a) => a.state !== "active") : [];
  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          Pipeline health
        </h1>
        {data && (
          <p className="lede">
            Late after {formatDuration(data.thresholds.late_after_seconds)}, silent after {formatDuration(data.thresholds.silent_after_seconds)} without data.
          </p>
        )}
      </div>
      {error && <ErrorBanner message={error} retrySeconds={refreshMs / 1000} stale={!!data} />}
      {loading && !data && <Loading what="pipeline status" />}
      {data?.alerting.stale && (
        <div className="state state-warning" role="alert" data-testid="alerting-stale">
          <strong>Alerting is not evaluating:</strong> its last evaluation was{" "}
          {data.alerting.last_evaluation_at ? `at ${localTime(data.alerting.last_evaluation_at)} UTC` : "never"}, more than 3
          intervals ago. Alerts are not being sent; is the alerting service running (./run.sh status)?
        </div>
      )}
      {data && (
        <div className="tiles">
          <Tile label="regions fresh" value={`${data.summary.fresh}/${data.summary.regions}`} tone={data.summary.fresh === data.summary.regions && data.summary.regions > 0 ? "ok" : "warn"} testid="tile-fresh" />
          <Tile label="arrivals, last hour" value={formatNumber(data.summary.arrivals_last_hour)} testid="tile-arrivals" />
          <Tile label="rows/s, latest batch" value={latest ? formatNumber(latest.rows_per_second, 1) : "–"} />
          <Tile label="active alerts" value={data.summary.active_alerts} tone={data.summary.active_alerts ? "bad" : "ok"} />
          <Tile label="dead letters" value={formatNumber(data.summary.deadletters_total)} tone={data.deadletters.last_hour ? "warn" : undefined} />
        </div>
      )}
      {/* Polled on its own: services and lag stay on screen when the status sources fail (MongoDB down). */}
      <PipelineSelfCheck refreshMs={refreshMs} />
      {data && (
        <>
          <div className="card">
            <h2>Regions</h2>
            <SectionError message={data.errors.arrivals} />
            {data.regions.length === 0 ? (
              <Empty title="No region has sent data yet." />
            ) : (
              <div className="table-wrap" tabIndex={0} role="region" aria-label="Arrivals and lag per region">
                <table className="table" data-testid="status-table">
                  <thead>
                    <tr>
                      <th scope="col">Region</th>
                      <th scope="col">State</th>
                      <th scope="col">Last seen (UTC)</th>
                      <th scope="col" className="num">Lag</th>
                      <th scope="col" className="num">Arrivals / h</th>
                      <th scope="col" className="spark-col">Last hour, per {data.arrival_bucket}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.regions.map((r) => (
                      <tr key={r.region_id} data-testid="status-row" data-region-id={r.region_id}>
                        <th scope="row">
                          <a href={`#/region/${encodeURIComponent(r.region_id)}`}>{r.region_name}</a>
                        </th>
                        <td>
                          <FreshnessBadge freshness={r.freshness} ageSeconds={r.age_seconds} />
                        </td>
                        <td data-testid="last-seen" data-last-seen={r.last_seen ?? ""}>
                          {r.last_seen ? `${localTime(r.last_seen, 0, true)}` : "never"} <span className="muted">({ago(r.age_seconds)})</span>
                        </td>
                        <td className="num">{formatDuration(r.lag_seconds)}</td>
                        <td className="num">{formatNumber(r.arrivals_last_hour)}</td>
                        <td className="spark-col">
                          <Sparkline values={r.arrivals_per_bucket} label={`${r.region_name}: ${r.arrivals_last_hour} arrivals in the last hour`} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>

          <div className="two-col">
            <div className="card">
              <h2>Streaming throughput</h2>
              <SectionError message={data.errors.streaming} />
              {data.streaming.batches.length === 0 ? (
                <Empty title="No streaming batch reported yet." >The Spark job logs one progress line per micro-batch.</Empty>
              ) : (
                <>
                  <ThroughputChart batches={data.streaming.batches} />
                  <div className="table-wrap" tabIndex={0} role="region" aria-label="Latest streaming batches">
                    <table className="table compact" data-testid="batches-table">
                      <thead>
                        <tr>
                          <th scope="col">Time (UTC)</th>
                          <th scope="col" className="num">Batch</th>
                          <th scope="col" className="num">Rows</th>
                          <th scope="col" className="num">Rows/s</th>
                          <th scope="col" className="num">Duration</th>
                        </tr>
                      </thead>
                      <tbody>
                        {data.streaming.batches.slice(0, 8).map((b, i) => (
                          <tr key={`${b.at}-${i}`}>
                            <td>{localTime(b.at, 0, true)}</td>
                            <td className="num">{b.batch_id ?? "–"}</td>
                            <td className="num">{formatNumber(b.input_rows)}</td>
                            <td className="num">{formatNumber(b.rows_per_second, 1)}</td>
                            <td className="num">{b.duration_ms !== null ? formatDuration(b.duration_ms / 1000) : "–"}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                </>
              )}
            </div>

            <div className="card">
              <h2>Alerts</h2>
              <SectionError message={data.errors.alerts} />
              {data.alerts.active.length === 0 && resolved.length === 0 ? (
                <Empty title="No alerts.">Late or silent regions raise an alert here and in Slack.</Empty>
              ) : (
                <ul className="alerts" aria-label="Active and recent alerts">
                  {data.alerts.active.map((a) => (
                    <AlertItem key={a.id ?? `${a.rule}-${a.started_at}`} alert={a} />
                  ))}
                  {resolved.slice(0, 6).map((a) => (
                    <AlertItem key={a.id ?? `${a.rule}-${a.started_at}`} alert={a} />
                  ))}
                </ul>
              )}
              <h2 className="mt">Dead letters</h2>
              <SectionError message={data.errors.deadletters} />
              <p data-testid="deadletters">
                <strong>{formatNumber(data.deadletters.total)}</strong> in total, <strong>{formatNumber(data.deadletters.last_hour)}</strong> in the last hour
                {Object.keys(data.deadletters.by_service).length > 0 &&
                  ` (${Object.entries(data.deadletters.by_service)
                    .map(([s, n]) => `${s}: ${n}`)
                    .join(", ")})`}
                .
              </p>
              {data.deadletters.latest.length > 0 && (
                <ul className="deadletters">
                  {data.deadletters.latest.map((d, i) => (
                    <li key={i}>
                      <span className="muted">{localTime(d.failed_at, 0, true)} · {d.service}</span> {d.reason}
                    </li>
                  ))}
                </ul>
              )}
            </div>
          </div>
        </>
      )}
    </section>
  );
}
