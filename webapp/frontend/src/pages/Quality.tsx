import { useState } from "react";
import type uPlot from "uplot";
import type { ForecastQualityResponse, LeadSkill, RainResponse } from "../api";
import { Empty, ErrorBanner, Loading } from "../components/common";
import { tooltipPlugin, UChart } from "../components/UChart";
import type { Units } from "../format";
import { ago, localDate, localTime } from "../format";
import { confusionCells, formatAuc, formatChance, rainModelName } from "../history";
import { usePolling } from "../hooks";
import { formatDelta, modelLabel, skillText } from "../weather";

const WINDOWS = [
  { value: "24h", label: "Last 24 hours" },
  { value: "7d", label: "Last 7 days" },
] as const;

const lead = { scales: { x: { time: false } }, cursor: { drag: { x: true, y: false, setScale: true } }, legend: { live: false } };
const num = (v: number | null | undefined) => (v === null || v === undefined ? null : v);

function MaeChart({ rows, units }: { rows: LeadSkill[]; units: Units }) {
  const k = units === "F" ? 1.8 : 1;
  const scaled = (key: "model_mae" | "persistence_mae" | "climatology_mae" | "api_mae") =>
    rows.map((r) => (r[key] === null || r[key] === undefined ? null : r[key]! * k));
  const data: uPlot.AlignedData = [rows.map((r) => r.lead_hours), scaled("model_mae"), scaled("api_mae"), scaled("persistence_mae"), scaled("climatology_mae")];
  const series: uPlot.Series[] = [
    { label: "Lead (h)" },
    { label: "Served forecast", stroke: "#1d4ed8", width: 2.5 },
    { label: "Model (served or not)", stroke: "#7c3aed", width: 1.5 },
    { label: "Persistence", stroke: "#d97706", width: 2, dash: [6, 4] },
    { label: "Same hour yesterday", stroke: "#64748b", width: 2, dash: [2, 3] },
  ];
  return (
    <UChart
      testId="mae-chart"
      label="Mean absolute error by lead time: the served forecast and the model's own against persistence and same hour yesterday"
      optionsKey={`mae-${units}`}
      height={260}
      data={data}
      options={{
        ...lead,
        series,
        axes: [
          { label: "Hours ahead", stroke: "#475569", grid: { stroke: "#e2e8f0" } },
          { label: `MAE (°${units})`, stroke: "#475569", grid: { stroke: "#e2e8f0" }, size: 56, values: (_u, v) => v.map((x) => x.toFixed(1)) },
        ],
        plugins: [tooltipPlugin((u, idx) => [`${u.data[0][idx]} h ahead`, ...series.slice(1).map((s, i) => {
          const v = u.data[i + 1][idx];
          return `${s.label}: ${v === null || v === undefined ? "–" : `${v.toFixed(2)} °${units}`}`;
        })])],
      }}
    />
  );
}

function CoverageChart({ rows, level }: { rows: LeadSkill[]; level: number | null }) {
  const data: uPlot.AlignedData = [rows.map((r) => r.lead_hours), rows.map((r) => (r.coverage === null ? null : r.coverage * 100)),
    rows.map(() => (level === null ? null : level * 100))];
  return (
    <UChart
      testId="coverage-chart"
      label="Share of observations inside the forecast band by lead time, against its nominal level"
      optionsKey="coverage"
      height={200}
      data={data}
      options={{
        ...lead,
        series: [{ label: "Lead (h)" }, { label: "Band coverage", stroke: "#0f766e", width: 2.5 }, { label: "Nominal", stroke: "#94a3b8", dash: [4, 4], width: 1.5 }],
        scales: { x: { time: false }, y: { range: [0, 100] } },
        axes: [
          { label: "Hours ahead", stroke: "#475569", grid: { stroke: "#e2e8f0" } },
          { label: "%", stroke: "#475569", grid: { stroke: "#e2e8f0" }, size: 48 },
        ],
        plugins: [tooltipPlugin((u, idx) => [`${u.data[0][idx]} h ahead`, `Coverage ${num(u.data[1][idx])?.toFixed(0) ?? "–"}%`,
          `Nominal ${num(u.data[2][idx])?.toFixed(0) ?? "–"}%`])],
      }}
    />
  );
}

