import { useEffect, useId, useMemo, useRef, useState } from "react";
import type {
  Acknowledgement, Incident, IncidentNotification, IncidentResponse, IncidentsResponse, RegionsResponse, Silence,
  SilencesResponse,
} from "../api";
import { ApiError, UNAUTHORIZED_EVENT, getJson, sendJson, setWriteToken, writeToken } from "../api";
import { Empty, ErrorBanner, Loading } from "../components/common";
import { Field, FormStatus, useAuthor } from "../components/forms";
import { localDate, localTime } from "../format";
import { usePolling } from "../hooks";
import type { IncidentFilters, SilenceForm } from "../incidents";
import {
  DURATIONS, NOTIFICATION_TEXT, PAGE_SIZE, RANGES, causeText, incidentHref, incidentTitle, incidentsUrl, matcherText, ruleLabel,
  silenceRequest,
} from "../incidents";

/** "26 Nov 12:00:05 UTC" */
function when(iso: string | null | undefined): string {
  return iso ? `${localDate(iso)} ${localTime(iso, 0, true)} UTC` : "–";
}

function errorText(err: unknown): string {
  return err instanceof ApiError ? err.message : "Something went wrong";
}

function StatusBadge({ incident }: { incident: Incident }) {
  const firing = incident.status === "firing";
  return (
    <span className={`badge ${firing ? "badge-silent" : "badge-neutral"}`} data-testid="incident-status">
      {firing ? "Firing" : "Resolved"}
    </span>
  );
}

function AckBadge({ ack }: { ack: Acknowledgement }) {
  return (
    <span className="badge badge-ack" data-testid="ack-badge" title={ack.comment}>
      Acknowledged by {ack.author}
    </span>
  );
}

function Notifications({ notes }: { notes: IncidentNotification[] }) {
  if (notes.length === 0) return <p className="muted">No notification yet.</p>;
  return (
    <ul className="chips" aria-label="Notifications">
      {notes.map((n) => (
        <li key={n.delivery_id} className={`chip chip-${n.status}`} data-testid="notification" data-status={n.status}>
          <span className="chip-kind">{n.kind}</span>: {(NOTIFICATION_TEXT[n.status] ?? n.status).toLowerCase()}
          {n.status === "sent" && n.sent_at ? ` ${localTime(n.sent_at, 0, true)} UTC` : ""}
        </li>
      ))}
    </ul>
  );
}

