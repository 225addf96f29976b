// Charts of analytics runs, drawn as SVG: a time series chart with interval bands, anomaly
// markers and shaded anomaly windows (forecast, anomaly, baseline runs), and the load-profile
// chart of a clustering run (one curve per day type, and a calendar of the days by type).
import { useEffect, useMemo, useRef, useState, type MouseEvent, type RefObject } from "react";
import type { ChartBand, ProfilesChartData, TimeseriesChartData } from "../api/analytics";
import { formatDateTimeSeconds, formatExact, formatValue, zoneOffsetMs } from "../lib/telemetryFormat";
import { SERIES_COLORS } from "./TimeSeriesChart";

const MARGIN = { top: 16, bottom: 30, left: 64, right: 18 };
const TIME_STEPS = [60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000].map((s) => s * 1000);

function useWidth(): [RefObject<HTMLDivElement | null>, number] {
  const ref = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  useEffect(() => {
    const box = ref.current;
    if (!box) return;
    const measure = () => setWidth(Math.max(320, Math.floor(box.clientWidth)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(box);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

function niceScale(min: number, max: number, count: number): { min: number; max: number; ticks: number[] } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { min: 0, max: 1, ticks: [0, 0.5, 1] };
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
  return { min: lo, max: hi, ticks };
}

function tickText(value: number, ticks: number[]): string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : 1;
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toFixed(abs >= 1e7 ? 0 : 1)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(abs >= 1e5 ? 0 : 1)}k`;
  return value.toFixed(step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step))));
}

function timeTicks(start: number, end: number, width: number, timeZone?: string): { ticks: number[]; step: number } {
  const span = Math.max(1, end - start);
  const wanted = Math.max(2, Math.floor(width / 100));
  const step = TIME_STEPS.find((s) => span / s <= wanted) ?? TIME_STEPS[TIME_STEPS.length - 1]!;
  const offset = step >= 3600_000 ? zoneOffsetMs((start + end) / 2, timeZone) : 0;
  const ticks: number[] = [];
  for (let t = Math.ceil((start + offset) / step) * step - offset; t <= end; t += step) ticks.push(t);
  return { ticks, step };
}

function timeText(ms: number, step: number, timeZone?: string): string {
  const opts: Intl.DateTimeFormatOptions =
    step < 86_400_000 ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" } : { day: "numeric", month: "short" };
  try {
    const text = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone }).format(new Date(ms));
    if (step >= 3600_000 && step < 86_400_000 && text === "00:00") {
      return new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", timeZone }).format(new Date(ms));
    }
    return text;
  } catch {
    return new Date(ms).toISOString().slice(5, 16).replace("T", " ");
  }
}

/** Index of the point nearest in time to `t` in a sorted list, or -1. */
function nearest<P extends [number, ...unknown[]]>(points: P[], t: number): number {
  if (!points.length) return -1;
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid]![0] < t) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(points[lo - 1]![0] - t) <= Math.abs(points[lo]![0] - t)) return lo - 1;
  return lo;
}

/** The usual gap between points; a jump of several of these is drawn as a break in the line. */
function typicalStep(times: number[]): number {
  if (times.length < 3) return Number.POSITIVE_INFINITY;
  const deltas: number[] = [];
  const stride = Math.max(1, Math.floor(times.length / 200));
  for (let i = stride; i < times.length; i += stride) deltas.push(times[i]! - times[i - stride]!);
  deltas.sort((a, b) => a - b);
  return (deltas[Math.floor(deltas.length / 2)] ?? 0) / stride;
}

function colourOf(name: string, index: number): string {
  const n = name.toLowerCase();
  if (n === "actual") return "#374151";
  if (n === "predicted" || n === "forecast" || n === "baseline") return "#2563eb";
  return SERIES_COLORS[index % SERIES_COLORS.length]!;
}

/** The band drawn around the series it belongs to: same colour as the predicted line. */
function bandColour(band: ChartBand, series: { name: string; color: string }[]): string {
  const predicted = series.find((s) => ["predicted", "forecast", "baseline"].includes(s.name.toLowerCase()));
  return series.find((s) => band.name.toLowerCase().includes(s.name.toLowerCase()))?.color ?? predicted?.color ?? "#2563eb";
}

/** The series an "anomaly: <series>" marker list belongs to. */
function seriesOfMarker<S extends { name: string }>(marker: string, series: S[]): S | undefined {
  const name = marker.replace(/^anomal(y|ies)\s*:\s*/i, "");
  return series.find((s) => s.name === name);
}

function linePath(points: [number, number | null][], x: (t: number) => number, y: (v: number) => number): string {
  const gap = typicalStep(points.map((p) => p[0])) * 5;
  let d = "";
  let prev: number | null = null;
  for (const [t, v] of points) {
    if (v === null) {
      prev = null;
      continue;
    }
    const cmd = prev === null || t - prev > gap ? "M" : "L";
    d += `${cmd}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    prev = t;
  }
  return d;
}

function bandPath(points: [number, number, number][], x: (t: number) => number, y: (v: number) => number): string {
  if (!points.length) return "";
  const gap = typicalStep(points.map((p) => p[0])) * 5;
  const pieces: [number, number, number][][] = [[]];
  let prev: number | null = null;
  for (const p of points) {
    if (prev !== null && p[0] - prev > gap) pieces.push([]);
    pieces[pieces.length - 1]!.push(p);
    prev = p[0];
  }
  return pieces
    .filter((piece) => piece.length > 0)
    .map((piece) => {
      const top = piece.map(([t, , hi]) => `${x(t).toFixed(1)},${y(hi).toFixed(1)}`);
      const bottom = [...piece].reverse().map(([t, lo]) => `${x(t).toFixed(1)},${y(lo).toFixed(1)}`);
      return `M${top.join("L")}L${bottom.join("L")}Z`;
    })
    .join("");
}

interface Props {
  data: TimeseriesChartData;
  timeZone?: string;
  height?: number;
  label?: string;
  /** Unit of the values, shown above the value axis (e.g. "kWh"). */
  unit?: string;
}

/** Lines of the run's series, its interval bands, anomaly markers and shaded anomaly windows. */
export function AnalyticsTimeseriesChart({ data, timeZone, height = 340, label, unit = data.unit }: Props) {
  const [boxRef, width] = useWidth();
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const [hoverT, setHoverT] = useState<number | null>(null);

  const series = useMemo(() => data.series.map((s, i) => ({ ...s, color: colourOf(s.name, i) })), [data.series]);
  const visibleSeries = series.filter((s) => !hidden.has(`s:${s.name}`));
  const visibleBands = data.bands.filter((b) => !hidden.has(`b:${b.name}`));
  const visibleMarkers = data.markers.filter((m) => !hidden.has(`m:${m.name}`));
  const showWindows = !hidden.has("windows");
  const showLabels = !hidden.has("labels");

  const { start, end } = useMemo(() => {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    const see = (t: number) => {
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    };
    for (const s of data.series) for (const [t] of s.points) see(t);
    for (const b of data.bands) for (const [t] of b.points) see(t);
    for (const m of data.markers) for (const [t] of m.points) see(t);
    for (const w of [...data.windows, ...data.labelWindows]) {
      see(w.start);
      see(w.end);
    }
    if (!Number.isFinite(lo)) return { start: 0, end: 1 };
    if (lo === hi) return { start: lo - 3600_000, end: hi + 3600_000 };
    return { start: lo, end: hi };
  }, [data]);

  const scale = useMemo(() => {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    const see = (v: number | null) => {
      if (v === null) return;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    };
    for (const s of visibleSeries) for (const [, v] of s.points) see(v);
    for (const b of visibleBands)
      for (const [, a, c] of b.points) {
        see(a);
        see(c);
      }
    for (const m of visibleMarkers) for (const [, v] of m.points) see(v);
    return niceScale(lo, hi, Math.max(3, Math.floor(height / 60)));
  }, [visibleSeries, visibleBands, visibleMarkers, height]);

  const plotW = Math.max(10, width - MARGIN.left - MARGIN.right);
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x = (t: number) => MARGIN.left + ((t - start) / Math.max(1, end - start)) * plotW;
  const y = (v: number) => MARGIN.top + plotH - ((v - scale.min) / (scale.max - scale.min || 1)) * plotH;
  const { ticks: xTicks, step: xStep } = timeTicks(start, end, plotW, timeZone);
  const markerCount = data.markers.reduce((n, m) => n + m.points.length, 0);
  const total = data.series.reduce((n, s) => n + s.points.length, 0) + markerCount;

  const hover = useMemo(() => {
    if (hoverT === null) return null;
    let snap: number | null = null;
    for (const s of [...visibleSeries, ...visibleMarkers]) {
      const i = nearest(s.points, hoverT);
      if (i < 0) continue;
      const t = s.points[i]![0];
      if (snap === null || Math.abs(t - hoverT) < Math.abs(snap - hoverT)) snap = t;
    }
    if (snap === null) return null;
    const tolerance = Math.max((end - start) / 500, 1000);
    const at = <P extends [number, ...unknown[]]>(points: P[]): P | null => {
      const i = nearest(points, snap);
      const p = i >= 0 ? points[i]! : null;
      return p && Math.abs(p[0] - snap) <= tolerance ? p : null;
    };
    return {
      t: snap,
      rows: visibleSeries.map((s) => ({ name: s.name, color: s.color, value: at(s.points)?.[1] ?? null })),
      bands: visibleBands.map((b) => ({ name: b.name, point: at(b.points) })),
      markers: visibleMarkers.map((m) => ({ name: m.name, point: at(m.points) })).filter((m) => m.point),
      inWindow: showWindows && data.windows.some((w) => snap >= w.start && snap <= w.end),
    };
  }, [hoverT, visibleSeries, visibleBands, visibleMarkers, showWindows, data.windows, start, end]);

  const onMove = (e: MouseEvent<SVGSVGElement>) => {
    const px = e.clientX - e.currentTarget.getBoundingClientRect().left;
    if (px < MARGIN.left || px > MARGIN.left + plotW) {
      setHoverT(null);
      return;
    }
    setHoverT(start + ((px - MARGIN.left) / plotW) * (end - start));
  };

  const toggle = (key: string) =>
    setHidden((h) => {
      const next = new Set(h);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      return next;
    });

  const hoverX = hover ? x(hover.t) : 0;
  const flip = hoverX > width * 0.6;

  return (
    <div className="chart analytics-chart" data-testid="analytics-chart" data-markers={markerCount} data-windows={data.windows.length}>
      <div className="chart-legend analytics-legend" role="group" aria-label="Chart layers">
        {series.map((s) => (
          <button key={`s:${s.name}`} type="button" className="legend-item legend-toggle" aria-pressed={!hidden.has(`s:${s.name}`)} data-series={s.name} data-points={s.points.length} onClick={() => toggle(`s:${s.name}`)}>
            <span className="legend-swatch" style={{ background: s.color }} />
            <span className="legend-label">{s.name}</span>
          </button>
        ))}
        {data.bands.map((b) => (
          <button key={`b:${b.name}`} type="button" className="legend-item legend-toggle" aria-pressed={!hidden.has(`b:${b.name}`)} onClick={() => toggle(`b:${b.name}`)}>
            <span className="analytics-swatch-band" style={{ background: bandColour(b, series) }} />
            <span className="legend-label">{b.name}</span>
          </button>
        ))}
        {data.markers.map((m) => (
          <button key={`m:${m.name}`} type="button" className="legend-item legend-toggle" aria-pressed={!hidden.has(`m:${m.name}`)} onClick={() => toggle(`m:${m.name}`)}>
            <span className="analytics-swatch-marker" />
            <span className="legend-label">{m.name}</span>
            <span className="legend-unit">({m.points.length.toLocaleString("en-GB")})</span>
          </button>
        ))}
        {data.windows.length > 0 && (
          <button type="button" className="legend-item legend-toggle" aria-pressed={showWindows} onClick={() => toggle("windows")}>
            <span className="analytics-swatch-window" />
            <span className="legend-label">anomaly windows</span>
            <span className="legend-unit">({data.windows.length})</span>
          </button>
        )}
        {data.labelWindows.length > 0 && (
          <button type="button" className="legend-item legend-toggle" aria-pressed={showLabels} onClick={() => toggle("labels")}>
            <span className="analytics-swatch-label" />
            <span className="legend-label">labelled windows</span>
            <span className="legend-unit">({data.labelWindows.length})</span>
          </button>
        )}
      </div>
      <div className="chart-box" ref={boxRef}>
        <svg
          width={width}
          height={height}
          role="img"
          aria-label={label ?? `Chart of ${series.map((s) => s.name).join(", ")}`}
          data-points={total}
          onMouseMove={onMove}
          onMouseLeave={() => setHoverT(null)}
        >
          <rect x={MARGIN.left} y={MARGIN.top} width={plotW} height={plotH} className="chart-plot" />
          {showLabels &&
            data.labelWindows.map((w, i) => (
              <rect key={`lw${i}`} className="analytics-label-window" x={x(w.start)} y={MARGIN.top} width={Math.max(2, x(w.end) - x(w.start))} height={plotH}>
                <title>{`Labelled window: ${formatDateTimeSeconds(w.start, timeZone)} – ${formatDateTimeSeconds(w.end, timeZone)}`}</title>
              </rect>
            ))}
          {showWindows &&
            data.windows.map((w, i) => (
              <rect
                key={`w${i}`}
                className="analytics-window"
                data-testid="anomaly-window"
                x={x(w.start)}
                y={MARGIN.top}
                width={Math.max(2, x(w.end) - x(w.start))}
                height={plotH}
              >
                <title>{`Anomaly window: ${formatDateTimeSeconds(w.start, timeZone)} – ${formatDateTimeSeconds(w.end, timeZone)}`}</title>
              </rect>
            ))}
          {scale.ticks.map((v) => (
            <g key={`y${v}`}>
              <line x1={MARGIN.left} x2={MARGIN.left + plotW} y1={y(v)} y2={y(v)} className="chart-grid" />
              <text x={MARGIN.left - 8} y={y(v) + 4} textAnchor="end" className="chart-tick">
                {tickText(v, scale.ticks)}
              </text>
            </g>
          ))}
          {unit && (
            <text x={MARGIN.left - 8} y={MARGIN.top - 4} textAnchor="end" className="chart-unit">
              {unit}
            </text>
          )}
          {xTicks.map((t) => (
            <g key={`x${t}`}>
              <line x1={x(t)} x2={x(t)} y1={MARGIN.top} y2={MARGIN.top + plotH} className="chart-grid chart-grid-x" />
              <text x={x(t)} y={height - 10} textAnchor="middle" className="chart-tick">
                {timeText(t, xStep, timeZone)}
              </text>
            </g>
          ))}
          {data.guides.map((g) => (
            <g key={`g-${g.name}`} className="analytics-guide">
              <line x1={x(g.t)} x2={x(g.t)} y1={MARGIN.top} y2={MARGIN.top + plotH} />
              <text x={x(g.t) + 4} y={MARGIN.top + 12} className="chart-tick">
                {g.name}
              </text>
            </g>
          ))}
          {visibleBands.map((b) => (
            <path key={`band-${b.name}`} d={bandPath(b.points, x, y)} className="analytics-band" fill={bandColour(b, series)} data-band={b.name} />
          ))}
          {visibleSeries.map((s) => (
            <path key={`line-${s.name}`} d={linePath(s.points, x, y)} fill="none" stroke={s.color} strokeWidth={1.6} strokeLinejoin="round" data-series={s.name} />
          ))}
          {visibleMarkers.map((m) => {
            // With several series, each series' flags are filled in its colour and ringed in red.
            const fill = series.length > 1 ? seriesOfMarker(m.name, series)?.color : undefined;
            return (
              <g key={`markers-${m.name}`} data-markers={m.name}>
                {m.points.map(([t, v], i) =>
                  v === null ? null : (
                    <circle key={i} cx={x(t)} cy={y(v)} r={3.4} className={`analytics-marker${fill ? " analytics-marker-ring" : ""}`} style={fill ? { fill } : undefined} data-testid="anomaly-marker" />
                  ),
                )}
              </g>
            );
          })}
          {hover && (
            <g className="chart-hover">
              <line x1={hoverX} x2={hoverX} y1={MARGIN.top} y2={MARGIN.top + plotH} className="chart-crosshair" />
              {hover.rows.map((r) => (r.value === null ? null : <circle key={r.name} cx={hoverX} cy={y(r.value)} r={4.5} fill="#fff" stroke={r.color} strokeWidth={2} />))}
            </g>
          )}
        </svg>
        {total === 0 && <div className="chart-empty">This run has no points to draw.</div>}
        {hover && (
          <div className="chart-tooltip" role="tooltip" style={{ left: flip ? hoverX - 12 : hoverX + 12, top: MARGIN.top + 6, transform: flip ? "translateX(-100%)" : undefined }}>
            <div className="chart-tooltip-time">{formatDateTimeSeconds(hover.t, timeZone)}</div>
            {hover.rows.map((r) => (
              <div key={r.name} className="chart-tooltip-row">
                <span className="legend-swatch" style={{ background: r.color }} />
                <span className="chart-tooltip-label">{r.name}</span>
                <strong>{r.value === null ? "—" : formatExact(r.value)}</strong>
              </div>
            ))}
            {hover.bands.map((b) =>
              b.point ? (
                <div key={b.name} className="chart-tooltip-row">
                  <span className="chart-tooltip-label">{b.name}</span>
                  <strong>
                    {formatValue(b.point[1])} – {formatValue(b.point[2])}
                  </strong>
                </div>
              ) : null,
            )}
            {hover.markers.map((m) => (
              <div key={m.name} className="chart-tooltip-row analytics-tooltip-flag">
                <span className="analytics-swatch-marker" />
                <span className="chart-tooltip-label">{m.name}</span>
              </div>
            ))}
            {hover.inWindow && <div className="chart-tooltip-row analytics-tooltip-flag">inside an anomaly window</div>}
          </div>
        )}
      </div>
    </div>
  );
}

// ------------------------------------------------------------------ load profiles

const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** An hour of the day (a number, 7.25 = 07:15) or a time text as "07:15". */
function xLabel(value: number | string): string {
  if (typeof value === "number") {
    const minutes = Math.round(value * 60);
    return `${String(Math.floor(minutes / 60) % 24).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
  }
  const time = value.match(/T?(\d{2}:\d{2})/);
  return time ? time[1]! : value;
}

/** One curve per day type over the hours of the day, and the calendar of days coloured by type. */
export function AnalyticsProfileChart({ data, height = 300, unit = data.unit }: { data: ProfilesChartData; height?: number; unit?: string }) {
  const [boxRef, width] = useWidth();
  const [hover, setHover] = useState<number | null>(null);
  const colour = (cluster: number) => SERIES_COLORS[((cluster % SERIES_COLORS.length) + SERIES_COLORS.length) % SERIES_COLORS.length]!;
  const n = Math.max(data.x.length, ...data.curves.map((c) => c.values.length), 1);
  const scale = useMemo(() => {
    const values = data.curves.flatMap((c) => c.values).filter((v): v is number => v !== null);
    return niceScale(Math.min(...values), Math.max(...values), Math.max(3, Math.floor(height / 60)));
  }, [data.curves, height]);
  const plotW = Math.max(10, width - MARGIN.left - MARGIN.right);
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x = (i: number) => MARGIN.left + (n <= 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const y = (v: number) => MARGIN.top + plotH - ((v - scale.min) / (scale.max - scale.min || 1)) * plotH;
  const labelEvery = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(plotW / 60))));

  const onMove = (e: MouseEvent<SVGSVGElement>) => {
    const px = e.clientX - e.currentTarget.getBoundingClientRect().left;
    if (px < MARGIN.left - 5 || px > MARGIN.left + plotW + 5 || n <= 1) {
      setHover(null);
      return;
    }
    setHover(Math.max(0, Math.min(n - 1, Math.round(((px - MARGIN.left) / plotW) * (n - 1)))));
  };

  // The calendar: one column per week (Monday first), one row per weekday.
  const calendar = useMemo(() => {
    const days = data.calendar
      .map(([date, cluster]) => ({ date, cluster, t: Date.parse(`${date}T00:00:00Z`) }))
      .filter((d) => !Number.isNaN(d.t))
      .sort((a, b) => a.t - b.t);
    if (!days.length) return { cells: [], weeks: 0 };
    const weekday = (t: number) => (new Date(t).getUTCDay() + 6) % 7;
    const firstMonday = days[0]!.t - weekday(days[0]!.t) * 86_400_000;
    const cells = days.map((d) => ({ ...d, col: Math.floor((d.t - firstMonday) / (7 * 86_400_000)), row: weekday(d.t) }));
    return { cells, weeks: Math.max(...cells.map((c) => c.col)) + 1 };
  }, [data.calendar]);
  const cell = 16;

  return (
    <div className="analytics-profiles" data-testid="profile-chart">
      <div className="chart-legend" aria-label="Day types">
        {data.curves.map((c) => (
          <span key={c.cluster} className="legend-item" data-cluster={c.cluster}>
            <span className="legend-swatch" style={{ background: colour(c.cluster) }} />
            <span className="legend-label">{c.label}</span>
            {c.days !== null && <span className="legend-unit">({c.days} days)</span>}
          </span>
        ))}
      </div>
      <div className="chart-box" ref={boxRef}>
        <svg width={width} height={height} role="img" aria-label="Typical daily load curve of each day type" onMouseMove={onMove} onMouseLeave={() => setHover(null)}>
          <rect x={MARGIN.left} y={MARGIN.top} width={plotW} height={plotH} className="chart-plot" />
          {scale.ticks.map((v) => (
            <g key={`y${v}`}>
              <line x1={MARGIN.left} x2={MARGIN.left + plotW} y1={y(v)} y2={y(v)} className="chart-grid" />
              <text x={MARGIN.left - 8} y={y(v) + 4} textAnchor="end" className="chart-tick">
                {tickText(v, scale.ticks)}
              </text>
            </g>
          ))}
          {unit && (
            <text x={MARGIN.left - 8} y={MARGIN.top - 4} textAnchor="end" className="chart-unit">
              {unit}
            </text>
          )}
          {Array.from({ length: n }, (_, i) => i)
            .filter((i) => i % labelEvery === 0)
            .map((i) => (
              <text key={`x${i}`} x={x(i)} y={height - 10} textAnchor="middle" className="chart-tick">
                {xLabel(data.x[i] ?? i)}
              </text>
            ))}
          {data.curves.map((c) => {
            let d = "";
            let pen = false;
            c.values.forEach((v, i) => {
              if (v === null) {
                pen = false;
                return;
              }
              d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
              pen = true;
            });
            return <path key={c.cluster} d={d} fill="none" stroke={colour(c.cluster)} strokeWidth={2} data-cluster={c.cluster} />;
          })}
          {hover !== null && <line x1={x(hover)} x2={x(hover)} y1={MARGIN.top} y2={MARGIN.top + plotH} className="chart-crosshair" />}
        </svg>
        {hover !== null && (
          <div className="chart-tooltip" role="tooltip" style={{ left: x(hover) > width * 0.6 ? x(hover) - 12 : x(hover) + 12, top: MARGIN.top + 6, transform: x(hover) > width * 0.6 ? "translateX(-100%)" : undefined }}>
            <div className="chart-tooltip-time">{xLabel(data.x[hover] ?? hover)}</div>
            {data.curves.map((c) => (
              <div key={c.cluster} className="chart-tooltip-row">
                <span className="legend-swatch" style={{ background: colour(c.cluster) }} />
                <span className="chart-tooltip-label">{c.label}</span>
                <strong>{formatValue(c.values[hover] ?? null)}</strong>
              </div>
            ))}
          </div>
        )}
      </div>
      {calendar.cells.length > 0 && (
        <div className="analytics-calendar-box">
          <h3 className="analytics-subtitle">Calendar of days by type</h3>
          <svg
            className="analytics-calendar"
            width={44 + calendar.weeks * (cell + 3)}
            height={7 * (cell + 3) + 4}
            role="img"
            aria-label={`Calendar of ${calendar.cells.length} days coloured by day type`}
            data-testid="profile-calendar"
          >
            {WEEKDAYS.map((d, i) => (
              <text key={d} x={36} y={i * (cell + 3) + cell - 3} textAnchor="end" className="chart-tick">
                {d}
              </text>
            ))}
            {calendar.cells.map((c) => (
              <rect key={c.date} x={44 + c.col * (cell + 3)} y={c.row * (cell + 3)} width={cell} height={cell} rx={3} fill={colour(c.cluster)} data-date={c.date} data-cluster={c.cluster}>
                <title>{`${c.date}: ${data.curves.find((k) => k.cluster === c.cluster)?.label ?? `cluster ${c.cluster}`}`}</title>
              </rect>
            ))}
          </svg>
        </div>
      )}
    </div>
  );
}

