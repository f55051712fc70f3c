// Types of the serving API's JSON bodies (webapp/app.py) and the one fetch helper.

export type Freshness = "fresh" | "late" | "silent";

export interface Thresholds {
  late_after_seconds: number;
  silent_after_seconds: number;
}

export interface Observation {
  region_id: string;
  region_name: string;
  observed_at: string;
  temp: number;
  feels_like: number | null;
  humidity: number;
  pressure: number;
  wind_speed: number;
  wind_deg: number | null;
  weather_main: string | null;
  weather_description: string | null;
  weather_icon: string | null;
  timezone_offset: number | null;
  source: string;
}

export interface RegionSummary {
  region_id: string;
  region_name: string;
  latest: Observation | null;
  last_seen: string | null;
  last_seen_basis: string;
  age_seconds: number | null;
  lag_seconds: number | null;
  freshness: Freshness;
}

export interface RegionsResponse {
  generated_at: string;
  thresholds: Thresholds;
  regions: RegionSummary[];
  errors: Record<string, string>;
}

export interface HourlyStat {
  hour: string;
  temp_min: number | null;
  temp_max: number | null;
  temp_mean: number | null;
  count: number | null;
}

export interface ForecastPoint {
  target_time: string;
  yhat: number;
  yhat_lower: number | null;
  yhat_upper: number | null;
}

export interface RegionResponse {
  generated_at: string;
  hours: number;
  window: { start: string; end: string };
  region: RegionSummary;
  observations: Observation[];
  hourly: HourlyStat[];
  forecast: { model_run_at: string | null; points: ForecastPoint[] } | null;
  errors: Record<string, string>;
}

export interface StatusRegion extends RegionSummary {
  arrivals_last_hour: number;
  arrivals_per_bucket: number[];
}

export interface StreamingBatch {
  at: string | null;
  batch_id: number | null;
  input_rows: number | null;
  rows_per_second: number | null;
  input_rows_per_second: number | null;
  duration_ms: number | null;
  durations_ms: Record<string, number>;
}

export interface Alert {
  id: string | null;
  rule: string | null;
  region_id: string | null;
  region_name: string | null;
  subject: string | null;
  state: string | null;
  severity: string | null;
  started_at: string | null;
  resolved_at: string | null;
  message: string | null;
}

export interface StatusResponse {
  generated_at: string;
  thresholds: Thresholds;
  summary: {
    regions: number;
    fresh: number;
    late: number;
    silent: number;
    arrivals_last_hour: number;
    active_alerts: number;
    deadletters_total: number;
  };
  regions: StatusRegion[];
  arrival_bucket: string;
  streaming: { batches: StreamingBatch[] };
  alerts: { active: Alert[]; recent: Alert[] };
  deadletters: {
    total: number;
    last_hour: number;
    by_service: Record<string, number>;
    latest: { failed_at: string | null; service: string | null; reason: string | null; key: string | null }[];
  };
  /** stale: the last evaluation is older than 3 intervals; null: no heartbeat (alerting not running yet). */
  alerting: { last_evaluation_at: string | null; interval_seconds: number | null; stale: boolean | null };
  errors: Record<string, string>;
}

export interface ConfigResponse {
  refresh_seconds: number;
  thresholds: Thresholds;
  source: string;
  expected_interval_seconds: number;
}

// --- incidents, acknowledgements, silences (GET/POST /api/incidents, /api/silences) ---------

export type NotificationStatus = "pending" | "sent" | "logged" | "failed" | "silenced";

export interface IncidentNotification {
  delivery_id: string;
  kind: "alert" | "reminder" | "recovery";
  status: NotificationStatus;
  created_at: string | null;
  sent_at: string | null;
  attempts: number | null;
  last_error: string | null;
  /** the silence that held it back (status "silenced") */
  silenced_by: string | null;
}

export interface Acknowledgement {
  author: string;
  comment: string;
  at: string | null;
}

export interface Incident {
  id: string;
  rule: string;
  subject: string;
  region_id: string | null;
  region_name: string | null;
  /** the rule's own title for it, when it has one (e.g. "Elasticsearch shipping stopped") */
  title: string | null;
  status: "firing" | "resolved";
  severity: string | null;
  summary: string | null;
  /** "rule|subject" of the cause that explains it (root-cause inhibition): nothing is sent for it meanwhile */
  inhibited_by: string | null;
  hint: string | null;
  opened_at: string | null;
  updated_at: string | null;
  resolved_at: string | null;
  last_seen: string | null;
  value: number | null;
  threshold: number | null;
  notifications: IncidentNotification[];
  acknowledgement: Acknowledgement | null;
}

