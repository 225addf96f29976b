// The builder's backtest: runs the current (unsaved) definition over a past period as a job,
// follows the job's progress every second, and shows the alerts the rule would have opened.
import { useEffect, useMemo, useRef, useState } from "react";
import { ApiError, describeError, type FieldProblem } from "../../../api/errors";
import {
  cancelJob,
  getJob,
  JOB_DONE,
  normaliseField,
  startBacktest,
  type BacktestAlert,
  type BacktestResult,
  type Job,
  type RuleDefinition,
} from "../../../api/rules";
import { Card, Notice } from "../../../components/ui";
import { formatDateTimeSeconds, formatValue, fromLocalInput, toLocalInput } from "../../../lib/telemetryFormat";

type Period = "24h" | "7d" | "custom";
const PERIODS: { key: Period; label: string; ms: number }[] = [
  { key: "24h", label: "Last 24 hours", ms: 86_400_000 },
  { key: "7d", label: "Last 7 days", ms: 7 * 86_400_000 },
  { key: "custom", label: "Custom", ms: 0 },
];
const POLL_MS = 1000;

function spanText(ms: number): string {
  if (ms < 1000) return "under 1 s";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60 ? `${s % 60} s` : ""}`.trim();
  const h = Math.floor(s / 3600);
  const m = Math.round((s % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

export function BacktestPanel({
  definition,
  timeZone,
  onProblems,
}: {
  /** The definition as the form stands now. */
  definition: () => RuleDefinition;
  timeZone?: string;
  /** 422 problems of the definition, to be shown next to the builder's fields. */
  onProblems: (details: FieldProblem[]) => void;
}) {
  const [period, setPeriod] = useState<Period>("24h");
  const [from, setFrom] = useState(() => toLocalInput(Date.now() - 86_400_000, timeZone).slice(0, 16));
  const [to, setTo] = useState(() => toLocalInput(Date.now(), timeZone).slice(0, 16));
  const [periodErrors, setPeriodErrors] = useState<{ start?: string; end?: string }>({});
  const [jobId, setJobId] = useState<string | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [cancelling, setCancelling] = useState(false);
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  // Follow the job every second until it ends.
  useEffect(() => {
    if (!jobId) return;
    let timer = 0;
    let stopped = false;
    const poll = async () => {
      try {
        const next = await getJob(jobId);
        if (stopped) return;
        setJob(next);
        if (JOB_DONE.has(next.state)) return;
      } catch (err) {
        if (stopped) return;
        setError(describeError(err));
        if (err instanceof ApiError && err.status === 404) return;
      }
      timer = window.setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [jobId]);

  const running = Boolean(jobId && (!job || !JOB_DONE.has(job.state)));

  const run = async () => {
    setError(null);
    setPeriodErrors({});
    let start: number;
    let end: number;
    if (period === "custom") {
      start = fromLocalInput(from, timeZone);
      end = fromLocalInput(to, timeZone);
      const problems: { start?: string; end?: string } = {};
      if (Number.isNaN(start)) problems.start = "Enter the start of the period.";
      if (Number.isNaN(end)) problems.end = "Enter the end of the period.";
      if (Object.keys(problems).length) {
        setPeriodErrors(problems);
        return;
      }
    } else {
      end = Date.now();
      start = end - (PERIODS.find((p) => p.key === period)?.ms ?? 86_400_000);
    }
    setStarting(true);
    setJob(null);
    setJobId(null);
    onProblems([]);
    try {
      const { job_id } = await startBacktest(definition(), new Date(start).toISOString(), new Date(end).toISOString());
      if (alive.current) setJobId(job_id);
    } catch (err) {
      if (!alive.current) return;
      if (err instanceof ApiError && err.status === 422) {
        const rest: FieldProblem[] = [];
        const period: { start?: string; end?: string } = {};
        for (const d of err.details) {
          const field = normaliseField(d.field);
          if (field === "start" || field === "end") period[field] = d.message;
          else rest.push(d);
        }
        setPeriodErrors(period);
        onProblems(rest);
      }
      setError(describeError(err));
    } finally {
      if (alive.current) setStarting(false);
    }
  };

  const cancel = async () => {
    if (!jobId) return;
    setCancelling(true);
    try {
      setJob(await cancelJob(jobId));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setCancelling(false);
    }
  };

  const result = job?.state === "succeeded" ? (job.result as unknown as BacktestResult) : null;

  return (
    <Card title="Backtest" className="rule-backtest">
      <p className="muted small">
        What this rule, as it stands in the form (saved or not), would have done over a past period, computed from the
        stored history. Nothing is notified.
      </p>
      <div className="rule-backtest-controls">
        <div className="segmented" role="group" aria-label="Backtest period">
          {PERIODS.map((p) => (
            <button key={p.key} type="button" className={period === p.key ? "active" : ""} aria-pressed={period === p.key} onClick={() => setPeriod(p.key)}>
              {p.label}
            </button>
          ))}
        </div>
        {period === "custom" && (
          <div className="rule-backtest-custom" role="group" aria-label="Backtest custom period">
            <label className={periodErrors.start ? "field-invalid" : ""}>
              <span>From</span>
              <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} aria-invalid={Boolean(periodErrors.start)} />
              {periodErrors.start && <span className="field-error">{periodErrors.start}</span>}
            </label>
            <label className={periodErrors.end ? "field-invalid" : ""}>
              <span>To</span>
              <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} aria-invalid={Boolean(periodErrors.end)} />
              {periodErrors.end && <span className="field-error">{periodErrors.end}</span>}
            </label>
            {timeZone && <span className="muted small">in {timeZone}</span>}
          </div>
        )}
        <span className="toolbar-spacer" />
        {running ? (
          <button type="button" className="btn btn-danger-outline" disabled={cancelling} onClick={() => void cancel()}>
            {cancelling ? "Cancelling…" : "Cancel backtest"}
          </button>
        ) : (
          <button type="button" className="btn btn-primary" disabled={starting} onClick={() => void run()}>
            {starting ? "Starting…" : "Run backtest"}
          </button>
        )}
      </div>
      {period !== "custom" && (periodErrors.start || periodErrors.end) && (
        <p className="field-error">{periodErrors.start ?? periodErrors.end}</p>
      )}
      {error && (
        <Notice tone="error" title="The backtest did not run" onClose={() => setError(null)}>
          {error}
        </Notice>
      )}
      {jobId && job && !JOB_DONE.has(job.state) && <Progress job={job} />}
      {jobId && !job && <Progress job={null} />}
      {job?.state === "failed" && (
        <Notice tone="error" title="The backtest failed">
          {job.error || job.message || "The job failed."}
        </Notice>
      )}
      {job?.state === "cancelled" && <Notice tone="info" title="Backtest cancelled" />}
      {result && <BacktestResultView result={result} timeZone={timeZone} />}
    </Card>
  );
}

function Progress({ job }: { job: Job | null }) {
  const progress = job?.progress ?? 0;
  const text = job ? job.message || (job.state === "queued" ? "Waiting for a worker…" : "Running…") : "Starting…";
  return (
    <div className="rule-progress" data-testid="backtest-progress">
      <div className="rule-progress-bar" role="progressbar" aria-label="Backtest progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={progress}>
        <span style={{ width: `${Math.max(2, progress)}%` }} />
      </div>
      <span className="small muted">
        {progress}% · {text}
      </span>
    </div>
  );
}

interface DeviceRow {
  device: string;
  alerts: BacktestAlert[];
  openMs: number;
}

function BacktestResultView({ result, timeZone }: { result: BacktestResult; timeZone?: string }) {
  const start = Date.parse(result.start);
  const end = Date.parse(result.end);
  const rows = useMemo<DeviceRow[]>(() => {
    const byDevice = new Map<string, BacktestAlert[]>();
    for (const a of result.alerts) byDevice.set(a.device_id, [...(byDevice.get(a.device_id) ?? []), a]);
    return [...byDevice.entries()]
      .map(([device, alerts]) => ({
        device,
        alerts: alerts.sort((x, y) => x.opened_at.localeCompare(y.opened_at)),
        openMs: alerts.reduce((sum, a) => sum + ((a.resolved_at ? Date.parse(a.resolved_at) : end) - Date.parse(a.opened_at)), 0),
      }))
      .sort((x, y) => y.alerts.length - x.alerts.length || x.device.localeCompare(y.device));
  }, [result, end]);
  const count = result.alerts.length;
  const intervals = [...result.alerts].sort((x, y) => x.opened_at.localeCompare(y.opened_at));

  return (
    <div className="rule-backtest-result" data-testid="backtest-result">
      <div className="import-counts">
        <div className={`stat${count ? " stat-bad" : " stat-good"}`}>
          <span className="stat-value" data-testid="backtest-alert-count">
            {count}
          </span>
          <span className="stat-label">{count === 1 ? "alert would have opened" : "alerts would have opened"}</span>
        </div>
        <div className="stat">
          <span className="stat-value" data-testid="backtest-devices-affected">
            {rows.length}
          </span>
          <span className="stat-label">{rows.length === 1 ? "device affected" : "devices affected"}</span>
        </div>
        <div className="stat">
          <span className="stat-value" data-testid="backtest-devices">
            {result.devices}
          </span>
          <span className="stat-label">devices evaluated</span>
        </div>
        <div className="stat">
          <span className="stat-value">{result.points.toLocaleString("en-GB")}</span>
          <span className="stat-label">points evaluated</span>
        </div>
      </div>
      <p className="small muted">
        {formatDateTimeSeconds(start, timeZone)} – {formatDateTimeSeconds(end, timeZone)}
      </p>
      {result.truncated && (
        <Notice tone="warning" title="Only the newest 1,000 alerts are shown">
          The rule would have opened more alerts in this period; tighten it or choose a shorter period.
        </Notice>
      )}
      {count === 0 ? (
        <p className="rule-backtest-none">The rule would not have opened any alert in this period.</p>
      ) : (
        <>
          <Timeline rows={rows} start={start} end={end} timeZone={timeZone} />
          <div className="table-wrap">
            <table className="table table-compact" aria-label="Backtest alerts per device">
              <thead>
                <tr>
                  <th>Device</th>
                  <th className="num">Alerts</th>
                  <th>Time open</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.device} data-device={r.device}>
                    <td className="mono">{r.device}</td>
                    <td className="num">{r.alerts.length}</td>
                    <td>{spanText(r.openMs)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="table-wrap">
            <table className="table table-compact" aria-label="Backtest alert intervals">
              <thead>
                <tr>
                  <th>Device</th>
                  <th>Opened</th>
                  <th>Resolved</th>
                  <th>Open for</th>
                  <th>Values that triggered</th>
                </tr>
              </thead>
              <tbody>
                {intervals.map((a, i) => (
                  <tr key={`${a.device_id}-${a.opened_at}-${i}`} data-device={a.device_id}>
                    <td className="mono">{a.device_id}</td>
                    <td className="nowrap">{formatDateTimeSeconds(Date.parse(a.opened_at), timeZone)}</td>
                    <td className="nowrap">
                      {a.resolved_at ? formatDateTimeSeconds(Date.parse(a.resolved_at), timeZone) : <span className="muted">still open at the end</span>}
                    </td>
                    <td className="nowrap">{spanText((a.resolved_at ? Date.parse(a.resolved_at) : end) - Date.parse(a.opened_at))}</td>
                    <td className="mono small">
                      {Object.entries(a.trigger_values ?? {})
                        .map(([k, v]) => `${k} = ${formatValue(v)}`)
                        .join(", ") || "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </div>
  );
}

const ROW_H = 26;
const LABEL_W = 150;
const WIDTH = 900;

/**
 * One row per device, a bar for each interval an alert would have been open. When the alerts
 * sit in a small part of the period, the timeline can zoom to them.
 */
function Timeline({ rows, start: periodStart, end: periodEnd, timeZone }: { rows: DeviceRow[]; start: number; end: number; timeZone?: string }) {
  const shown = rows.slice(0, 30);
  const [zoomed, setZoomed] = useState(false);
  const around = useMemo(() => {
    const opened = rows.flatMap((r) => r.alerts.map((a) => Date.parse(a.opened_at)));
    const closed = rows.flatMap((r) => r.alerts.map((a) => (a.resolved_at ? Date.parse(a.resolved_at) : periodEnd)));
    const lo = Math.min(...opened);
    const hi = Math.max(...closed);
    const pad = Math.max((hi - lo) * 0.1, 2000);
    return { start: Math.max(periodStart, lo - pad), end: Math.min(periodEnd, hi + pad) };
  }, [rows, periodStart, periodEnd]);
  const canZoom = around.end - around.start < (periodEnd - periodStart) * 0.2;
  const start = zoomed && canZoom ? around.start : periodStart;
  const end = zoomed && canZoom ? around.end : periodEnd;
  const plotW = WIDTH - LABEL_W - 10;
  const span = Math.max(1, end - start);
  const x = (t: number) => LABEL_W + ((Math.min(end, Math.max(start, t)) - start) / span) * plotW;
  const height = shown.length * ROW_H + 28;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => start + f * span);
  const tickText = (t: number) =>
    new Intl.DateTimeFormat(
      "en-GB",
      span > 2 * 86_400_000
        ? { day: "2-digit", month: "short", timeZone }
        : span > 12 * 3600_000
          ? { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", timeZone }
          : span > 10 * 60_000
            ? { hour: "2-digit", minute: "2-digit", timeZone }
            : { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone },
    ).format(t);
  return (
    <div className="rule-timeline-box">
      {canZoom && (
        <div className="segmented rule-timeline-zoom" role="group" aria-label="Timeline range">
          <button type="button" className={zoomed ? "" : "active"} aria-pressed={!zoomed} onClick={() => setZoomed(false)}>
            Whole period
          </button>
          <button type="button" className={zoomed ? "active" : ""} aria-pressed={zoomed} onClick={() => setZoomed(true)}>
            Around the alerts
          </button>
        </div>
      )}
      <svg className="rule-timeline" viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label="Backtest timeline" width="100%">
        {ticks.map((t) => (
          <g key={t}>
            <line x1={x(t)} x2={x(t)} y1={0} y2={height - 20} className="rule-timeline-grid" />
            <text x={x(t)} y={height - 6} textAnchor={t === start ? "start" : t === end ? "end" : "middle"} className="chart-tick">
              {tickText(t)}
            </text>
          </g>
        ))}
        {shown.map((r, i) => (
          <g key={r.device} data-device={r.device} transform={`translate(0, ${i * ROW_H})`}>
            <text x={LABEL_W - 8} y={ROW_H / 2 + 4} textAnchor="end" className="rule-timeline-label">
              {r.device.length > 20 ? `${r.device.slice(0, 19)}…` : r.device}
            </text>
            <rect x={LABEL_W} y={4} width={plotW} height={ROW_H - 8} className="rule-timeline-lane" />
            {r.alerts.map((a, j) => {
              const x0 = x(Date.parse(a.opened_at));
              const x1 = x(a.resolved_at ? Date.parse(a.resolved_at) : end);
              return (
                <rect key={j} x={x0} y={6} width={Math.max(2, x1 - x0)} height={ROW_H - 12} rx={2} className={`rule-timeline-bar${a.resolved_at ? "" : " open"}`} data-interval={j}>
                  <title>
                    {`${r.device}: ${formatDateTimeSeconds(Date.parse(a.opened_at), timeZone)} – ${
                      a.resolved_at ? formatDateTimeSeconds(Date.parse(a.resolved_at), timeZone) : "still open"
                    }`}
                  </title>
                </rect>
              );
            })}
          </g>
        ))}
      </svg>
      {rows.length > shown.length && <p className="small muted">The timeline shows the 30 devices with the most alerts; the tables list all.</p>}
    </div>
  );
}
