import type { ForecastPoint, Observation } from "../api";
import type { Units } from "../format";
import { bandPath, formatTemp, linePath, linearScale, localDate, localTime, niceTicks, timeTicks, toUnits, utcOffsetLabel } from "../format";
import { useWidth } from "../hooks";

const HEIGHT = 300;
const M = { top: 16, right: 16, bottom: 44, left: 48 };

/** Observations as a solid line, the forecast as a dashed line inside its uncertainty band. */
export function TempChart({
  regionName,
  observations,
  forecast,
  units,
  offsetSeconds,
  windowStart,
}: {
  regionName: string;
  observations: Observation[];
  forecast: ForecastPoint[];
  units: Units;
  offsetSeconds: number;
  windowStart: string;
}) {
  const [ref, width] = useWidth<HTMLDivElement>(720);
  const obs = observations.map((o) => ({ t: Date.parse(o.observed_at), v: o.temp }));
  const lastObs = obs.length ? obs[obs.length - 1].t : Date.parse(windowStart);
  // The forecast shown is what lies ahead of the latest observation (the next hours).
  const fc = forecast
    .map((p) => ({ t: Date.parse(p.target_time), v: p.yhat, lo: p.yhat_lower ?? p.yhat, hi: p.yhat_upper ?? p.yhat }))
    .filter((p) => p.t >= lastObs - 3_600_000);
  const times = [...obs.map((p) => p.t), ...fc.map((p) => p.t), Date.parse(windowStart)];
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 3_600_000);
  const temps = [...obs.map((p) => p.v), ...fc.flatMap((p) => [p.lo, p.hi])].map((c) => toUnits(c, units));
  const ticksY = niceTicks(Math.min(...temps), Math.max(...temps), 5);
  const [y0, y1] = ticksY.length ? [ticksY[0], ticksY[ticksY.length - 1]] : [0, 1];
  const x = linearScale([t0, t1], [M.left, width - M.right]);
  const y = linearScale([y0, y1], [HEIGHT - M.bottom, M.top]);
  const ticksX = timeTicks(t0, t1, offsetSeconds, width < 500 ? 4 : 8);
  const obsPath = linePath(obs.map((p) => ({ x: x(p.t), y: y(toUnits(p.v, units)) })));
  const fcPath = linePath(fc.map((p) => ({ x: x(p.t), y: y(toUnits(p.v, units)) })));
  const band = bandPath(fc.map((p) => ({ x: x(p.t), lo: y(toUnits(p.lo, units)), hi: y(toUnits(p.hi, units)) })));
  const last = obs[obs.length - 1];
  const summary =
    `Temperature in ${regionName}: ${obs.length} observations` +
    (last ? `, latest ${formatTemp(last.v, units, 1)}` : "") +
    (fc.length ? `; forecast for the next ${Math.round((fc[fc.length - 1].t - lastObs) / 3_600_000)} hours from ${formatTemp(Math.min(...fc.map((p) => p.v)), units)} to ${formatTemp(Math.max(...fc.map((p) => p.v)), units)}` : "; no forecast yet");

  return (
    <div ref={ref} className="chart">
      <svg width={width} height={HEIGHT} role="img" aria-labelledby="chart-title chart-desc" data-testid="temp-chart">
        <title id="chart-title">Temperature, last observations and forecast</title>
        <desc id="chart-desc">{summary}</desc>
        <g className="grid">
          {ticksY.map((v) => (
            <g key={v}>
              <line x1={M.left} x2={width - M.right} y1={y(v)} y2={y(v)} />
              <text x={M.left - 8} y={y(v)} dy="0.35em" textAnchor="end" className="axis-label">
                {v}°
              </text>
            </g>
          ))}
          {ticksX.map((t) => {
            const iso = new Date(t).toISOString();
            const hm = localTime(iso, offsetSeconds);
            return (
              <g key={t}>
                <line x1={x(t)} x2={x(t)} y1={M.top} y2={HEIGHT - M.bottom} className="grid-v" />
                <text x={x(t)} y={HEIGHT - M.bottom + 16} textAnchor="middle" className="axis-label">
                  {hm}
                </text>
                {hm === "00:00" || t === ticksX[0] ? (
                  <text x={x(t)} y={HEIGHT - M.bottom + 30} textAnchor="middle" className="axis-label axis-date">
                    {localDate(iso, offsetSeconds)}
                  </text>
                ) : null}
              </g>
            );
          })}
        </g>
        {band && <path d={band} className="forecast-band" data-testid="forecast-band" />}
        {fcPath && <path d={fcPath} className="forecast-line" data-testid="forecast-line" />}
        {obsPath && <path d={obsPath} className="obs-line" data-testid="obs-line" />}
        {last && (
          <g>
            <line x1={x(last.t)} x2={x(last.t)} y1={M.top} y2={HEIGHT - M.bottom} className="now-line" />
            <circle cx={x(last.t)} cy={y(toUnits(last.v, units))} r={4.5} className="obs-dot" />
          </g>
        )}
        <text x={M.left} y={HEIGHT - 4} className="axis-label axis-unit">
          °{units} · time in {utcOffsetLabel(offsetSeconds)}
        </text>
      </svg>
      <ul className="legend" aria-label="Chart legend">
        <li>
          <span className="swatch swatch-obs" aria-hidden="true" /> Observed
        </li>
        <li>
          <span className="swatch swatch-fc" aria-hidden="true" /> Forecast
        </li>
        <li>
          <span className="swatch swatch-band" aria-hidden="true" /> Forecast uncertainty
        </li>
      </ul>
    </div>
  );
}