/** The rain classifier's latest training run: each model compared, the served one marked. */
function RainModelSection({ refreshMs }: { refreshMs: number }) {
  const { data } = usePolling<RainResponse>("/api/history/rain", refreshMs * 6);
  if (!data) return null;
  return (
    <div className="card" data-testid="rain-models">
      <h2>Rain model</h2>
      {data.models.length === 0 ? (
        <Empty title="No rain model trained yet.">The batch job trains it once enough hourly history is stored.</Empty>
      ) : (
        <>
          <p className="hint hint-top">
            Whether it rains within {data.models[0].lead_hours} h, learnt from the hours before {localDate(data.models[0].train_until)}{" "}
            {localTime(data.models[0].train_until)} UTC and checked on the hours after (the hold-out). Trained {localDate(data.models[0].trained_at)}{" "}
            {localTime(data.models[0].trained_at)} UTC.
          </p>
          <div className="rain-models">
            {data.models.map((m) => (
              <section key={m.model} className={`rain-model${m.selected ? " rain-model-selected" : ""}`} data-testid="rain-model" data-model={m.model} data-selected={m.selected}>
                <h3>
                  {rainModelName(m.model)}
                  {m.selected && <span className="badge badge-fresh badge-inline">served</span>}
                </h3>
                <dl className="facts">
                  <div><dt>AUC</dt><dd data-testid="rain-auc">{formatAuc(m.auc)}</dd></div>
                  <div><dt>Accuracy</dt><dd>{formatChance(m.accuracy)}</dd></div>
                  <div><dt>Hold-out</dt><dd>{m.test_rows} h ({formatChance(m.rain_share)} rain)</dd></div>
                  <div><dt>Trained on</dt><dd>{m.train_rows} h in {m.training_seconds.toFixed(1)} s</dd></div>
                </dl>
                <table className="table confusion" data-testid="rain-confusion">
                  <caption className="sr-only">Confusion matrix of {rainModelName(m.model)} on the hold-out</caption>
                  <tbody>
                    {confusionCells(m).map((c) => (
                      <tr key={c.label}><th scope="row">{c.label}</th><td className="num">{c.count}</td><td className="num">{formatChance(c.share)}</td></tr>
                    ))}
                  </tbody>
                </table>
              </section>
            ))}
          </div>
        </>
      )}
    </div>
  );
}

