// An offline map of the regions: Senegal's outline (Natural Earth, public domain, shipped in
// src/map/senegal.json) with a dot per region at its observation's lat/lon, coloured by
// temperature or freshness. No tiles, nothing fetched.
import { useState } from "react";
import type { OverviewCard } from "../api";
import type { Units } from "../format";
import { formatTemp } from "../format";
import outline from "../map/senegal.json";
import { freshnessColour, projection, ringPath, temperatureColour } from "../weather";
import { useWidth } from "../hooks";

type Colouring = "temperature" | "freshness";
const RINGS: number[][][] = (outline.geometry.coordinates as number[][][][]).flat();

export function RegionMap({ cards, units }: { cards: OverviewCard[]; units: Units }) {
  const [colouring, setColouring] = useState<Colouring>("temperature");
  const [ref, measured] = useWidth<HTMLDivElement>(560);
  const width = Math.min(560, measured - 40);
  const proj = projection(RINGS, width);
  const placed = cards.filter((c) => c.region.latest);
  return (
    <div className="card map-card" ref={ref}>
      <div className="card-title-row">
        <h2>Map</h2>
        <div className="segmented" role="group" aria-label="Colour the regions by">
          {(["temperature", "freshness"] as const).map((c) => (
            <button key={c} type="button" aria-pressed={colouring === c} onClick={() => setColouring(c)} data-testid={`map-by-${c}`}>
              {c === "temperature" ? "Temperature" : "Freshness"}
            </button>
          ))}
        </div>
      </div>
      <svg width={proj.width} height={proj.height} role="img" aria-labelledby="map-title" data-testid="region-map" data-colouring={colouring}>
        <title id="map-title">
          {`Map of Senegal with ${placed.length} regions coloured by ${colouring}: ` +
            placed.map((c) => `${c.region.region_name} ${colouring === "temperature" ? formatTemp(c.region.latest!.temp, units) : c.region.freshness}`).join(", ")}
        </title>
        {RINGS.map((ring, i) => (
          <path key={i} d={ringPath(ring, proj)} className="map-land" />
        ))}
        {placed.map((c) => {
          const o = c.region.latest!;
          const [x, y] = proj.project(o.lon, o.lat);
          const colour = colouring === "temperature" ? temperatureColour(o.temp) : freshnessColour(c.region.freshness);
          return (
            <a key={c.region.region_id} href={`#/region/${encodeURIComponent(c.region.region_id)}`} data-testid="map-region"
               data-region-id={c.region.region_id} data-colour={colour}>
              <circle cx={x} cy={y} r={9} fill={colour} className="map-dot" />
              <text x={x + 12} y={y + 4} className="map-label">
                {c.region.region_name} {colouring === "temperature" ? formatTemp(o.temp, units) : ""}
              </text>
            </a>
          );
        })}
      </svg>
      <p className="hint">
        {colouring === "temperature"
          ? "Colour: the latest observed temperature, blue (cool) to red (hot)."
          : "Colour: green fresh, amber late, red silent (the same thresholds as the alerts)."}{" "}
        Outline: Natural Earth (public domain).
      </p>
    </div>
  );
}
