// "/f/:slug/devices/:deviceId": one device: its attributes, the properties it reports with their
// latest values, and a chart of any of them over a range, live if asked. A live stream stays
// open while the page is, so latest values move and a newly reported property shows up by itself.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, call } from "../../../api/client";
import { followLive, formatSeconds, type Device, type DeviceProperty, type LatestValue, type LiveState } from "../../../api/devices";
import { ApiError, describeError } from "../../../api/errors";
import { useAuth } from "../../../auth/AuthContext";
import { SERIES_COLORS, TimeSeriesChart, type ChartSeries } from "../../../components/TimeSeriesChart";
import { Card, Notice, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { formatAgo, formatDateTimeSeconds, formatValue, fromLocalInput, toLocalInput, withUnit } from "../../../lib/telemetryFormat";
import { EditDeviceModal, RotateCredentialsModal } from "./DeviceForms";
import { StatusBadge } from "./DevicesList";

type RangeKey = "15m" | "1h" | "24h" | "7d" | "30d" | "custom";
const RANGES: { key: RangeKey; label: string; ms: number }[] = [
  { key: "15m", label: "15m", ms: 15 * 60_000 },
  { key: "1h", label: "1h", ms: 3600_000 },
  { key: "24h", label: "24h", ms: 86_400_000 },
  { key: "7d", label: "7d", ms: 7 * 86_400_000 },
  { key: "30d", label: "30d", ms: 30 * 86_400_000 },
];
/** Up to this span the chart asks for raw points; beyond it, means within a point budget. */
const RAW_SPAN_MS = 2 * 3600_000;
const MAX_POINTS = 600;
const MAX_SELECTED = 8;

interface HistoryState {
  key: string;
  resolution: string;
  aggregate: string | null;
  intervalSeconds: number | null;
  series: Record<string, [number, number][]>;
}

function resolutionText(h: HistoryState | null): string {
  if (!h) return "";
  if (!h.aggregate) return "Raw points";
  const s = h.intervalSeconds ?? 0;
  const every = s >= 86_400 ? `${Math.round(s / 86_400)} d` : s >= 3600 ? `${Math.round(s / 360) / 10} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${s} s`;
  return `Mean per ${every}${h.resolution !== "raw" ? ` (from ${h.resolution} rollups)` : ""}`;
}

export function DevicePage() {
  const { slug = "", deviceId = "" } = useParams();
  const { can, principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const mayChange = can("devices");

  const [device, setDevice] = useState<Device | null>(null);
  const [deviceError, setDeviceError] = useState<{ status: number; message: string } | null>(null);
  const [properties, setProperties] = useState<DeviceProperty[] | null>(null);
  const [latest, setLatest] = useState<Record<string, LatestValue>>({});
  const [freshProps, setFreshProps] = useState<Set<string>>(new Set());
  const [editing, setEditing] = useState(false);
  const [rotating, setRotating] = useState(false);
  const [flash, setFlash] = useState<string | null>(null);

  const [range, setRange] = useState<RangeKey>("1h");
  const [customStart, setCustomStart] = useState(() => toLocalInput(Date.now() - 6 * 3600_000, timeZone));
  const [customEnd, setCustomEnd] = useState(() => toLocalInput(Date.now(), timeZone));
  const [customApplied, setCustomApplied] = useState<{ start: number; end: number } | null>(null);
  const [customError, setCustomError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string[]>([]);
  const [live, setLive] = useState(false);
  const [liveState, setLiveState] = useState<LiveState>("connecting");
  const [liveProblem, setLiveProblem] = useState("");
  const [now, setNow] = useState(() => Date.now());
  const [history, setHistory] = useState<HistoryState | null>(null);
  const [historyLoading, setHistoryLoading] = useState(false);
  const [historyError, setHistoryError] = useState<string | null>(null);
  const [anchor, setAnchor] = useState(() => Date.now());

  const knownRef = useRef<Set<string>>(new Set());
  const liveRef = useRef(live);
  liveRef.current = live;
  const historyKeyRef = useRef<string>("");
  const requestRef = useRef(0);
  const reloadingProps = useRef(false);
  const initialSelection = useRef(false);

  const loadDevice = useCallback(() => {
    call(api.GET("/api/v1/devices/{device_id}", { params: { path: { device_id: deviceId } } }))
      .then((d) => {
        setDevice(d);
        setDeviceError(null);
      })
      .catch((err: unknown) => setDeviceError({ status: err instanceof ApiError ? err.status : 0, message: describeError(err) }));
  }, [deviceId]);

  const loadProperties = useCallback(async () => {
    if (reloadingProps.current) return;
    reloadingProps.current = true;
    try {
      const [props, last] = await Promise.all([
        call(api.GET("/api/v1/devices/{device_id}/properties", { params: { path: { device_id: deviceId } } })),
        call(api.GET("/api/v1/devices/{device_id}/latest", { params: { path: { device_id: deviceId } } })).catch(() => null),
      ]);
      const before = knownRef.current;
      const appeared = props.map((p) => p.property_name).filter((n) => before.size > 0 && !before.has(n));
      knownRef.current = new Set(props.map((p) => p.property_name));
      setProperties(props);
      if (last) setLatest((prev) => ({ ...prev, ...Object.fromEntries(last.values.map((v) => [v.property, v])) }));
      if (appeared.length) setFreshProps((prev) => new Set([...prev, ...appeared]));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) setFlash(describeError(err));
    } finally {
      reloadingProps.current = false;
    }
  }, [deviceId]);

  useEffect(() => {
    knownRef.current = new Set();
    initialSelection.current = false;
    setDevice(null);
    setProperties(null);
    setLatest({});
    setSelected([]);
    setHistory(null);
    loadDevice();
    void loadProperties();
    const timer = window.setInterval(loadDevice, 30_000);
    return () => window.clearInterval(timer);
  }, [loadDevice, loadProperties]);

  // Chart the first properties the device reports until the user picks.
  useEffect(() => {
    if (initialSelection.current || !properties || properties.length === 0) return;
    initialSelection.current = true;
    setSelected(properties.slice(0, 2).map((p) => p.property_name));
  }, [properties]);

  // The live stream: latest values, new properties, and (in live mode) the chart.
  useEffect(() => {
    const controller = new AbortController();
    void followLive(
      deviceId,
      (event) => {
        const unknown = event.values.some((v) => !knownRef.current.has(v.property));
        setLatest((prev) => {
          const next = { ...prev };
          for (const v of event.values) next[v.property] = v;
          return next;
        });
        if (unknown) void loadProperties();
        if (liveRef.current) {
          setHistory((prev) => {
            if (!prev) return prev;
            let changed = false;
            const series = { ...prev.series };
            for (const v of event.values) {
              const points = series[v.property];
              if (!points) continue;
              const t = Date.parse(v.ts);
              const last = points[points.length - 1];
              if (last && last[0] >= t) continue;
              series[v.property] = [...points, [t, v.value]];
              changed = true;
            }
            return changed ? { ...prev, series } : prev;
          });
        }
      },
      (state, problem) => {
        setLiveState(state);
        setLiveProblem(state === "ended" ? (problem ?? "") : "");
      },
      controller.signal,
    );
    return () => controller.abort();
  }, [deviceId, loadProperties]);

  // In live mode the window ends now and slides every second.
  useEffect(() => {
    if (!live) return;
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [live]);

  const span = RANGES.find((r) => r.key === range)?.ms ?? 0;
  const windowEnd = range === "custom" ? (customApplied?.end ?? anchor) : live ? now : anchor;
  const windowStart = range === "custom" ? (customApplied?.start ?? anchor - 3600_000) : windowEnd - span;

  // History: fetched when the range, the selection or the mode changes (not on every live tick).
  const fetchStart = range === "custom" ? windowStart : anchor - span;
  const fetchEnd = range === "custom" ? windowEnd : anchor;
  const historyKey = JSON.stringify([deviceId, [...selected].sort(), fetchStart, fetchEnd]);
  useEffect(() => {
    if (!selected.length) {
      setHistory(null);
      return;
    }
    if (range === "custom" && !customApplied) return;
    const id = ++requestRef.current;
    historyKeyRef.current = historyKey;
    setHistoryLoading(true);
    const aggregated = fetchEnd - fetchStart > RAW_SPAN_MS;
    const query = (agg: boolean) =>
      call(
        api.GET("/api/v1/telemetry/history", {
          params: {
            query: {
              device_id: [deviceId],
              property: selected,
              start: new Date(fetchStart).toISOString(),
              end: new Date(fetchEnd + 1000).toISOString(),
              ...(agg ? { aggregate: "mean" as const, max_points: MAX_POINTS } : {}),
            },
          },
        }),
      );
    query(aggregated)
      .catch((err: unknown) => {
        // A busy device can hold too many raw points even for a short span.
        if (!aggregated && err instanceof ApiError && err.code === "too_many_points") return query(true);
        throw err;
      })
      .then((res) => {
        if (id !== requestRef.current) return;
        const series: Record<string, [number, number][]> = {};
        for (const name of selected) series[name] = [];
        for (const s of res.series) {
          // Each point is [ISO time, value] (the generated tuple type is looser than the API).
          series[s.property] = (s.points as unknown as [string, number][]).map(([t, v]) => [Date.parse(t), v]);
        }
        setHistory({ key: historyKey, resolution: res.resolution, aggregate: res.aggregate, intervalSeconds: res.interval_seconds, series });
        setHistoryError(null);
      })
      .catch((err: unknown) => {
        if (id === requestRef.current) setHistoryError(describeError(err));
      })
      .finally(() => {
        if (id === requestRef.current) setHistoryLoading(false);
      });
  }, [historyKey, range, customApplied]);

  const showCustom = (start: number, end: number) => {
    setCustomStart(toLocalInput(start, timeZone));
    setCustomEnd(toLocalInput(end, timeZone));
    setCustomError(null);
    setCustomApplied({ start, end });
    setRange("custom");
    setLive(false);
  };

  const pickRange = (key: RangeKey) => {
    // "Custom" starts from the window on screen, so that it can be narrowed or widened.
    if (key === "custom") showCustom(Math.floor(windowStart / 1000) * 1000, Math.ceil(windowEnd / 1000) * 1000);
    else {
      setRange(key);
      setAnchor(Date.now());
    }
  };

  const toggleLive = () => {
    if (!live) setAnchor(Date.now());
    setLive(!live);
  };

  const applyCustom = () => {
    const start = fromLocalInput(customStart, timeZone);
    const end = fromLocalInput(customEnd, timeZone);
    if (!Number.isFinite(start) || !Number.isFinite(end)) {
      setCustomError("Enter both a start and an end.");
      return;
    }
    if (end <= start) {
      setCustomError("The end must be after the start.");
      return;
    }
    setCustomError(null);
    setCustomApplied({ start, end });
  };

  const toggleProperty = (name: string) => {
    // In live mode the history is fetched again up to now, so a new pick starts complete.
    if (live) setAnchor(Date.now());
    setSelected((prev) => (prev.includes(name) ? prev.filter((p) => p !== name) : prev.length >= MAX_SELECTED ? prev : [...prev, name]));
  };

  const colorOf = useMemo(() => {
    const names = (properties ?? []).map((p) => p.property_name);
    return (name: string) => SERIES_COLORS[Math.max(0, names.indexOf(name)) % SERIES_COLORS.length]!;
  }, [properties]);

  const chartSeries: ChartSeries[] = selected.map((name) => ({
    key: name,
    label: latest[name]?.display_name || name,
    unit: latest[name]?.unit ?? "",
    color: colorOf(name),
    points: history?.series[name] ?? [],
  }));

  if (deviceError && !device) {
    return (
      <>
        <Breadcrumb slug={slug} deviceId={deviceId} />
        <Notice tone="error" title={deviceError.status === 404 ? `No device “${deviceId}” in this factory` : "Could not load the device"}>
          {deviceError.status === 404 ? <Link to={`/f/${slug}/devices`}>Back to the device list</Link> : deviceError.message}
        </Notice>
      </>
    );
  }
  if (!device) return <Spinner label="Loading device…" />;

  const liveLabel =
    liveState === "open" ? "Live" : liveState === "retrying" ? "Reconnecting…" : liveState === "ended" ? "Stream ended" : "Connecting…";

  return (
    <>
      <Breadcrumb slug={slug} deviceId={deviceId} />
      <div className="page-header">
        <div>
          <h1 className="device-title">
            {device.name}
            <StatusBadge status={device.status} />
          </h1>
          <p className="page-subtitle">
            <code>{device.device_id}</code>
            {device.type && <> · {device.type}</>}
            {device.location && <> · {device.location}</>}
          </p>
        </div>
        {mayChange && (
          <div className="page-actions">
            <button type="button" className="btn btn-secondary" onClick={() => setRotating(true)}>
              Rotate credentials
            </button>
            <button type="button" className="btn btn-primary" onClick={() => setEditing(true)}>
              Edit device
            </button>
          </div>
        )}
      </div>
      {flash && (
        <Notice tone="success" title={flash} onClose={() => setFlash(null)} />
      )}

      <Card
        className="chart-card"
        title="Telemetry"
        actions={
          <div className="chart-actions">
            <div className="segmented" role="group" aria-label="Time range">
              {RANGES.map((r) => (
                <button key={r.key} type="button" aria-pressed={range === r.key} className={range === r.key ? "active" : ""} onClick={() => pickRange(r.key)}>
                  {r.label}
                </button>
              ))}
              <button type="button" aria-pressed={range === "custom"} className={range === "custom" ? "active" : ""} onClick={() => pickRange("custom")}>
                Custom
              </button>
            </div>
            <button
              type="button"
              className={`btn btn-sm live-toggle${live ? " on" : ""}`}
              aria-pressed={live}
              disabled={range === "custom"}
              title={range === "custom" ? "Live mode follows the last 15 minutes, hour, day, week or month" : undefined}
              onClick={toggleLive}
            >
              <span className="live-dot" aria-hidden="true" />
              {live ? "Live on" : "Go live"}
            </button>
          </div>
        }
      >
        {range === "custom" && (
          <div className="custom-range" role="group" aria-label="Custom range">
            <label>
              <span>From</span>
              <input type="datetime-local" step={1} aria-label="From" value={customStart} onChange={(e) => setCustomStart(e.target.value)} />
            </label>
            <label>
              <span>To</span>
              <input type="datetime-local" step={1} aria-label="To" value={customEnd} onChange={(e) => setCustomEnd(e.target.value)} />
            </label>
            <button type="button" className="btn btn-secondary btn-sm" onClick={applyCustom}>
              Show
            </button>
            <span className="muted small">Times in {timeZone ?? "local time"}. Drag across the chart to zoom in.</span>
            {customError && <span className="field-error">{customError}</span>}
          </div>
        )}
        <div className="property-picker" role="group" aria-label="Properties on the chart">
          {(properties ?? []).map((p) => {
            const on = selected.includes(p.property_name);
            const meta = latest[p.property_name];
            return (
              <label key={p.property_name} className={`prop-chip${on ? " on" : ""}`} style={on ? { borderColor: colorOf(p.property_name) } : undefined}>
                <input type="checkbox" checked={on} onChange={() => toggleProperty(p.property_name)} />
                <span className="legend-swatch" style={{ background: on ? colorOf(p.property_name) : "#d1d5db" }} />
                <span>{meta?.display_name || p.property_name}</span>
                {meta?.unit && <span className="muted">{meta.unit}</span>}
              </label>
            );
          })}
          {properties && properties.length === 0 && <span className="muted">Nothing to chart yet: this device has not reported any value.</span>}
        </div>
        <div className="chart-status">
          <span className="muted small">
            {range === "custom" && !customApplied ? "Pick a range and press Show." : resolutionText(history)}
            {historyLoading && " · loading…"}
          </span>
          {live && (
            <span className={`live-indicator live-${liveState}`} data-testid="live-indicator" role="status" title={liveProblem || undefined}>
              <span className="live-dot" aria-hidden="true" />
              {liveLabel}
            </span>
          )}
          {live && liveState === "ended" && liveProblem && (
            <span className="muted small" data-testid="live-ended">
              {liveProblem}
            </span>
          )}
        </div>
        {historyError && <Notice tone="error" title="Could not load the history">{historyError}</Notice>}
        {selected.length > 0 ? (
          <TimeSeriesChart
            series={chartSeries}
            start={windowStart}
            end={windowEnd}
            timeZone={timeZone}
            label={`Chart of ${device.name}`}
            onZoom={(start, end) => showCustom(Math.floor(start / 1000) * 1000, Math.ceil(end / 1000) * 1000)}
            emptyText={historyLoading ? "Loading…" : "No values in this range."}
          />
        ) : (
          properties &&
          properties.length > 0 && <div className="chart-placeholder">Tick one or more properties to chart them.</div>
        )}
      </Card>

      <div className="device-grid">
        <Card title="Properties" className="props-card">
          {!properties && <Spinner label="Loading properties…" />}
          {properties && (
            <div className="table-wrap">
              <table className="table" aria-label="Properties">
                <thead>
                  <tr>
                    <th>Property</th>
                    <th className="num">Latest value</th>
                    <th>Updated</th>
                    <th>First seen</th>
                  </tr>
                </thead>
                <tbody>
                  {properties.length === 0 && (
                    <tr>
                      <td colSpan={4} className="table-empty">
                        No properties yet. They appear here by themselves when the device publishes its first values.
                      </td>
                    </tr>
                  )}
                  {properties.map((p) => {
                    const v = latest[p.property_name];
                    const value = v ? v.value : p.last_value;
                    const ts = v ? v.ts : p.last_seen;
                    return (
                      <tr key={p.property_name} data-property={p.property_name} className={freshProps.has(p.property_name) ? "row-new" : undefined}>
                        <td>
                          <div className="cell-primary">
                            {v?.display_name || p.property_name}
                            {freshProps.has(p.property_name) && <span className="badge badge-accent new-badge">new</span>}
                          </div>
                          {v?.display_name && <div className="cell-secondary mono">{p.property_name}</div>}
                        </td>
                        <td className="num value-cell" data-testid={`latest-${p.property_name}`}>
                          {value === null || value === undefined ? <span className="muted">—</span> : withUnit(formatValue(value), v?.unit)}
                        </td>
                        <td className="nowrap" title={formatDateTimeSeconds(Date.parse(ts), timeZone)}>
                          {formatAgo(ts, now)}
                        </td>
                        <td className="nowrap muted">{formatDateTime(p.first_seen, timeZone)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </Card>
        <Card title="Attributes" className="attrs-card">
          <dl className="facts" aria-label="Device attributes">
            <dt>Device ID</dt>
            <dd><code>{device.device_id}</code></dd>
            <dt>Name</dt>
            <dd>{device.name}</dd>
            <dt>Type</dt>
            <dd>{device.type || <span className="muted">—</span>}</dd>
            <dt>Location</dt>
            <dd>{device.location || <span className="muted">—</span>}</dd>
            <dt>Enabled</dt>
            <dd>{device.enabled ? "Yes" : <span className="text-bad">No: its messages are refused</span>}</dd>
            <dt>Report interval</dt>
            <dd>
              {device.report_interval_seconds ? `Every ${formatSeconds(device.report_interval_seconds)}` : <span className="muted">Not set</span>}
            </dd>
            <dt>Online window</dt>
            <dd data-testid="online-window">Online if it reported in the last {formatSeconds(device.online_window_seconds)}</dd>
            <dt>Last seen</dt>
            <dd>{device.last_seen ? `${formatDateTime(device.last_seen, timeZone)} (${formatAgo(device.last_seen, now)})` : <span className="muted">Never</span>}</dd>
            <dt>Firmware</dt>
            <dd>{device.firmware_version || <span className="muted">Not reported</span>}</dd>
            <dt>Registered</dt>
            <dd>{formatDateTime(device.created_at, timeZone)}</dd>
          </dl>
          <p className="muted small">MQTT credentials are shown only when created or rotated.</p>
        </Card>
      </div>

      {editing && (
        <EditDeviceModal
          device={device}
          onClose={() => setEditing(false)}
          onSaved={(saved) => {
            setEditing(false);
            setDevice(saved);
            setFlash(`Saved ${saved.device_id}`);
          }}
        />
      )}
      {rotating && (
        <RotateCredentialsModal
          device={device}
          onClose={() => {
            setRotating(false);
            loadDevice();
          }}
        />
      )}
    </>
  );
}

function Breadcrumb({ slug, deviceId }: { slug: string; deviceId: string }) {
  return (
    <nav className="breadcrumb" aria-label="Breadcrumb">
      <Link to={`/f/${slug}/devices`}>Devices</Link>
      <span aria-hidden="true">›</span>
      <span>{deviceId}</span>
    </nav>
  );
}