export function QualityPage({ units, refreshMs }: { units: Units; refreshMs: number }) {
  const [window, setWindow] = useState<"24h" | "7d">("24h");
  const [region, setRegion] = useState("");
  const url = `/api/forecast-quality?window=${window}${region ? `&region=${encodeURIComponent(region)}` : ""}`;
  const { data, error, loading } = usePolling<ForecastQualityResponse>(url, refreshMs * 3);
  const regionName = data?.regions.find((r) => r.region_id === region)?.region_name;
  const overall = data?.by_lead.length
    ? (() => {
        const w = data.by_lead.reduce((a, r) => a + r.count, 0);
        const mean = (key: "model_mae" | "persistence_mae" | "climatology_mae") => {
          const known = data.by_lead.filter((r) => r[key] !== null);
          const n = known.reduce((a, r) => a + r.count, 0);
          return n ? known.reduce((a, r) => a + r[key]! * r.count, 0) / n : null;
        };
        return { pairs: w, model: mean("model_mae"), persistence: mean("persistence_mae"), climatology: mean("climatology_mae") };
      })()
    : null;
  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          Forecast quality
        </h1>
        <p className="lede">How the served forecast did against what happened, next to two baselines: persistence (the last observed value) and the same hour yesterday.</p>
      </div>
      <div className="toolbar">
        <label className="select-label">
          Window
          <select value={window} onChange={(e) => setWindow(e.target.value as "24h" | "7d")} data-testid="quality-window">
            {WINDOWS.map((w) => <option key={w.value} value={w.value}>{w.label}</option>)}
          </select>
        </label>
        <label className="select-label">
          Region
          <select value={region} onChange={(e) => setRegion(e.target.value)} data-testid="quality-region">
            <option value="">Every region</option>
            {(data?.regions ?? []).slice().sort((a, b) => a.region_name.localeCompare(b.region_name)).map((r) => (
              <option key={r.region_id} value={r.region_id}>{r.region_name}</option>
            ))}
          </select>
        </label>
        {data?.updated_at && <span className="muted">Updated {ago((Date.parse(data.generated_at) - Date.parse(data.updated_at)) / 1000)}</span>}
      </div>
      {error && <ErrorBanner message={error} retrySeconds={(refreshMs * 3) / 1000} stale={!!data} />}
      {loading && !data && <Loading what="forecast skill" />}
      <RainModelSection refreshMs={refreshMs} />
      {data && data.regions.length === 0 && (
        <Empty title="No forecast has been checked against observations yet.">
          Skill is measured as observations arrive for the hours a forecast covered: it appears here about an hour after the first forecast.
        </Empty>
      )}
      {data && data.regions.length > 0 && (
        <>
          {overall && (
            <div className="tiles" data-testid="quality-tiles">
              <div className="tile"><div className="tile-label">Served forecast MAE</div><div className="tile-value">{formatDelta(overall.model, units, 2)}</div></div>
              <div className="tile"><div className="tile-label">Persistence MAE</div><div className="tile-value">{formatDelta(overall.persistence, units, 2)}</div></div>
              <div className="tile"><div className="tile-label">Same hour yesterday MAE</div><div className="tile-value">{formatDelta(overall.climatology, units, 2)}</div></div>
              <div className="tile"><div className="tile-label">Pairs compared</div><div className="tile-value">{overall.pairs}</div></div>
            </div>
          )}
          <div className="card">
            <h2>Error by lead time{regionName ? ` · ${regionName}` : " · every region"}</h2>
            <MaeChart rows={data.by_lead} units={units} />
            <p className="hint">Lower is better. Drag to zoom on lead times, double-click to zoom out.</p>
          </div>
          <div className="card">
            <h2>Band coverage</h2>
            <CoverageChart rows={data.by_lead} level={data.band_level} />
            <p className="hint">
              A calibrated band holds its nominal share of observations{data.band_level !== null ? ` (${Math.round(data.band_level * 100)}%)` : ""}: below it, the band is too narrow.
            </p>
          </div>
          <div className="card">
            <h2>Regions, worst first</h2>
            <div className="table-wrap" tabIndex={0} role="region" aria-label="Forecast skill by region">
              <table className="table" data-testid="quality-regions">
                <thead>
                  <tr>
                    <th scope="col">Region</th>
                    <th scope="col">Served</th>
                    <th scope="col" className="num">MAE</th>
                    <th scope="col" className="num">Persistence</th>
                    <th scope="col" className="num">Yesterday</th>
                    <th scope="col">Skill</th>
                    <th scope="col" className="num">Coverage</th>
                    <th scope="col" className="num">Pairs</th>
                  </tr>
                </thead>
                <tbody>
                  {data.regions.map((r) => (
                    <tr key={r.region_id} data-testid="quality-row" data-region-id={r.region_id} className={r.degraded ? "row-degraded" : undefined}>
                      <th scope="row"><a href={`#/region/${encodeURIComponent(r.region_id)}`}>{r.region_name}</a>
                        {r.degraded && <span className="badge badge-late badge-inline" title={r.degraded_reason ?? undefined}>degraded</span>}</th>
                      <td title={modelLabel(r.served_model) ?? undefined}>{r.served_model ? (r.served_model === "persistence" || r.served_model === "climatology" ? `baseline (${r.served_model})` : r.served_model) : "–"}</td>
                      <td className="num">{formatDelta(r.model_mae, units, 2)}</td>
                      <td className="num">{formatDelta(r.persistence_mae, units, 2)}</td>
                      <td className="num">{formatDelta(r.climatology_mae, units, 2)}</td>
                      <td className={r.skill !== null && r.skill < 0 ? "skill-worse" : "skill-better"}>{skillText(r.skill)}</td>
                      <td className="num">{r.coverage === null ? "–" : `${Math.round(r.coverage * 100)}%`}</td>
                      <td className="num">{r.count}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
        </>
      )}
    </section>
  );
}
