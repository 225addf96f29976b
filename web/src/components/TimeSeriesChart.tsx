// A line chart of several time series, drawn as SVG: time axis in the factory's zone, one value
// axis per unit (left, then right), a legend with units and last values, and a hover tooltip
// with the exact value and time of the nearest points.
import { useEffect, useMemo, useRef, useState, type MouseEvent } from "react";
import { formatDateTimeSeconds, formatExact, formatValue, withUnit, zoneOffsetMs } from "../lib/telemetryFormat";

export interface ChartSeries {
  key: string;
  label: string;
  unit: string;
  color: string;
  /** [epoch ms, value], sorted by time. */
  points: [number, number][];
}

export const SERIES_COLORS = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

interface Props {
  series: ChartSeries[];
  start: number;
  end: number;
  timeZone?: string;
  height?: number;
  /** Shown when there is nothing to draw. */
  emptyText?: string;
  label?: string;
  /** Called with the time span the user dragged across; without it the chart does not zoom. */
  onZoom?: (start: number, end: number) => void;
}

const MARGIN = { top: 24, bottom: 30, left: 60, right: 18, axis: 60 };
const TIME_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600,
  2592000,
].map((s) => s * 1000);

interface Axis {
  unit: string;
  min: number;
  max: number;
  ticks: number[];
  side: "left" | "right" | "none";
}

