// Time-series charts through uPlot (bundled with its CSS: no inline style sheet, so the strict CSP
// holds): tooltips that follow the cursor, drag-to-zoom on time (double-click resets), and the
// charts of a page sharing one cursor.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useWidth } from "../hooks";

/** Dates shown in the region's own time (offset from UTC in seconds), whatever the browser's zone. */
export function regionDate(offsetSeconds: number): (ts: number) => Date {
  return (ts) => {
    const shifted = new Date((ts + offsetSeconds) * 1000);
    return new Date(shifted.getTime() + shifted.getTimezoneOffset() * 60_000);
  };
}

/** A tooltip beside the cursor listing `lines(u, idx)` (text only: no markup is ever injected). */
export function tooltipPlugin(lines: (u: uPlot, idx: number) => string[]): uPlot.Plugin {
  let tip: HTMLDivElement | null = null;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement("div");
        tip.className = "u-tooltip";
        tip.dataset.testid = "chart-tooltip";
        tip.hidden = true;
        u.over.appendChild(tip);
        u.over.addEventListener("mouseleave", () => tip && (tip.hidden = true));
      },
      setCursor: (u) => {
        const idx = u.cursor.idx;
        if (!tip) return;
        if (idx === null || idx === undefined || u.cursor.left === undefined || u.cursor.left < 0) {
          tip.hidden = true;
          return;
        }
        tip.replaceChildren(
          ...lines(u, idx).map((text, i) => {
            const row = document.createElement("div");
            row.textContent = text;
            if (i === 0) row.className = "u-tooltip-head";
            return row;
          }),
        );
        tip.hidden = false;
        const flip = u.cursor.left > u.over.clientWidth / 2;
        tip.style.left = `${flip ? u.cursor.left - tip.offsetWidth - 12 : u.cursor.left + 12}px`;
        // A cursor moved by another chart (shared cursor) can carry any height: keep the tip inside this one.
        const room = Math.max(0, u.over.clientHeight - tip.offsetHeight);
        const top = u.cursor.top !== undefined && u.cursor.top >= 0 ? u.cursor.top - tip.offsetHeight / 2 : room / 2;
        tip.style.top = `${Math.min(room, Math.max(0, top))}px`;
      },
    },
  };
}

/** Marks the chart's element while it is zoomed in, for people (the reset hint) and for tests. */
function zoomPlugin(onZoom: (zoomed: boolean) => void): uPlot.Plugin {
  return {
    hooks: {
      setScale: (u, key) => {
        if (key !== "x") return;
        const xs = u.data[0];
        const min = u.scales.x.min ?? xs[0];
        const max = u.scales.x.max ?? xs[xs.length - 1];
        onZoom(xs.length > 1 && (min > xs[0] + 1 || max < xs[xs.length - 1] - 1));
      },
    },
  };
}

export interface UChartProps {
  /** Everything but size; rebuilt when `optionsKey` changes (units, series set), data updated in place. */
  options: Omit<uPlot.Options, "width" | "height">;
  optionsKey: string;
  data: uPlot.AlignedData;
  height: number;
  testId: string;
  label: string;
}

export function UChart({ options, optionsKey, data, height, testId, label }: UChartProps) {
  const [ref, width] = useWidth<HTMLDivElement>(720);
  const host = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const latest = useRef(data);
  latest.current = data;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const setZoomed = (z: boolean) => {
      if (ref.current) ref.current.dataset.zoomed = String(z);
    };
    const u = new uPlot(
      { ...options, width, height, plugins: [...(options.plugins ?? []), zoomPlugin(setZoomed)] },
      latest.current,
      el,
    );
    chart.current = u;
    return () => {
      u.destroy();
      chart.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [optionsKey, height]);

  useEffect(() => {
    chart.current?.setSize({ width, height });
  }, [width, height]);

  useEffect(() => {
    // Keep a zoom across a poll: only reset the scales when the user is not zoomed in.
    const zoomed = ref.current?.dataset.zoomed === "true";
    chart.current?.setData(data, !zoomed);
  }, [data, ref]);

  return (
    <div ref={ref} className="uchart" data-testid={testId} data-points={data[0].length} role="img" aria-label={label}>
      <div ref={host} />
    </div>
  );
}