export interface IncidentsResponse {
  generated_at: string;
  total: number;
  limit: number;
  offset: number;
  incidents: Incident[];
}

export interface IncidentResponse {
  generated_at: string;
  incident: Incident;
}

export type SilenceState = "active" | "scheduled" | "expired";

export interface Silence {
  id: string;
  rule: string | null;
  subject: string | null;
  starts_at: string;
  ends_at: string;
  expired_at: string | null;
  created_at: string;
  comment: string;
  author: string;
  state: SilenceState;
}

export interface SilencesResponse {
  generated_at: string;
  /** the rule names a silence may match */
  rules: string[];
  max_seconds: number;
  silences: Silence[];
}

/** POST /api/silences: ends_at or duration_seconds (after starts_at, default now). */
export interface SilenceRequest {
  rule: string | null;
  subject: string | null;
  starts_at?: string;
  ends_at?: string;
  duration_seconds?: number;
  comment: string;
  author: string;
}

export interface AckRequest {
  author: string;
  comment: string;
}

/** One entry of a 422's `errors`: which field, and what is wrong with it. */
export interface FieldError {
  field: string;
  in: string | null;
  message: string;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** a 422's messages by field name */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Field name -> first message, from a 422 body's `errors` (pydantic's "Value error, " prefix dropped). */
export function fieldMessages(errors: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(errors)) return out;
  for (const e of errors as Partial<FieldError>[]) {
    if (e && typeof e.field === "string" && typeof e.message === "string" && !(e.field in out)) {
      out[e.field] = e.message.replace(/^Value error, /, "");
    }
  }
  return out;
}

async function request<T>(url: string, init: RequestInit): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, headers: { Accept: "application/json", ...(init.headers ?? {}) } });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError("The web app's API cannot be reached", 0);
  }
  if (!response.ok) {
    let detail = response.statusText;
    let fields: Record<string, string> = {};
    try {
      const body = await response.json();
      if (typeof body.detail === "string") detail = body.detail;
      fields = fieldMessages(body.errors);
    } catch {
      /* not JSON: keep the status text */
    }
    throw new ApiError(`${response.status}: ${detail}`, response.status, fields);
  }
  return (await response.json()) as T;
}

export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  return request<T>(url, { signal });
}

/** POST / DELETE with a JSON body; a refusal is an ApiError (a 422 names its fields). */
export async function sendJson<T>(method: "POST" | "DELETE", url: string, body?: unknown): Promise<T> {
  return request<T>(url, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// --- GET /api/health: the pipeline watching itself (samples of elk/health/) -------------------

/** When the sample was taken; stale: older than 3 sampling intervals, so not the present. */
export interface Sampled {
  sampled_at: string | null;
  sample_age_seconds: number | null;
  stale: boolean;
}

export interface ServiceHealth extends Sampled {
  name: string;
  /** up, backoff (restarting after an exit), crash-loop, held (stopped with ./run.sh down) */
  state: string | null;
  up: boolean | null;
  uptime_seconds: number | null;
  restarts: number | null;
  last_exit_code: number | null;
  /** last error-looking line of its log, secrets masked by the supervisor */
  last_error: string | null;
}

export interface LagPoint {
  at: string;
  lag_records: number | null;
  lag_seconds: number | null;
}

export interface ConsumerHealth extends Sampled {
  name: string;
  lag_records: number | null;
  lag_seconds: number | null;
  partitions: number | null;
  /** false: it has processed nothing yet (starting); null: not known */
  started: boolean | null;
  /** max per bucket over the window, oldest first; null values: no sample in that bucket */
  series: LagPoint[];
}

export type StoreStatus = "reference" | "unknown" | "in_step" | "behind" | "far_behind";

export interface StoreHealth extends Sampled {
  name: string;
  newest_at: string | null;
  /** how far its newest record lies behind Kafka's newest */
  staleness_seconds: number | null;
  age_seconds: number | null;
  status: StoreStatus;
}

export interface ForecastHealth extends Sampled {
  region_id: string;
  model_run_at: string | null;
  age_seconds: number | null;
  forecast_status: string | null;
}

export interface HealthResponse {
  generated_at: string;
  /** stale: the newest sample is older than 3 intervals; empty: no sample at all; unavailable: not readable */
  state: "ok" | "stale" | "empty" | "unavailable";
  message: string | null;
  interval_seconds: number;
  stale_after_seconds: number;
  newest_sample_at: string | null;
  newest_sample_age_seconds: number | null;
  window: { start: string; end: string; bucket_seconds: number };
  services: ServiceHealth[];
  consumers: ConsumerHealth[];
  stores: StoreHealth[];
  forecasts: ForecastHealth[];
  errors: Record<string, string>;
}
