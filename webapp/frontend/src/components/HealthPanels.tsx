// The pipeline watching itself (GET /api/health): each server and service of ./run.sh, the lag of
// each Kafka consumer over a window, and how far each store's newest record lies behind Kafka's.
import { useState } from "react";
import type { ConsumerHealth, ForecastHealth, HealthResponse, ServiceHealth, StoreHealth } from "../api";
import type { Badge, LagKey } from "../health";
import { describeExit, formatUptime, lagPath, lagSummary, lagTicks, serviceBadge, storeBadge } from "../health";
import { ago, formatDuration, formatNumber, linearScale, localTime, minuteTicks } from "../format";
import { usePolling, useWidth } from "../hooks";
import { Empty, Loading } from "./common";

const WINDOWS = [
  { minutes: 30, label: "30 min" },
  { minutes: 120, label: "2 h" },
  { minutes: 360, label: "6 h" },
];
const STORE_NAMES: Record<string, string> = { kafka: "Kafka", elasticsearch: "Elasticsearch", mongodb: "MongoDB" };

function StateBadge({ badge, testid }: { badge: Badge; testid: string }) {
  return (
    <span className={`badge badge-${badge.tone}`} title={badge.description} data-testid={testid}>
      <span className="badge-dot" aria-hidden="true" />
      {badge.label}
      <span className="sr-only">: {badge.description}</span>
    </span>
  );
}

function ServiceItem({ s }: { s: ServiceHealth }) {
  const badge = serviceBadge(s);
  const exit = describeExit(s.last_exit_code);
  const facts = [
    s.stale ? `last sample ${localTime(s.sampled_at, 0, true)} UTC` : s.state === "up" ? `up ${formatUptime(s.uptime_seconds)}` : "not running",
    `${formatNumber(s.restarts)} restart${s.restarts === 1 ? "" : "s"}`,
    exit ? `last ${exit}` : null,
  ].filter(Boolean);
  return (
    <li className={`service ${s.stale ? "is-stale" : ""}`} data-testid="service" data-service={s.name} data-state={s.stale ? "stale" : s.state ?? ""}>
      <div className="service-head">
        <strong>{s.name}</strong>
        <StateBadge badge={badge} testid="service-badge" />
      </div>
      <div className="service-facts">{facts.join(" · ")}</div>
      {s.last_error && (
        <div className="service-error" data-testid="service-error">
          <span className="sr-only">Last error: </span>
          {s.last_error}
        </div>
      )}
    </li>
  );
}

const PANEL_H = 64;
const PANEL_GAP = 30;
const M = { top: 18, right: 14, bottom: 24, left: 56 };
const PANELS: { key: LagKey; title: string; className: string }[] = [
  { key: "lag_records", title: "Records not processed", className: "lag-records" },
  { key: "lag_seconds", title: "Seconds behind", className: "lag-seconds" },
];

/** Two stacked line charts sharing the time axis: lag in records, lag in seconds. */
function LagChart({ consumer, start, end, minutes }: { consumer: ConsumerHealth; start: string; end: string; minutes: number }) {
  const [ref, width] = useWidth<HTMLDivElement>(520);
  const t0 = Date.parse(start);
  const t1 = Date.parse(end);
  const x = linearScale([t0, t1], [M.left, width - M.right]);
  const height = M.top + PANELS.length * PANEL_H + (PANELS.length - 1) * PANEL_GAP + M.bottom;
  const ticksX = minuteTicks(t0, t1, width < 420 ? 3 : 6);
  const titleId = `lag-title-${consumer.name}`;
  return (
    <div ref={ref} className="chart lag-chart">
      <svg width={width} height={height} role="img" aria-labelledby={titleId} data-testid="lag-chart" data-consumer={consumer.name}>
        <title id={titleId}>{lagSummary(consumer, minutes)}</title>
        {PANELS.map((panel, i) => {
          const top = M.top + i * (PANEL_H + PANEL_GAP);
          const ticks = lagTicks(consumer.series, panel.key);
          const y = linearScale([0, ticks[ticks.length - 1]], [top + PANEL_H, top]);
          const path = lagPath(consumer.series, panel.key, x, y);
          return (
            <g key={panel.key}>
              <text x={M.left} y={top - 6} className="axis-label axis-date">
                {panel.title}
              </text>
              <g className="grid">
                {ticks.map((v) => (
                  <g key={v}>
                    <line x1={M.left} x2={width - M.right} y1={y(v)} y2={y(v)} />
                    <text x={M.left - 6} y={y(v)} dy="0.35em" textAnchor="end" className="axis-label">
                      {formatNumber(v)}
                    </text>
                  </g>
                ))}
              </g>
              {path && <path d={path} className={`lag-line ${panel.className}`} data-testid={`lag-line-${panel.key}`} />}
            </g>
          );
        })}
        {ticksX.map((t) => (
          <text key={t} x={x(t)} y={height - 6} textAnchor="middle" className="axis-label">
            {localTime(new Date(t).toISOString())}
          </text>
        ))}
      </svg>
    </div>
  );
}

