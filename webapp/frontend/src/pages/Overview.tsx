import type { BackfillStatus, DailyStat, OverviewCard, OverviewResponse, RainChance, RainResponse, YesterdayResponse } from "../api";
import { Empty, ErrorBanner, Loading, ObservationBadge, SourceErrors } from "../components/common";
import { RegionMap } from "../components/RegionMap";
import type { Units } from "../format";
import { ago, compass, formatTemp, formatWind, localDate, localTime } from "../format";
import { byRegion, formatChance, formatMm, rainChanceOf } from "../history";
import { usePolling } from "../hooks";
import { WeatherIcon } from "../icons";
import { modelLabel, observationState } from "../weather";

const PROBLEM_TEXT = { silent: "Silent: no data arriving", late: "Late: data overdue", degraded: "Forecast degraded" } as const;

function ForecastStrip({ card, units }: { card: OverviewCard; units: Units }) {
  const offset = card.region.latest?.timezone_offset ?? 0;
  if (card.next_hours.length === 0) return <p className="strip-empty muted">No forecast yet</p>;
  return (
    <div className="strip-wrap">
      <div className="strip-head">
        <span>Next {card.next_hours.length} hours</span>
        {card.forecast_is_baseline && (
          <span className="baseline-tag" data-testid="baseline-tag" title={modelLabel(card.forecast_model) ?? undefined}>
            baseline forecast
          </span>
        )}
      </div>
      <ol className="forecast-strip" aria-label={`Forecast for the next ${card.next_hours.length} hours`} data-testid="forecast-strip">
        {card.next_hours.map((p) => (
          <li key={p.target_time}>
            <span className="strip-time">{localTime(p.target_time, offset)}</span>
            <span className="strip-temp">{formatTemp(p.yhat, units)}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}

/** Yesterday's totals and the rain chance ahead; each part hidden when there is nothing to show. */
function HistoryLine({ yesterday, rain, units }: { yesterday: DailyStat | undefined; rain: RainChance | null; units: Units }) {
  if (!yesterday && !rain) return null;
  return (
    <div className="history-line">
      {yesterday && (
        <div className="hilo" data-testid="yesterday" title={`High, low and precipitation of ${yesterday.day} (UTC)`}>
          <span className="hilo-label">Yesterday</span>
          <span>↑ {formatTemp(yesterday.temp_max, units)}</span>
          <span>↓ {formatTemp(yesterday.temp_min, units)}</span>
          <span>{formatMm(yesterday.precipitation_mm)}</span>
        </div>
      )}
      {rain && (
        <p className="rain-chance" data-testid="rain-chance" data-probability={rain.probability}>
          Rain in the next {rain.lead_hours} h: <strong>{formatChance(rain.probability)}</strong>
        </p>
      )}
    </div>
  );
}

function RegionCard({ card, units, silentAfter, yesterday, rain }: {
  card: OverviewCard; units: Units; silentAfter: number; yesterday?: DailyStat; rain: RainChance | null;
}) {
  const region = card.region;
  const o = region.latest;
  const description = o?.weather_description ?? o?.weather_main ?? "no observation yet";
  const state = observationState(card.observed_age_seconds, silentAfter);
  const offset = o?.timezone_offset ?? 0;
  return (
    <article
      className={`card region-card fresh-${region.freshness}${card.problem ? ` problem-${card.problem}` : ""}${state === "old" ? " obs-old" : ""}`}
      data-testid="region-card" data-region-id={region.region_id} data-problem={card.problem ?? ""} data-observation={state}
    >
      <header className="card-head">
        <h2>
          <a href={`#/region/${encodeURIComponent(region.region_id)}`} className="stretched">
            {region.region_name}
          </a>
        </h2>
        <ObservationBadge freshness={region.freshness} ageSeconds={region.age_seconds} old={state === "old"} backfilled={card.from_backfill} />
      </header>
      {card.problem && (
        <p className={`problem problem-${card.problem}`} data-testid="card-problem">
          {PROBLEM_TEXT[card.problem]}
          {card.degraded_reason && card.problem === "degraded" ? `: ${card.degraded_reason}` : ""}
        </p>
      )}
      <div className="card-main">
        <WeatherIcon icon={o?.weather_icon} main={o?.weather_main} label={description} size={60} />
        <div>
          <div className="temp" data-testid="region-temp">
            {formatTemp(o?.temp, units)}
          </div>
          <div className="conditions">{description}</div>
        </div>
      </div>
      {card.today && (
        <div className="hilo" data-testid="today-range" title={`High and low of ${card.today.is_today ? "today" : card.today.day}`}>
          <span className="hilo-label">{card.today.is_today ? "Today" : localDate(`${card.today.day}T12:00:00Z`)}</span>
          <span>↑ {formatTemp(card.today.high, units)}</span>
          <span>↓ {formatTemp(card.today.low, units)}</span>
        </div>
      )}
      <HistoryLine yesterday={yesterday} rain={rain} units={units} />
      <ForecastStrip card={card} units={units} />
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
      <p className="card-foot" data-testid="observed-age">
        Observed {ago(card.observed_age_seconds)}
        {state === "old" ? ` (${localDate(o?.observed_at, offset)} ${localTime(o?.observed_at, offset)})` : ` at ${localTime(o?.observed_at, offset)}`}
      </p>
    </article>
  );
}

function BackfillBanner({ backfill }: { backfill: BackfillStatus }) {
  if (!backfill.running) return null;
  return (
    <div className="state state-info" role="status" data-testid="backfill-banner">
      <strong>Back-filling history.</strong> {backfill.regions.length} region{backfill.regions.length === 1 ? " is" : "s are"} receiving
      past observations (up to {localDate(backfill.newest_observed_at)} {localTime(backfill.newest_observed_at)} UTC so far): the cards show each
      observation's own time until live data takes over.
    </div>
  );
}

export function Overview({ units, refreshMs }: { units: Units; refreshMs: number }) {
  const { data, error, loading } = usePolling<OverviewResponse>("/api/overview", refreshMs);
  const cards = data?.cards ?? [];
  // Daily figures and rain chances change at most hourly: polled less often, and optional (no error shown).
  const yesterday = usePolling<YesterdayResponse>("/api/history/yesterday", refreshMs * 6);
  const rain = usePolling<RainResponse>("/api/history/rain", refreshMs * 6);
  const yesterdayByRegion = byRegion(yesterday.data?.regions);
  const counts = cards.reduce<Record<string, number>>((acc, c) => ({ ...acc, [c.region.freshness]: (acc[c.region.freshness] ?? 0) + 1 }), {});
  const degraded = cards.filter((c) => c.degraded).length;
  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          Weather now
        </h1>
        {cards.length > 0 && (
          <p className="lede" data-testid="overview-summary">
            {cards.length} regions · {counts.fresh ?? 0} fresh · {counts.late ?? 0} late · {counts.silent ?? 0} silent
            {degraded ? ` · ${degraded} forecast${degraded === 1 ? "" : "s"} degraded` : ""}
          </p>
        )}
      </div>
      {error && <ErrorBanner message={error} retrySeconds={refreshMs / 1000} stale={!!data} />}
      {loading && !data && <Loading what="regions" />}
      {data && <SourceErrors errors={data.errors} />}
      {data && <BackfillBanner backfill={data.backfill} />}
      {data && cards.length === 0 && (
        <Empty title="No observations yet.">
          Start the pipeline with <code>./run.sh</code>: regions appear here as soon as their first observation is stored.
        </Empty>
      )}
      {data && cards.length > 0 && (
        <>
          <div className="grid-cards" data-testid="region-list">
            {cards.map((c) => (
              <RegionCard key={c.region.region_id} card={c} units={units} silentAfter={data.thresholds.silent_after_seconds}
                yesterday={yesterdayByRegion.get(c.region.region_id)} rain={rainChanceOf(rain.data, c.region.region_id)} />
            ))}
          </div>
          <RegionMap cards={cards} units={units} />
        </>
      )}
    </section>
  );
}