/** Author + comment; acknowledging stops the incident's reminders (its recovery is still sent). */
function AckForm({ incident, onDone, onCancel }: { incident: Incident; onDone: () => void; onCancel?: () => void }) {
  const uid = useId();
  const [author, setAuthor] = useAuthor();
  const [comment, setComment] = useState("");
  const [fields, setFields] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  // Opened from a button that goes away: focus its first field to fill (keyboard users land in it).
  useEffect(() => {
    if (!onCancel) return;
    const fields = Array.from(form.current?.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input, textarea") ?? []);
    (fields.find((f) => !f.value) ?? fields[0])?.focus();
  }, []);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const missing: Record<string, string> = {};
    if (!author.trim()) missing.author = "Say who you are";
    if (!comment.trim()) missing.comment = "Say what you are doing about it";
    setFields(missing);
    if (Object.keys(missing).length) {
      setError("The acknowledgement was not sent: see the fields marked below.");
      return;
    }
    setBusy(true);
    try {
      await sendJson("POST", `/api/incidents/${encodeURIComponent(incident.id)}/ack`, { author, comment });
      setError(null);
      onDone();
    } catch (err) {
      setFields(err instanceof ApiError ? err.fields : {});
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={form} className="inline-form" onSubmit={submit} noValidate aria-label={`Acknowledge ${incidentTitle(incident)}`} data-testid="ack-form">
      <FormStatus error={error} done={null} />
      <div className="form-grid">
        <Field id={`${uid}-author`} label="Your name" error={fields.author}>
          {(p) => <input {...p} type="text" autoComplete="name" maxLength={100} value={author} onChange={(e) => setAuthor(e.target.value)} />}
        </Field>
        <Field id={`${uid}-comment`} label="What are you doing about it?" error={fields.comment} hint="No more reminders are sent for it; its recovery still is.">
          {(p) => <textarea {...p} rows={2} maxLength={1000} value={comment} onChange={(e) => setComment(e.target.value)} />}
        </Field>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Acknowledging…" : "Acknowledge"}
        </button>
        {onCancel && (
          <button type="button" className="btn" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

function IncidentItem({ incident, onChanged }: { incident: Incident; onChanged: () => void }) {
  const [acking, setAcking] = useState(false);
  const firing = incident.status === "firing";
  return (
    <li className={`alert-item incident-item ${firing ? "alert-active" : "alert-resolved"}`} data-testid="incident" data-incident-id={incident.id}>
      <StatusBadge incident={incident} />
      <div className="incident-body">
        <div className="alert-title">
          <a href={incidentHref(incident.id)}>{incidentTitle(incident)}</a>
          {incident.severity ? <span className="muted"> ({incident.severity})</span> : null}{" "}
          {incident.acknowledgement && <AckBadge ack={incident.acknowledgement} />}
        </div>
        <div className="alert-msg">{incident.summary}</div>
        {incident.inhibited_by && <div className="muted incident-when">Held back: explained by {causeText(incident.inhibited_by)}</div>}
        <div className="muted incident-when">
          opened {when(incident.opened_at)}
          {incident.resolved_at ? ` · resolved ${when(incident.resolved_at)}` : ""}
        </div>
        <Notifications notes={incident.notifications} />
        {firing && !incident.acknowledgement && !acking && (
          <button type="button" className="btn btn-small" onClick={() => setAcking(true)} data-testid="ack-open">
            Acknowledge<span className="sr-only"> {incidentTitle(incident)}</span>
          </button>
        )}
        {acking && (
          <AckForm
            incident={incident}
            onCancel={() => setAcking(false)}
            onDone={() => {
              setAcking(false);
              onChanged();
            }}
          />
        )}
      </div>
    </li>
  );
}

function History({ refreshMs, rules }: { refreshMs: number; rules: string[] }) {
  const [filters, setFilters] = useState<IncidentFilters>({ status: "", rule: "", subject: "", range: "7d" });
  const [offset, setOffset] = useState(0);
  // The range is anchored when the filters change, so polling keeps one URL (no reload flicker).
  const url = useMemo(() => incidentsUrl(filters, offset, Date.now()), [filters, offset]);
  const { data, error, loading, refresh } = usePolling<IncidentsResponse>(url, refreshMs);
  const set = (change: Partial<IncidentFilters>) => {
    setFilters((f) => ({ ...f, ...change }));
    setOffset(0);
  };
  return (
    <div className="card" data-testid="history">
      <h2 id="history-title">Incident history</h2>
      <form className="filters" role="search" aria-labelledby="history-title" onSubmit={(e) => e.preventDefault()}>
        <label className="select-label">
          Status
          <select value={filters.status} onChange={(e) => set({ status: e.target.value as IncidentFilters["status"] })} data-testid="filter-status">
            <option value="">All</option>
            <option value="firing">Firing</option>
            <option value="resolved">Resolved</option>
          </select>
        </label>
        <label className="select-label">
          Rule
          <select value={filters.rule} onChange={(e) => set({ rule: e.target.value })} data-testid="filter-rule">
            <option value="">All rules</option>
            {rules.map((r) => (
              <option key={r} value={r}>
                {ruleLabel(r)}
              </option>
            ))}
          </select>
        </label>
        <label className="select-label">
          Region
          <input type="search" value={filters.subject} placeholder="e.g. dakar" list="known-regions" onChange={(e) => set({ subject: e.target.value })} data-testid="filter-subject" />
        </label>
        <label className="select-label">
          Time range
          <select value={filters.range} onChange={(e) => set({ range: e.target.value })} data-testid="filter-range">
            {RANGES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
      </form>
      {error && <ErrorBanner message={error} retrySeconds={refreshMs / 1000} stale={!!data} />}
      {loading && !data && <Loading what="incidents" />}
      {data && data.incidents.length === 0 && (
        <Empty title="No incident matches.">Incidents appear here when a rule of the alerting service fires.</Empty>
      )}
      {data && data.incidents.length > 0 && (
        <>
          <p className="hint hint-top" aria-live="polite">
            {data.total} incident{data.total === 1 ? "" : "s"}, newest first
            {data.total > PAGE_SIZE ? ` · showing ${offset + 1}–${offset + data.incidents.length}` : ""}.
          </p>
          <ul className="alerts" aria-label="Incidents">
            {data.incidents.map((i) => (
              <IncidentItem key={i.id} incident={i} onChanged={refresh} />
            ))}
          </ul>
          {data.total > PAGE_SIZE && (
            <div className="form-actions">
              <button type="button" className="btn" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
                Newer
              </button>
              <button type="button" className="btn" disabled={offset + PAGE_SIZE >= data.total} onClick={() => setOffset(offset + PAGE_SIZE)}>
                Older
              </button>
            </div>
          )}
        </>
      )}
    </div>
  );
}

function SilenceCreator({ rules, maxSeconds, onDone }: { rules: string[]; maxSeconds: number; onDone: () => void }) {
  const [author, setAuthor] = useAuthor();
  const [form, setForm] = useState<Omit<SilenceForm, "author">>({ rule: "", subject: "", mode: "duration", duration: "3600", until: "", comment: "" });
  const [fields, setFields] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const update = (change: Partial<SilenceForm>) => setForm((f) => ({ ...f, ...change }));

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setDone(null);
    const built = silenceRequest({ ...form, author });
    if ("errors" in built) {
      setFields(built.errors);
      setError("The silence was not created: see the fields marked below.");
      return;
    }
    setBusy(true);
    try {
      const { silence } = await sendJson<{ silence: Silence }>("POST", "/api/silences", built.body);
      setFields({});
      setError(null);
      setDone(`Silence created: ${matcherText(silence)} until ${when(silence.ends_at)}.`);
      update({ subject: "", comment: "" });
      onDone();
    } catch (err) {
      setFields(err instanceof ApiError ? err.fields : {});
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} noValidate aria-labelledby="new-silence-title" data-testid="silence-form">
      <h3 id="new-silence-title">New silence</h3>
      <p className="hint hint-top">
        While it lasts, the incidents it matches are recorded with their notifications marked “silenced” instead of
        being sent to Slack. At most {Math.round(maxSeconds / 86400)} days.
      </p>
      <FormStatus error={error} done={done} />
      <div className="form-grid">
        <Field id="silence-rule" label="Rule" error={fields.rule}>
          {(p) => (
            <select {...p} value={form.rule} onChange={(e) => update({ rule: e.target.value })}>
              <option value="">Any rule</option>
              {rules.map((r) => (
                <option key={r} value={r}>
                  {ruleLabel(r)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field id="silence-subject" label="Region (or service)" hint="A region id, e.g. dakar; empty: every region" error={fields.subject}>
          {(p) => <input {...p} type="text" list="known-regions" maxLength={128} value={form.subject} onChange={(e) => update({ subject: e.target.value })} />}
        </Field>
        <fieldset className="field">
          <legend>Ends</legend>
          <div className="radio-row">
            <label>
              <input type="radio" name="silence-mode" checked={form.mode === "duration"} onChange={() => update({ mode: "duration" })} /> after
            </label>
            <label>
              <input type="radio" name="silence-mode" checked={form.mode === "until"} onChange={() => update({ mode: "until" })} /> at
            </label>
          </div>
          {form.mode === "duration" ? (
            <Field id="silence-duration" label="Duration" error={fields.duration_seconds}>
              {(p) => (
                <select {...p} value={form.duration} onChange={(e) => update({ duration: e.target.value })}>
                  {DURATIONS.map((d) => (
                    <option key={d.value} value={d.value}>
                      {d.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          ) : (
            <Field id="silence-until" label="End (your local time)" error={fields.ends_at}>
              {(p) => <input {...p} type="datetime-local" value={form.until} onChange={(e) => update({ until: e.target.value })} />}
            </Field>
          )}
        </fieldset>
        <Field id="silence-comment" label="Why" error={fields.comment}>
          {(p) => <textarea {...p} rows={2} maxLength={1000} value={form.comment} onChange={(e) => update({ comment: e.target.value })} />}
        </Field>
        <Field id="silence-author" label="Your name" error={fields.author}>
          {(p) => <input {...p} type="text" autoComplete="name" maxLength={100} value={author} onChange={(e) => setAuthor(e.target.value)} />}
        </Field>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Creating…" : "Create silence"}
        </button>
      </div>
    </form>
  );
}

const SILENCE_BADGE: Record<Silence["state"], string> = { active: "badge-late", scheduled: "badge-neutral", expired: "badge-neutral" };

function Silences({ data, error, refreshMs, onChanged }: { data: SilencesResponse | null; error: string | null; refreshMs: number; onChanged: () => void }) {
  const [actionError, setActionError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  async function expire(s: Silence) {
    setDone(null);
    try {
      await sendJson("DELETE", `/api/silences/${encodeURIComponent(s.id)}`);
      setActionError(null);
      setDone(`Silence expired: ${matcherText(s)}.`);
      onChanged();
    } catch (err) {
      setActionError(errorText(err));
    }
  }

  return (
    <div className="card" data-testid="silences">
      <h2>Silences</h2>
      {error && <ErrorBanner message={error} retrySeconds={refreshMs / 1000} stale={!!data} />}
      {!data && !error && <Loading what="silences" />}
      {data && (
        <>
          <FormStatus error={actionError} done={done} />
          {data.silences.length === 0 ? (
            <Empty title="No silence is active or recent.">Create one below, e.g. while a region's station is being moved.</Empty>
          ) : (
            <div className="table-wrap" tabIndex={0} role="region" aria-label="Silences, active first">
              <table className="table" data-testid="silences-table">
                <thead>
                  <tr>
                    <th scope="col">State</th>
                    <th scope="col">Matches</th>
                    <th scope="col">From</th>
                    <th scope="col">Until</th>
                    <th scope="col">By</th>
                    <th scope="col">Why</th>
                    <th scope="col">
                      <span className="sr-only">Action</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {data.silences.map((s) => (
                    <tr key={s.id} data-testid="silence-row" data-silence-id={s.id} data-state={s.state}>
                      <td>
                        <span className={`badge ${SILENCE_BADGE[s.state]}`}>{s.state.charAt(0).toUpperCase() + s.state.slice(1)}</span>
                      </td>
                      <th scope="row">{matcherText(s)}</th>
                      <td>{when(s.starts_at)}</td>
                      <td>{s.expired_at && s.expired_at < s.ends_at ? `${when(s.expired_at)} (expired)` : when(s.ends_at)}</td>
                      <td>{s.author}</td>
                      <td className="wrap">{s.comment}</td>
                      <td>
                        {s.state !== "expired" && (
                          <button type="button" className="btn btn-small" onClick={() => expire(s)}>
                            Expire<span className="sr-only"> the silence of {matcherText(s)}</span>
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <SilenceCreator rules={data.rules} maxSeconds={data.max_seconds} onDone={onChanged} />
        </>
      )}
    </div>
  );
}

/** Region ids for the region inputs' suggestions (a failure only loses the suggestions). */
function useRegionIds(): string[] {
  const [ids, setIds] = useState<string[]>([]);
  useEffect(() => {
    const controller = new AbortController();
    getJson<RegionsResponse>("/api/regions", controller.signal)
      .then((r) => setIds(r.regions.map((x) => x.region_id)))
      .catch(() => undefined);
    return () => controller.abort();
  }, []);
  return ids;
}

function RegionSuggestions() {
  const ids = useRegionIds();
  return (
    <datalist id="known-regions">
      {ids.map((id) => (
        <option key={id} value={id} />
      ))}
    </datalist>
  );
}

/** Shown once the server refused a write (401) or a token is kept: the write token, for this tab only. */
function WriteToken() {
  const [asked, setAsked] = useState(() => writeToken() !== "");
  const [token, setToken] = useState(writeToken);
  const [saved, setSaved] = useState<string | null>(null);
  useEffect(() => {
    const ask = () => {
      setAsked(true);
      setSaved(null);
    };
    window.addEventListener(UNAUTHORIZED_EVENT, ask);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, ask);
  }, []);
  if (!asked) return null;

  function save(e: React.FormEvent) {
    e.preventDefault();
    setWriteToken(token.trim());
    setSaved(token.trim() ? "Token kept for this tab: try again." : "Token forgotten.");
  }

  return (
    <form className="card inline-form" onSubmit={save} aria-label="Write token" data-testid="write-token">
      <p>This server needs its write token to create or expire silences and to acknowledge incidents.</p>
      <div className="form-grid">
        <Field id="write-token" label="Write token" hint="Kept in this tab only; sent with each change.">
          {(props) => <input {...props} type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />}
        </Field>
      </div>
      <button type="submit" className="btn btn-primary">Use this token</button>
      <FormStatus error={null} done={saved} />
    </form>
  );
}

export function IncidentsPage({ refreshMs }: { refreshMs: number }) {
  const silences = usePolling<SilencesResponse>("/api/silences", refreshMs);
  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          Incidents
        </h1>
        <p className="lede">What the alerting service opened, what it sent to Slack, and what was silenced or acknowledged.</p>
      </div>
      <RegionSuggestions />
      <WriteToken />
      <History refreshMs={refreshMs} rules={silences.data?.rules ?? []} />
      <Silences data={silences.data} error={silences.error} refreshMs={refreshMs} onChanged={silences.refresh} />
    </section>
  );
}

export function IncidentPage({ incidentId, refreshMs }: { incidentId: string; refreshMs: number }) {
  const { data, error, loading, refresh } = usePolling<IncidentResponse>(`/api/incidents/${encodeURIComponent(incidentId)}`, refreshMs);
  const incident = data?.incident;
  const missing = !data && error?.startsWith("404");
  return (
    <section aria-labelledby="page-title">
      <div className="crumbs">
        <a href="#/incidents">Incidents</a> / {incident ? incidentTitle(incident) : incidentId}
      </div>
      <div className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {incident ? incidentTitle(incident) : "Incident"}
        </h1>
        {incident && <StatusBadge incident={incident} />}
        {incident?.acknowledgement && <AckBadge ack={incident.acknowledgement} />}
      </div>
      {missing ? (
        <Empty title={`No incident "${incidentId}".`}>
          It may have been removed by retention. <a href="#/incidents">See every incident</a>.
        </Empty>
      ) : (
        error && <ErrorBanner message={error} retrySeconds={refreshMs / 1000} stale={!!data} />
      )}
      {loading && !data && <Loading what="the incident" />}
      <WriteToken />
      {incident && (
        <div className="two-col">
          <div className="card" data-testid="incident-detail" data-incident-id={incident.id}>
            <h2>What</h2>
            <p className="alert-msg">{incident.summary}</p>
            {incident.inhibited_by && (
              <p className="muted">Held back (nothing sent for it meanwhile): explained by {causeText(incident.inhibited_by)}.</p>
            )}
            {incident.hint && (
              <p>
                <strong>Where to look:</strong> {incident.hint}
              </p>
            )}
            <dl className="facts facts-incident">
              <div>
                <dt>Rule</dt>
                <dd>
                  <code>{incident.rule}</code>
                </dd>
              </div>
              <div>
                <dt>Subject</dt>
                <dd>{incident.region_name ?? incident.subject}</dd>
              </div>
              <div>
                <dt>Severity</dt>
                <dd>{incident.severity ?? "–"}</dd>
              </div>
              <div>
                <dt>Opened</dt>
                <dd>{when(incident.opened_at)}</dd>
              </div>
              <div>
                <dt>Resolved</dt>
                <dd>{incident.resolved_at ? when(incident.resolved_at) : "not yet"}</dd>
              </div>
              <div>
                <dt>Last seen</dt>
                <dd>{when(incident.last_seen)}</dd>
              </div>
            </dl>
            <h2 className="mt">Acknowledgement</h2>
            {incident.acknowledgement ? (
              <p data-testid="acknowledgement">
                <strong>{incident.acknowledgement.author}</strong> at {when(incident.acknowledgement.at)}: {incident.acknowledgement.comment}
              </p>
            ) : incident.status === "firing" ? (
              <AckForm incident={incident} onDone={refresh} />
            ) : (
              <p className="muted">Not acknowledged; it is resolved.</p>
            )}
          </div>
          <div className="card">
            <h2>Notifications</h2>
            {incident.notifications.length === 0 ? (
              <Empty title="No notification yet." />
            ) : (
              <div className="table-wrap" tabIndex={0} role="region" aria-label="Notifications of this incident">
                <table className="table compact" data-testid="notifications-table">
                  <thead>
                    <tr>
                      <th scope="col">Kind</th>
                      <th scope="col">Delivery</th>
                      <th scope="col">Created (UTC)</th>
                      <th scope="col">Sent (UTC)</th>
                      <th scope="col" className="num">Attempts</th>
                    </tr>
                  </thead>
                  <tbody>
                    {incident.notifications.map((n) => (
                      <tr key={n.delivery_id} data-testid="notification" data-status={n.status}>
                        <th scope="row">{n.kind}</th>
                        <td className="wrap">
                          <span className={`chip chip-${n.status}`}>{NOTIFICATION_TEXT[n.status] ?? n.status}</span>
                          {n.silenced_by && <span className="muted"> by silence {n.silenced_by.slice(0, 8)}</span>}
                          {n.last_error && <div className="muted">{n.last_error}</div>}
                        </td>
                        <td>{localTime(n.created_at, 0, true)}</td>
                        <td>{localTime(n.sent_at, 0, true)}</td>
                        <td className="num">{n.attempts ?? 0}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        </div>
      )}
    </section>
  );
}