function ConsumerItem({ c, start, end, minutes }: { c: ConsumerHealth; start: string; end: string; minutes: number }) {
  return (
    <li className="consumer" data-testid="consumer" data-consumer={c.name} data-stale={c.stale ? "true" : "false"}>
      <div className="service-head">
        <strong>{c.name}</strong>
        {c.stale ? (
          <StateBadge badge={{ label: "No recent sample", tone: "neutral", description: `last sample ${ago(c.sample_age_seconds)}` }} testid="consumer-badge" />
        ) : (
          <span data-testid="consumer-now">
            {c.started === false ? (
              `starting: nothing processed yet, ${formatNumber(c.lag_records)} records waiting`
            ) : c.lag_records === 0 ? (
              "caught up"
            ) : (
              <>
                <strong>{formatNumber(c.lag_records)}</strong> records · <strong>{formatDuration(c.lag_seconds)}</strong> behind
              </>
            )}
          </span>
        )}
      </div>
      {c.series.some((p) => p.lag_records !== null || p.lag_seconds !== null) ? (
        <LagChart consumer={c} start={start} end={end} minutes={minutes} />
      ) : (
        <p className="hint">No sample in this window.</p>
      )}
    </li>
  );
}

function StoreItem({ s }: { s: StoreHealth }) {
  const behind =
    s.status === "reference"
      ? "the reference"
      : s.staleness_seconds === null
        ? "nothing to compare yet"
        : s.staleness_seconds <= 0
          ? "has Kafka's newest record"
          : `${formatDuration(s.staleness_seconds)} behind Kafka`;
  return (
    <li className={`store ${s.stale ? "is-stale" : ""}`} data-testid="store" data-store={s.name} data-status={s.stale ? "stale" : s.status}>
      <div className="service-head">
        <strong>{STORE_NAMES[s.name] ?? s.name}</strong>
        <StateBadge badge={storeBadge(s)} testid="store-badge" />
      </div>
      <div className="service-facts">
        newest {s.newest_at ? `${localTime(s.newest_at, 0, true)} UTC (${ago(s.age_seconds)})` : "none"} · {behind}
      </div>
    </li>
  );
}

