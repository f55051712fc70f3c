// Pure helpers of the incidents page: links, the history's query string, and silence forms.
// Unit-tested with Vitest (incidents.test.ts).

import type { Incident, NotificationStatus, Silence, SilenceRequest } from "./api";

/** The page of one incident (what Slack messages link to); ids hold "|" and ":". */
export function incidentHref(id: string): string {
  return `#/incidents/${encodeURIComponent(id)}`;
}

export const RANGES: { value: string; label: string; seconds: number | null }[] = [
  { value: "1h", label: "Last hour", seconds: 3600 },
  { value: "24h", label: "Last 24 hours", seconds: 86400 },
  { value: "7d", label: "Last 7 days", seconds: 7 * 86400 },
  { value: "30d", label: "Last 30 days", seconds: 30 * 86400 },
  { value: "all", label: "All time", seconds: null },
];

export interface IncidentFilters {
  status: "" | "firing" | "resolved";
  rule: string;
  subject: string;
  range: string;
}

export const PAGE_SIZE = 20;

/** GET /api/incidents with the filters. The range is rounded to the minute so the URL (and what
 * the page polls) stays the same between refreshes. */
export function incidentsUrl(filters: IncidentFilters, offset: number, nowMs: number): string {
  const params = new URLSearchParams();
  if (filters.status) params.set("status", filters.status);
  if (filters.rule) params.set("rule", filters.rule);
  const subject = filters.subject.trim();
  if (subject) params.set("subject", subject);
  const range = RANGES.find((r) => r.value === filters.range);
  if (range?.seconds) {
    const minute = Math.floor(nowMs / 60_000) * 60_000;
    params.set("since", new Date(minute - range.seconds * 1000).toISOString());
  }
  params.set("limit", String(PAGE_SIZE));
  params.set("offset", String(offset));
  return `/api/incidents?${params.toString()}`;
}

/** "region_silence" -> "Region silence". */
export function ruleLabel(rule: string | null | undefined): string {
  if (!rule) return "Any rule";
  const text = rule.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function incidentTitle(incident: Pick<Incident, "title" | "rule" | "region_name" | "region_id" | "subject">): string {
  const about = incident.region_name || incident.region_id || incident.subject;
  return `${incident.title || ruleLabel(incident.rule)}${about ? ` · ${about}` : ""}`;
}

/** "service_down|producer" -> "Service down · producer" */
export function causeText(inhibitedBy: string): string {
  const [rule, ...subject] = inhibitedBy.split("|");
  return `${ruleLabel(rule)}${subject.length ? ` · ${subject.join("|")}` : ""}`;
}

/** What a silence matches, in words. */
export function matcherText(silence: Pick<Silence, "rule" | "subject">): string {
  const rule = silence.rule ? ruleLabel(silence.rule) : "every rule";
  const subject = silence.subject ? silence.subject : "every region and subject";
  return `${rule} · ${subject}`;
}

export const NOTIFICATION_TEXT: Record<NotificationStatus, string> = {
  sent: "Sent",
  silenced: "Silenced",
  pending: "Pending",
  logged: "Logged (no Slack webhook)",
  failed: "Failed",
};

export const DURATIONS: { value: string; label: string; seconds: number }[] = [
  { value: "1800", label: "30 minutes", seconds: 1800 },
  { value: "3600", label: "1 hour", seconds: 3600 },
  { value: "7200", label: "2 hours", seconds: 7200 },
  { value: "14400", label: "4 hours", seconds: 14400 },
  { value: "28800", label: "8 hours", seconds: 28800 },
  { value: "86400", label: "1 day", seconds: 86400 },
  { value: "259200", label: "3 days", seconds: 259200 },
  { value: "604800", label: "7 days", seconds: 604800 },
];

export interface SilenceForm {
  rule: string;
  subject: string;
  /** "duration": for `duration` seconds from now; "until": until the local time `until` */
  mode: "duration" | "until";
  duration: string;
  until: string;
  comment: string;
  author: string;
}

/** The request body of a silence form, or messages by field when the form cannot be sent as it is
 * (the server checks everything again and names the field too). */
export function silenceRequest(form: SilenceForm): { body: SilenceRequest } | { errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const rule = form.rule || null;
  const subject = form.subject.trim() || null;
  if (!rule && !subject) errors.subject = "Choose a rule or enter a region (or both)";
  if (!form.comment.trim()) errors.comment = "Say why (shown to everyone who sees the silence)";
  if (!form.author.trim()) errors.author = "Say who you are";
  const body: SilenceRequest = { rule, subject, comment: form.comment, author: form.author };
  if (form.mode === "until") {
    const end = form.until ? new Date(form.until) : null; // datetime-local: the browser's time zone
    if (!end || Number.isNaN(end.getTime())) errors.ends_at = "Enter when the silence ends";
    else body.ends_at = end.toISOString();
  } else {
    const seconds = Number(form.duration);
    if (!Number.isFinite(seconds) || seconds <= 0) errors.duration_seconds = "Choose how long";
    else body.duration_seconds = seconds;
  }
  return Object.keys(errors).length ? { errors } : { body };
}
