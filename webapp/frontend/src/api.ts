// The serving API's fetch helpers, and the types of its JSON bodies under the names the components use.
// The types are GENERATED from the API's OpenAPI schema (src/api/schema.json -> src/api/types.gen.ts):
// after changing an endpoint, run `.venv/bin/python -m webapp.openapi` (webapp/README.md). Never edit them here.

import type { components } from "./api/types.gen";

type Schemas = components["schemas"];

export type Thresholds = Schemas["Thresholds"];
export type Observation = Schemas["ObservationBody"];
export type RegionSummary = Schemas["RegionSummary"];
export type Freshness = RegionSummary["freshness"];
export type RegionsResponse = Schemas["RegionsResponse"];
export type HourlyStat = Schemas["HourlyStat"];
export type ForecastPoint = Schemas["ForecastPoint"];
export type RegionResponse = Schemas["RegionResponse"];
export type ConfigResponse = Schemas["ConfigResponse"];

// GET /api/status
export type StatusRegion = Schemas["StatusRegion"];
export type StreamingBatch = Schemas["StreamingBatch"];
export type Alert = Schemas["AlertBody"];
export type StatusResponse = Schemas["StatusResponse"];

// incidents, acknowledgements, silences (GET/POST /api/incidents, /api/silences)
export type IncidentNotification = Schemas["IncidentNotification"];
export type NotificationStatus = IncidentNotification["status"];
export type Acknowledgement = Schemas["AcknowledgementBody"];
export type Incident = Schemas["IncidentBody"];
export type IncidentsResponse = Schemas["IncidentsResponse"];
export type IncidentResponse = Schemas["IncidentResponse"];
export type AckResponse = Schemas["AckResponse"];
export type Silence = Schemas["SilenceBody"];
export type SilenceState = Silence["state"];
export type SilencesResponse = Schemas["SilencesResponse"];
export type SilenceResponse = Schemas["SilenceResponse"];
/** POST /api/silences: ends_at or duration_seconds (after starts_at, default now). */
export type SilenceRequest = Schemas["SilenceRequest"];
export type AckRequest = Schemas["AckRequest"];

// GET /api/health: the pipeline watching itself (samples of elk/health/)
export type ServiceHealth = Schemas["ServiceHealth"];
export type LagPoint = Schemas["LagPoint"];
export type ConsumerHealth = Schemas["ConsumerHealth"];
export type StoreHealth = Schemas["StoreHealth"];
export type StoreStatus = StoreHealth["status"];
export type ForecastHealth = Schemas["ForecastHealth"];
/** When the sample was taken; stale: older than 3 sampling intervals, so not the present. */
export type Sampled = Pick<ServiceHealth, "sampled_at" | "sample_age_seconds" | "stale">;
export type HealthResponse = Schemas["HealthResponse"];

// errors: a 404/409/503 body, and a 422's
export type ErrorBody = Schemas["ErrorBody"];
export type ValidationErrorBody = Schemas["ValidationErrorBody"];
/** One entry of a 422's `errors`: which field, and what is wrong with it. */
export type FieldError = Schemas["FieldError"];

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

// The server's write token (METEOFLOW_WEBAPP_WRITE_TOKEN), when it has one: typed in by the user after a 401,
// kept for this tab only (sessionStorage) and sent with every write.
const WRITE_TOKEN_KEY = "meteoflow.writeToken";
/** Dispatched on window when a write is answered 401: the page asks for the token. */
export const UNAUTHORIZED_EVENT = "meteoflow:unauthorized";

export function writeToken(): string {
  try {
    return sessionStorage.getItem(WRITE_TOKEN_KEY) ?? "";
  } catch {
    return ""; // storage disabled: no token kept
  }
}

export function setWriteToken(token: string): void {
  try {
    if (token) sessionStorage.setItem(WRITE_TOKEN_KEY, token);
    else sessionStorage.removeItem(WRITE_TOKEN_KEY);
  } catch {
    /* storage disabled */
  }
}

/** POST / DELETE with a JSON body; a refusal is an ApiError (a 422 names its fields, a 401 asks for the token). */
export async function sendJson<T>(method: "POST" | "DELETE", url: string, body?: unknown): Promise<T> {
  const token = writeToken();
  const headers: Record<string, string> = body === undefined ? {} : { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await request<T>(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    throw err;
  }
}

// The weather pages: overview cards, kept forecast runs, forecast quality
export type ServedModel = Schemas["ForecastRunItem"]["model"];
export type OverviewCard = Schemas["OverviewCard"];
export type OverviewResponse = Schemas["OverviewResponse"];
export type BackfillStatus = Schemas["BackfillStatus"];
export type ForecastRunItem = Schemas["ForecastRunItem"];
export type ForecastRunsResponse = Schemas["ForecastRunsResponse"];
export type VerifiedPoint = Schemas["VerifiedPoint"];
export type ForecastRunResponse = Schemas["ForecastRunResponse"];
export type LeadSkill = Schemas["LeadSkill"];
export type RegionSkill = Schemas["RegionSkill"];
export type ForecastQualityResponse = Schemas["ForecastQualityResponse"];

// History (issue 17): daily statistics, yesterday's totals, the rain model and its chances
export type DailyStat = Schemas["DailyStat"];
export type RegionHistoryResponse = Schemas["RegionHistoryResponse"];
export type YesterdayResponse = Schemas["YesterdayResponse"];
export type RainModel = Schemas["RainModelBody"];
export type RainChance = Schemas["RainChance"];
export type RainResponse = Schemas["RainResponse"];