function ForecastAges({ forecasts }: { forecasts: ForecastHealth[] }) {
  return (
    <>
      <h2 className="mt">Forecast age</h2>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Latest forecast run per region">
        <table className="table compact" data-testid="forecast-ages">
          <thead>
            <tr>
              <th scope="col">Region</th>
              <th scope="col" className="hide-phone">Last run (UTC)</th>
              <th scope="col" className="num">Age</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {forecasts.map((f) => (
              <tr key={f.region_id} className={f.stale ? "is-stale" : undefined}>
                <th scope="row">{f.region_id}</th>
                <td className="hide-phone">{f.model_run_at ? localTime(f.model_run_at, 0, true) : "never"}</td>
                <td className="num">{f.stale ? "no recent sample" : formatUptime(f.age_seconds)}</td>
                <td>{f.forecast_status ?? "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function SamplesNote({ data }: { data: HealthResponse }) {
  if (data.state === "stale") {
    return (
      <p className="state state-warning" role="status" data-testid="health-stale">
        <strong>Health samples stopped</strong> at {localTime(data.newest_sample_at, 0, true)} UTC ({ago(data.newest_sample_age_seconds)}), more than 3
        sampling intervals ({formatDuration(data.stale_after_seconds)}): what follows is the last known, not the present. Is the alerting service
        running (./run.sh status)?
      </p>
    );
  }
  if (data.state === "unavailable" || data.errors.lag_series) {
    return (
      <p className="state state-warning" role="status">
        Unavailable: {data.errors.metrics ?? data.errors.lag_series}
      </p>
    );
  }
  return null;
}

export function PipelineSelfCheck({ refreshMs }: { refreshMs: number }) {
  const [minutes, setMinutes] = useState(30);
  const { data, error, loading } = usePolling<HealthResponse>(`/api/health?minutes=${minutes}`, refreshMs);
  const sampled = data?.state === "ok" || data?.state === "stale"; // there are samples to show
  const sampling = data ? `sampled every ${formatNumber(data.interval_seconds)} s` : "";
  return (
    <>
      <div className="card" data-testid="services-panel">
        <div className="card-title-row">
          <h2>Services</h2>
          {data?.newest_sample_at && (
            <span className="muted">
              {sampling}, latest {localTime(data.newest_sample_at, 0, true)} UTC
            </span>
          )}
        </div>
        {error && (
          <p className="state state-warning" role="status">
            Unavailable: {error}
          </p>
        )}
        {loading && !data && <Loading what="health samples" />}
        {data && <SamplesNote data={data} />}
        {data?.state === "empty" && (
          <Empty title="No health samples yet.">
            The alerting service samples services, consumer lag and store staleness every {formatNumber(data.interval_seconds)} s; is it running?
          </Empty>
        )}
        {data && sampled && data.services.length === 0 && (
          <Empty title="No service samples.">
            Only the supervisor of ./run.sh reports servers and services (with Docker, see docker compose ps).
          </Empty>
        )}
        {data && data.services.length > 0 && (
          <ul className="services" aria-label="Servers and services">
            {data.services.map((s) => (
              <ServiceItem key={s.name} s={s} />
            ))}
          </ul>
        )}
      </div>

      {data && sampled && (
        <div className="two-col">
          <div className="card" data-testid="lag-panel">
            <div className="card-title-row">
              <h2>Consumer lag</h2>
              <label className="select-label">
                Window
                <select value={minutes} onChange={(e) => setMinutes(Number(e.target.value))} data-testid="lag-window">
                  {WINDOWS.map((w) => (
                    <option key={w.minutes} value={w.minutes}>
                      {w.label}
                    </option>
                  ))}
                </select>
              </label>
            </div>
            {data.consumers.length === 0 ? (
              <Empty title="No consumer-lag samples.">The streaming job's lag needs its checkpoint directory (native runs).</Empty>
            ) : (
              <>
                <ul className="consumers" aria-label="Kafka consumers">
                  {data.consumers.map((c) => (
                    <ConsumerItem key={c.name} c={c} start={data.window.start} end={data.window.end} minutes={minutes} />
                  ))}
                </ul>
                <p className="hint">
                  Records on its topics not processed yet, and the age of the oldest of them: the highest of each{" "}
                  {formatUptime(data.window.bucket_seconds)}, times in UTC. A gap is a time without a sample.
                </p>
              </>
            )}
          </div>
          <div className="card" data-testid="stores-panel">
            <h2>Store staleness</h2>
            {data.stores.length === 0 ? (
              <Empty title="No store samples." />
            ) : (
              <ul className="stores" aria-label="Newest record per store">
                {data.stores.map((s) => (
                  <StoreItem key={s.name} s={s} />
                ))}
              </ul>
            )}
            <p className="hint">
              Each store's newest observation against Kafka's newest record (the observations topic). MongoDB can look behind after
              Kafka received only unchanged records; the streaming job's lag then stays 0.
            </p>
            {data.forecasts.length > 0 && <ForecastAges forecasts={data.forecasts} />}
          </div>
        </div>
      )}
    </>
  );
}
