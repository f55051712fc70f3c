import { useCallback, useEffect, useRef, useState } from "react";
import { getJson } from "./api";
import type { Units } from "./format";

export interface Polled<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  updatedAt: Date | null;
}

export interface PolledWithRefresh<T> extends Polled<T> {
  /** Poll now (after a change the page made), keeping the data on screen meanwhile. */
  refresh: () => void;
}

/** Fetch `url` now and then every `intervalMs`, without reloading the page. The last good
 * data stays on screen when a poll fails; the error is reported beside it. */
export function usePolling<T>(url: string | null, intervalMs: number): PolledWithRefresh<T> {
  const [state, setState] = useState<Polled<T>>({ data: null, error: null, loading: true, updatedAt: null });
  const now = useRef<() => void>(() => undefined);
  // The interval is read at each tick rather than restarting the poll: the refresh period arrives
  // from /api/config after the first render, and restarting would blank every page once.
  const interval = useRef(intervalMs);
  interval.current = intervalMs;
  useEffect(() => {
    if (!url) return;
    let stopped = false;
    let timer: number | undefined;
    let controller: AbortController | null = null;
    setState({ data: null, error: null, loading: true, updatedAt: null });
    const tick = async () => {
      controller = new AbortController();
      try {
        const data = await getJson<T>(url, controller.signal);
        if (!stopped) setState({ data, error: null, loading: false, updatedAt: new Date() });
      } catch (err) {
        if (stopped || (err as Error).name === "AbortError") return;
        setState((prev) => ({ ...prev, error: (err as Error).message, loading: false }));
      }
      if (!stopped) timer = window.setTimeout(tick, interval.current);
    };
    now.current = () => {
      controller?.abort();
      window.clearTimeout(timer);
      tick();
    };
    tick();
    return () => {
      stopped = true;
      controller?.abort();
      window.clearTimeout(timer);
    };
  }, [url]);
  const refresh = useCallback(() => now.current(), []);
  return { ...state, refresh };
}

export type Route =
  | { page: "overview" }
  | { page: "region"; regionId: string }
  | { page: "status" }
  | { page: "quality" }
  | { page: "incidents" }
  | { page: "incident"; incidentId: string }
  | { page: "missing"; path: string };

function decoded(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null; // a malformed %-escape: no such page
  }
}

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/";
  if (path === "/" || path === "") return { page: "overview" };
  if (path === "/status") return { page: "status" };
  if (path === "/quality") return { page: "quality" };
  if (path === "/incidents") return { page: "incidents" };
  const m = path.match(/^\/region\/([^/]+)$/);
  if (m && decoded(m[1]) !== null) return { page: "region", regionId: decoded(m[1])! };
  const i = path.match(/^\/incidents\/([^/]+)$/);
  if (i && decoded(i[1]) !== null) return { page: "incident", incidentId: decoded(i[1])! };
  return { page: "missing", path };
}

export function useHashRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

const UNITS_KEY = "meteoflow.units";

export function useUnits(): [Units, (u: Units) => void] {
  const [units, setUnitsState] = useState<Units>(() => {
    try {
      return window.localStorage.getItem(UNITS_KEY) === "F" ? "F" : "C";
    } catch {
      return "C";
    }
  });
  const setUnits = useCallback((u: Units) => {
    setUnitsState(u);
    try {
      window.localStorage.setItem(UNITS_KEY, u);
    } catch {
      /* private mode: the choice lasts for this page only */
    }
  }, []);
  return [units, setUnits];
}

/** Width of an element, kept up to date (for charts drawn at their real pixel size). */
export function useWidth<T extends HTMLElement>(fallback: number): [React.RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(fallback);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const update = () => setWidth(Math.max(240, Math.floor(el.getBoundingClientRect().width)));
    update();
    const observer = new ResizeObserver(update);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}
