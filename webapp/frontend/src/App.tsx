import { useEffect, useRef, useState } from "react";
import type { ConfigResponse } from "./api";
import { getJson } from "./api";
import { useHashRoute, useUnits } from "./hooks";
import { Overview } from "./pages/Overview";
import { IncidentPage, IncidentsPage } from "./pages/Incidents";
import { QualityPage } from "./pages/Quality";
import { RegionPage } from "./pages/Region";
import { StatusPage } from "./pages/Status";
import { Empty } from "./components/common";

const DEFAULT_REFRESH_MS = 5000;

function useRefreshMs(): number {
  const [ms, setMs] = useState(DEFAULT_REFRESH_MS);
  useEffect(() => {
    getJson<ConfigResponse>("/api/config")
      .then((c) => setMs(Math.max(1000, c.refresh_seconds * 1000)))
      .catch(() => undefined); // the default interval is fine when the config cannot be read
  }, []);
  return ms;
}

export function App() {
  const route = useHashRoute();
  const [units, setUnits] = useUnits();
  const refreshMs = useRefreshMs();
  const first = useRef(true);

  // Move focus to the new page's heading so keyboard and screen-reader users land on it.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    window.scrollTo(0, 0);
    window.setTimeout(() => document.getElementById("page-title")?.focus(), 0);
  }, [route]);

  const nav = [
    { href: "#/", label: "Overview", active: route.page === "overview" || route.page === "region" },
    { href: "#/quality", label: "Forecast quality", active: route.page === "quality" },
    { href: "#/status", label: "Pipeline health", active: route.page === "status" },
    { href: "#/incidents", label: "Incidents", active: route.page === "incidents" || route.page === "incident" },
  ];

  return (
    <>
      <a className="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("page-title")?.focus(); }}>
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <a href="#/" className="brand" aria-label="Meteoflow, overview">
            <svg viewBox="0 0 64 64" width={28} height={28} aria-hidden="true">
              <circle cx="26" cy="26" r="10" fill="#f59e0b" />
              <g fill="#e2e8f0">
                <circle cx="28" cy="40" r="9" />
                <circle cx="40" cy="34" r="12" />
                <circle cx="50" cy="42" r="7" />
                <rect x="20" y="40" width="36" height="9" rx="4.5" />
              </g>
            </svg>
            <span>Meteoflow</span>
          </a>
          <nav aria-label="Main">
            <ul className="nav">
              {nav.map((n) => (
                <li key={n.href}>
                  <a href={n.href} aria-current={n.active ? "page" : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <div className="units" role="group" aria-label="Temperature units">
            {(["C", "F"] as const).map((u) => (
              <button key={u} type="button" aria-pressed={units === u} onClick={() => setUnits(u)} data-testid={`units-${u}`}>
                °{u}
              </button>
            ))}
          </div>
        </div>
      </header>
      <main id="main" className="container">
        {route.page === "overview" && <Overview units={units} refreshMs={refreshMs} />}
        {route.page === "region" && <RegionPage key={route.regionId} regionId={route.regionId} units={units} refreshMs={refreshMs} />}
        {route.page === "quality" && <QualityPage units={units} refreshMs={refreshMs} />}
        {route.page === "status" && <StatusPage refreshMs={refreshMs} />}
        {route.page === "incidents" && <IncidentsPage refreshMs={refreshMs} />}
        {route.page === "incident" && <IncidentPage key={route.incidentId} incidentId={route.incidentId} refreshMs={refreshMs} />}
        {route.page === "missing" && (
          <section aria-labelledby="page-title">
            <h1 id="page-title" tabIndex={-1}>Page not found</h1>
            <Empty title={`Nothing at "${route.path}".`}>
              <a href="#/">Go to the overview</a>.
            </Empty>
          </section>
        )}
      </main>
      <footer className="footer container">
        Live data from the Meteoflow pipeline · refreshes every {Math.round(refreshMs / 1000)} s
      </footer>
    </>
  );
}