function niceTicks(min: number, max: number, count: number): { min: number; max: number; ticks: number[] } {
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

function formatTick(value: number, ticks: number[]): string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : 1;
  const digits = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toFixed(abs >= 1e7 ? 0 : 1)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(abs >= 1e5 ? 0 : 1)}k`;
  return value.toFixed(digits);
}

function timeTicks(start: number, end: number, width: number, timeZone?: string): { ticks: number[]; step: number } {
  const span = Math.max(1, end - start);
  const wanted = Math.max(2, Math.floor(width / 95));
  const step = TIME_STEPS.find((s) => span / s <= wanted) ?? TIME_STEPS[TIME_STEPS.length - 1]!;
  const offset = step >= 3600_000 ? zoneOffsetMs((start + end) / 2, timeZone) : 0;
  const ticks: number[] = [];
  for (let t = Math.ceil((start + offset) / step) * step - offset; t <= end; t += step) ticks.push(t);
  return { ticks, step };
}

function formatTimeTick(ms: number, step: number, timeZone?: string): string {
  const opts: Intl.DateTimeFormatOptions =
    step < 60_000
      ? { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }
      : step < 86_400_000
        ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }
        : { day: "numeric", month: "short" };
  try {
    const text = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone }).format(new Date(ms));
    if (step >= 3600_000 && step < 86_400_000 && text === "00:00") {
      return new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", timeZone }).format(new Date(ms));
    }
    return text;
  } catch {
    return new Date(ms).toISOString().slice(11, 16);
  }
}

/** Index of the point nearest to `t` in a sorted series, or -1 when empty. */
function nearest(points: [number, number][], t: number): number {
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

/** The usual distance between points; a jump of several of these is drawn as a gap. */
function typicalStep(points: [number, number][]): number {
  if (points.length < 3) return Number.POSITIVE_INFINITY;
  const deltas: number[] = [];
  const stride = Math.max(1, Math.floor(points.length / 200));
  for (let i = stride; i < points.length; i += stride) deltas.push(points[i]![0] - points[i - stride]![0]);
  deltas.sort((a, b) => a - b);
  return (deltas[Math.floor(deltas.length / 2)] ?? 0) / stride;
}

export function TimeSeriesChart({ series, start, end, timeZone, height = 320, emptyText = "No data in this range.", label, onZoom }: Props) {
  const boxRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  const [hoverT, setHoverT] = useState<number | null>(null);
  const [drag, setDrag] = useState<{ from: number; to: number } | null>(null);

  useEffect(() => {
    const box = boxRef.current;
    if (!box) return;
    const measure = () => setWidth(Math.max(320, Math.floor(box.clientWidth)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(box);
    return () => observer.disconnect();
  }, []);

  const visible = useMemo(
    () => series.map((s) => ({ ...s, points: s.points.filter(([t]) => t >= start && t <= end) })),
    [series, start, end],
  );

  // One axis per unit: the first unit on the left, the second on the right, any further unit
  // on a scale of its own (said in the legend).
  const { axes, axisOf } = useMemo(() => {
    const units: string[] = [];
    for (const s of visible) if (!units.includes(s.unit)) units.push(s.unit);
    const axisList: Axis[] = units.map((unit, i) => {
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const s of visible) {
        if (s.unit !== unit) continue;
        for (const [, v] of s.points) {
          if (v < min) min = v;
          if (v > max) max = v;
        }
      }
      const nice = niceTicks(min, max, Math.max(3, Math.floor(height / 60)));
      return { unit, ...nice, side: i === 0 ? "left" : i === 1 ? "right" : "none" };
    });
    const map = new Map(visible.map((s) => [s.key, units.indexOf(s.unit)]));
    return { axes: axisList, axisOf: map };
  }, [visible, height]);

  const hasRight = axes.length > 1;
  const left = MARGIN.left;
  const right = hasRight ? MARGIN.axis : MARGIN.right;
  const plotW = Math.max(10, width - left - right);
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x = (t: number) => left + ((t - start) / Math.max(1, end - start)) * plotW;
  const yOf = (axis: Axis) => (v: number) => MARGIN.top + plotH - ((v - axis.min) / (axis.max - axis.min || 1)) * plotH;
  const { ticks: xTicks, step: xStep } = timeTicks(start, end, plotW, timeZone);
  const total = visible.reduce((n, s) => n + s.points.length, 0);

  const paths = visible.map((s) => {
    const axis = axes[axisOf.get(s.key) ?? 0]!;
    const y = yOf(axis);
    const gap = typicalStep(s.points) * 5;
    let d = "";
    let prev: number | null = null;
    for (const [t, v] of s.points) {
      const cmd = prev === null || t - prev > gap ? "M" : "L";
      d += `${cmd}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      prev = t;
    }
    // Dots mark the points when there are few of them and they do not pile up.
    const n = s.points.length;
    const spacing = n > 1 ? (x(s.points[n - 1]![0]) - x(s.points[0]![0])) / (n - 1) : Number.POSITIVE_INFINITY;
    const dots = n <= 60 && spacing >= 5 ? s.points.map(([t, v]) => [x(t), y(v)] as const) : [];
    return { s, d, dots };
  });

  // Hover: snap to the nearest point in time of any series, then read each series there.
  const hover = useMemo(() => {
    if (hoverT === null || total === 0) return null;
    let snap: number | null = null;
    for (const s of visible) {
      const i = nearest(s.points, hoverT);
      if (i < 0) continue;
      const t = s.points[i]![0];
      if (snap === null || Math.abs(t - hoverT) < Math.abs(snap - hoverT)) snap = t;
    }
    if (snap === null) return null;
    const tolerance = Math.max((end - start) / 400, 1000);
    const rows = visible.map((s) => {
      const i = nearest(s.points, snap);
      const p = i >= 0 ? s.points[i]! : null;
      return { s, point: p && Math.abs(p[0] - snap) <= tolerance ? p : null };
    });
    return { t: snap, rows };
  }, [hoverT, visible, total, start, end]);

  const plotX = (e: MouseEvent<SVGSVGElement>) => e.clientX - e.currentTarget.getBoundingClientRect().left;
  const timeAt = (px: number) => start + ((Math.min(Math.max(px, left), left + plotW) - left) / plotW) * (end - start);

  const onMove = (e: MouseEvent<SVGSVGElement>) => {
    const px = plotX(e);
    if (drag) setDrag({ ...drag, to: px });
    if (px < left || px > left + plotW) {
      setHoverT(null);
      return;
    }
    setHoverT(timeAt(px));
  };

  const onDown = (e: MouseEvent<SVGSVGElement>) => {
    const px = plotX(e);
    if (!onZoom || e.button !== 0 || px < left || px > left + plotW) return;
    e.preventDefault();
    setDrag({ from: px, to: px });
  };

  const onUp = () => {
    if (!drag) return;
    setDrag(null);
    const [a, b] = [Math.min(drag.from, drag.to), Math.max(drag.from, drag.to)];
    // A drag that reaches an edge of the plot keeps that edge (the newest points stay in).
    if (b - a >= 8 && onZoom) onZoom(a - left <= 4 ? start : timeAt(a), left + plotW - b <= 4 ? end : timeAt(b));
  };

  const hoverX = hover ? x(hover.t) : 0;
  const tooltipLeft = hover ? (hoverX > width * 0.6 ? hoverX - 12 : hoverX + 12) : 0;

  return (
    <div className="chart">
      <div className="chart-legend" data-testid="chart-legend">
        {visible.map((s) => {
          const last = s.points[s.points.length - 1];
          const axis = axisOf.get(s.key) ?? 0;
          return (
            <span key={s.key} className="legend-item" data-series={s.key} data-points={s.points.length}>
              <span className="legend-swatch" style={{ background: s.color }} />
              <span className="legend-label">{s.label}</span>
              {s.unit && <span className="legend-unit">({s.unit})</span>}
              {hasRight && axis < 2 && <span className="legend-axis">{axis === 0 ? "left axis" : "right axis"}</span>}
              {axis >= 2 && <span className="legend-axis">own scale</span>}
              <span className="legend-last">{last ? withUnit(formatValue(last[1]), s.unit) : "no data"}</span>
            </span>
          );
        })}
      </div>
      <div className="chart-box" ref={boxRef}>
        <svg
          width={width}
          height={height}
          role="img"
          aria-label={label ?? `Chart of ${visible.map((s) => s.label).join(", ")}`}
          data-points={total}
          onMouseMove={onMove}
          onMouseDown={onDown}
          onMouseUp={onUp}
          onMouseLeave={() => {
            setHoverT(null);
            setDrag(null);
          }}
        >
          <rect x={left} y={MARGIN.top} width={plotW} height={plotH} className="chart-plot" />
          {axes[0] &&
            axes[0].ticks.map((v) => {
              const yy = yOf(axes[0]!)(v);
              return (
                <g key={`l${v}`}>
                  <line x1={left} x2={left + plotW} y1={yy} y2={yy} className="chart-grid" />
                  <text x={left - 8} y={yy + 4} textAnchor="end" className="chart-tick">
                    {formatTick(v, axes[0]!.ticks)}
                  </text>
                </g>
              );
            })}
          {axes[1] &&
            axes[1].ticks.map((v) => (
              <text key={`r${v}`} x={left + plotW + 8} y={yOf(axes[1]!)(v) + 4} textAnchor="start" className="chart-tick">
                {formatTick(v, axes[1]!.ticks)}
              </text>
            ))}
          {axes[0]?.unit && (
            <text x={left - 8} y={MARGIN.top - 10} className="chart-unit" textAnchor="end">
              {axes[0].unit}
            </text>
          )}
          {axes[1]?.unit && (
            <text x={left + plotW + 8} y={MARGIN.top - 10} className="chart-unit" textAnchor="start">
              {axes[1].unit}
            </text>
          )}
          {xTicks.map((t) => (
            <g key={`x${t}`}>
              <line x1={x(t)} x2={x(t)} y1={MARGIN.top} y2={MARGIN.top + plotH} className="chart-grid chart-grid-x" />
              <text x={x(t)} y={height - 10} textAnchor="middle" className="chart-tick">
                {formatTimeTick(t, xStep, timeZone)}
              </text>
            </g>
          ))}
          <g clipPath="none">
            {paths.map(({ s, d, dots }) => (
              <g key={s.key} data-series={s.key}>
                <path d={d} fill="none" stroke={s.color} strokeWidth={1.8} strokeLinejoin="round" strokeLinecap="round" />
                {dots.map(([cx, cy], i) => (
                  <circle key={i} cx={cx} cy={cy} r={2.6} fill={s.color} />
                ))}
              </g>
            ))}
          </g>
          {drag && Math.abs(drag.to - drag.from) > 2 && (
            <rect
              className="chart-zoom"
              x={Math.max(left, Math.min(drag.from, drag.to))}
              y={MARGIN.top}
              width={Math.min(left + plotW, Math.max(drag.from, drag.to)) - Math.max(left, Math.min(drag.from, drag.to))}
              height={plotH}
            />
          )}
          {hover && (
            <g className="chart-hover">
              <line x1={hoverX} x2={hoverX} y1={MARGIN.top} y2={MARGIN.top + plotH} className="chart-crosshair" />
              {hover.rows.map(({ s, point }) =>
                point ? (
                  <circle key={s.key} cx={x(point[0])} cy={yOf(axes[axisOf.get(s.key) ?? 0]!)(point[1])} r={4.5} fill="#fff" stroke={s.color} strokeWidth={2} />
                ) : null,
              )}
            </g>
          )}
        </svg>
        {total === 0 && <div className="chart-empty">{emptyText}</div>}
        {hover && (
          <div
            className="chart-tooltip"
            data-testid="chart-tooltip"
            role="tooltip"
            style={{ left: tooltipLeft, top: MARGIN.top + 6, transform: hoverX > width * 0.6 ? "translateX(-100%)" : undefined }}
          >
            <div className="chart-tooltip-time">{formatDateTimeSeconds(hover.t, timeZone)}</div>
            {hover.rows.map(({ s, point }) => (
              <div key={s.key} className="chart-tooltip-row">
                <span className="legend-swatch" style={{ background: s.color }} />
                <span className="chart-tooltip-label">{s.label}</span>
                <strong>{point ? withUnit(formatExact(point[1]), s.unit) : "—"}</strong>
              </div>
            ))}
          </div>
        )}
      </div>
    </div>
  );
}
