import type { RegionsResponse, RegionSummary } from "../api";
import { Empty, ErrorBanner, FreshnessBadge, Loading, SourceErrors } from "../components/common";
import type { Units } from "../format";
import { ago, compass, formatTemp, formatWind, localTime } from "../format";
import { usePolling } from "../hooks";
import { WeatherIcon } from "../icons";

function RegionCard({ region, units }: { region: RegionSummary; units: Units }) {
  const o = region.latest;
  const description = o?.weather_description ?? o?.weather_main ?? "no observation yet";
  return (
    <article className={`card region-card fresh-${region.freshness}`} data-testid="region-card" data-region-id={region.region_id}>
      <header className="card-head">
        <h2>
          <a href={`#/region/${encodeURIComponent(region.region_id)}`} className="stretched">
            {region.region_name}
          </a>
        </h2>
        <FreshnessBadge freshness={region.freshness} ageSeconds={region.age_seconds} />
      </header>
      <div className="card-main">
        <WeatherIcon icon={o?.weather_icon} main={o?.weather_main} label={description} size={60} />
        <div>
          <div className="temp" data-testid="region-temp">
            {formatTemp(o?.temp, units)}
          </div>
          <div className="conditions">{description}</div>
        </div>
      </div>
      <dl className="facts">
        <div>
          <dt>Humidity</dt>
          <dd>{o ? `${Math.round(o.humidity)} %` : "–"}</dd>
        </div>
        <div>
          <dt>Wind</dt>
          <dd>
            {formatWind(o?.wind_speed, units)} {compass(o?.wind_deg)}
          </dd>
        </div>
        <div>
          <dt>Feels like</dt>
          <dd>{formatTemp(o?.feels_like, units)}</dd>
        </div>
      </dl>
      <p className="card-foot">
        Observed {localTime(o?.observed_at, o?.timezone_offset ?? 0)} · seen {ago(region.age_seconds)}
      </p>
    </article>
  );
}

export function Overview({ units, refreshMs }: { units: Units; refreshMs: number }) {
  const { data, error, loading } = usePolling<RegionsResponse>("/api/regions", refreshMs);
  const counts = data ? data.regions.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.freshness]: (acc[r.freshness] ?? 0) + 1 }), {}) : {};
  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          Weather now
        </h1>
        {data && data.regions.length > 0 && (
          <p className="lede" data-testid="overview-summary">
            {data.regions.length} regions · {counts.fresh ?? 0} fresh · {counts.late ?? 0} late · {counts.silent ?? 0} silent
          </p>
        )}
      </div>
      {error && <ErrorBanner message={error} retrySeconds={refreshMs / 1000} stale={!!data} />}
      {loading && !data && <Loading what="regions" />}
      {data && <SourceErrors errors={data.errors} />}
      {data && data.regions.length === 0 && (
        <Empty title="No observations yet.">
          Start the pipeline with <code>./run.sh</code>: regions appear here as soon as their first observation is stored.
        </Empty>
      )}
      {data && data.regions.length > 0 && (
        <div className="grid-cards" data-testid="region-list">
          {data.regions.map((r) => (
            <RegionCard key={r.region_id} region={r} units={units} />
          ))}
        </div>
      )}
    </section>
  );
}
