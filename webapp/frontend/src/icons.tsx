// Weather icons drawn here (no icon font, no CDN), one per OpenWeatherMap icon code family:
// 01 clear, 02 few clouds, 03/04 clouds, 09 showers, 10 rain, 11 thunderstorm, 13 snow, 50 mist;
// "d"/"n" picks the sun or the moon.

const SUN = "#d97706";
const MOON = "#6366f1";
const CLOUD = "#94a3b8";
const CLOUD_DARK = "#64748b";
const RAIN = "#2563eb";
const BOLT = "#eab308";
const SNOW = "#0284c7";

function Sun({ cx, cy, r }: { cx: number; cy: number; r: number }) {
  const rays = Array.from({ length: 8 }, (_, i) => {
    const a = (i * Math.PI) / 4;
    return (
      <line
        key={i}
        x1={cx + Math.cos(a) * (r + 4)}
        y1={cy + Math.sin(a) * (r + 4)}
        x2={cx + Math.cos(a) * (r + 9)}
        y2={cy + Math.sin(a) * (r + 9)}
        stroke={SUN}
        strokeWidth={3}
        strokeLinecap="round"
      />
    );
  });
  return (
    <g>
      {rays}
      <circle cx={cx} cy={cy} r={r} fill={SUN} />
    </g>
  );
}

function Moon({ cx, cy, r }: { cx: number; cy: number; r: number }) {
  // A crescent: a disc minus an offset disc.
  return (
    <path
      d={`M${cx + r * 0.2} ${cy - r} A${r} ${r} 0 1 0 ${cx + r} ${cy + r * 0.35} A${r * 0.8} ${r * 0.8} 0 0 1 ${cx + r * 0.2} ${cy - r} Z`}
      fill={MOON}
    />
  );
}

function Cloud({ dx = 0, dy = 0, fill = CLOUD, scale = 1 }: { dx?: number; dy?: number; fill?: string; scale?: number }) {
  return (
    <g transform={`translate(${dx} ${dy}) scale(${scale})`} fill={fill}>
      <circle cx={22} cy={38} r={10} />
      <circle cx={35} cy={31} r={13} />
      <circle cx={47} cy={39} r={9} />
      <rect x={12} y={38} width={44} height={11} rx={5.5} />
    </g>
  );
}

function Drops({ color = RAIN }: { color?: string }) {
  return (
    <g stroke={color} strokeWidth={3} strokeLinecap="round">
      <line x1={24} y1={53} x2={21} y2={60} />
      <line x1={34} y1={53} x2={31} y2={60} />
      <line x1={44} y1={53} x2={41} y2={60} />
    </g>
  );
}

function Flakes() {
  return (
    <g stroke={SNOW} strokeWidth={2.5} strokeLinecap="round">
      {[22, 34, 46].map((x) => (
        <g key={x}>
          <line x1={x} y1={52} x2={x} y2={61} />
          <line x1={x - 4} y1={54.5} x2={x + 4} y2={58.5} />
          <line x1={x - 4} y1={58.5} x2={x + 4} y2={54.5} />
        </g>
      ))}
    </g>
  );
}

function Celestial({ night, small }: { night: boolean; small?: boolean }) {
  const [cx, cy, r] = small ? [22, 20, 8] : [32, 32, 12];
  return night ? <Moon cx={cx} cy={cy} r={r + 2} /> : <Sun cx={cx} cy={cy} r={r} />;
}

export function iconKind(icon: string | null | undefined, main: string | null | undefined): string {
  const code = icon?.slice(0, 2);
  if (code && ["01", "02", "03", "04", "09", "10", "11", "13", "50"].includes(code)) return code;
  switch ((main ?? "").toLowerCase()) {
    case "clear":
      return "01";
    case "rain":
      return "10";
    case "drizzle":
      return "09";
    case "thunderstorm":
      return "11";
    case "snow":
      return "13";
    case "mist":
    case "fog":
    case "haze":
    case "dust":
    case "smoke":
    case "sand":
      return "50";
    default:
      return "03";
  }
}

export function WeatherIcon({
  icon,
  main,
  label,
  size = 56,
}: {
  icon: string | null | undefined;
  main?: string | null;
  label: string;
  size?: number;
}) {
  const kind = iconKind(icon, main);
  const night = icon?.endsWith("n") ?? false;
  let body: React.ReactNode;
  switch (kind) {
    case "01":
      body = <Celestial night={night} />;
      break;
    case "02":
      body = (
        <>
          <Celestial night={night} small />
          <Cloud dy={2} />
        </>
      );
      break;
    case "04":
      body = (
        <>
          <Cloud dx={-6} dy={-10} fill={CLOUD_DARK} scale={0.9} />
          <Cloud dx={4} dy={2} />
        </>
      );
      break;
    case "09":
      body = (
        <>
          <Cloud dy={-6} fill={CLOUD_DARK} />
          <Drops />
        </>
      );
      break;
    case "10":
      body = (
        <>
          <Celestial night={night} small />
          <Cloud dy={-4} />
          <Drops />
        </>
      );
      break;
    case "11":
      body = (
        <>
          <Cloud dy={-6} fill={CLOUD_DARK} />
          <path d="M36 44 L28 55 H34 L30 63 L41 50 H35 L39 44 Z" fill={BOLT} stroke="#854d0e" strokeWidth={1} />
        </>
      );
      break;
    case "13":
      body = (
        <>
          <Cloud dy={-6} />
          <Flakes />
        </>
      );
      break;
    case "50":
      body = (
        <g stroke={CLOUD_DARK} strokeWidth={3.5} strokeLinecap="round">
          <line x1={12} y1={22} x2={52} y2={22} />
          <line x1={8} y1={32} x2={46} y2={32} />
          <line x1={16} y1={42} x2={56} y2={42} />
          <line x1={10} y1={52} x2={44} y2={52} />
        </g>
      );
      break;
    default:
      body = <Cloud dy={-4} />;
  }
  return (
    <svg
      viewBox="0 0 64 64"
      width={size}
      height={size}
      role="img"
      aria-label={label}
      data-testid="weather-icon"
      data-icon={`${kind}${night ? "n" : "d"}`}
      className="weather-icon"
    >
      <title>{label}</title>
      {body}
    </svg>
  );
}
