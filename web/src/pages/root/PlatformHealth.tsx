// "/root/health": the platform root's view of the installation itself - are the dependencies
// reachable, are the telemetry and worker processes alive, is work piling up? Platform-wide
// figures only (no factory's data). Refreshed every 10 seconds while the tab is visible.
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { Link } from "react-router-dom";
import { describeError } from "../../api/errors";
import { loadPlatformHealth, type Dependency, type PlatformHealth as Health, type PlatformService } from "../../api/health";
import { DataTable, numeric, type Column } from "../../components/DataTable";
import { Sparkline } from "../../components/Sparkline";
import { PageHeader, Spinner } from "../../components/ui";
import { formatDateTime } from "../../lib/format";
import { formatAgo, formatValue } from "../../lib/telemetryFormat";
import "./health.css";

const POLL_MS = 10_000;
const QUEUE_WAIT_WARNING_S = 300;

const DEPENDENCY_NAMES: Record<string, string> = {
  database: "Metadata database",
  mqtt: "MQTT broker",
  timeseries: "Time-series store",
  objectstore: "Object store",
};

const STATUS_TEXT: Record<Health["status"], { title: string; body: string }> = {
  ok: { title: "All systems working", body: "Every dependency answers and every process sends its heartbeat." },
  degraded: { title: "Needs attention", body: "The platform runs, but something below is not right." },
  down: { title: "Platform down", body: "The metadata database cannot be reached: nothing works until it is back." },
};

function formatSeconds(seconds: number): string {
  if (seconds < 1) return "0 s";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function StatusDot({ tone }: { tone: "good" | "bad" | "warn" | "neutral" }) {
  return <span className={`health-dot health-dot-${tone}`} aria-hidden="true" />;
}

const SERVICE_STATUS: Record<string, { tone: "good" | "bad" | "neutral"; label: string; hint: string }> = {
  up: { tone: "good", label: "Up", hint: "Heartbeats arrive." },
  silent: { tone: "bad", label: "Silent", hint: "No heartbeat for three intervals: crashed, hung or cut off from the database." },
  stopped: { tone: "neutral", label: "Stopped", hint: "It shut down cleanly." },
};

function Tile({
  label,
  value,
  unit,
  tone,
  note,
  children,
}: {
  label: string;
  value: string;
  unit?: string;
  tone: "good" | "bad" | "warn" | "neutral";
  note?: string;
  children?: ReactNode;
}) {
  return (
    <div className={`health-tile health-tile-${tone}`} data-testid={`tile-${label}`}>
      <span className="health-tile-label">{label}</span>
      <span className="health-tile-value">
        {value}
        {unit && <span className="health-tile-unit"> {unit}</span>}
      </span>
      {children}
      {note && <span className="health-tile-note">{note}</span>}
    </div>
  );
}

function DependencyRow({ dep }: { dep: Dependency }) {
  const ok = dep.status === "ok";
  return (
    <tr data-dependency={dep.name} data-status={dep.status} className={ok ? undefined : "row-failed"}>
      <td>
        <StatusDot tone={ok ? "good" : "bad"} />
        <span className="cell-primary">{DEPENDENCY_NAMES[dep.name] ?? dep.name}</span>
      </td>
      <td>
        <span className={`badge ${ok ? "badge-good" : "badge-bad"}`}>{ok ? "Reachable" : "Unreachable"}</span>
      </td>
      <td className="num nowrap">{formatValue(dep.latency_ms)} ms</td>
      <td className="health-detail">{ok ? <code>{dep.detail ?? ""}</code> : <span className="field-error">{dep.error}</span>}</td>
    </tr>
  );
}

/** A card named by its heading, holding one table (named `label`, or as the card). */
function TableCard({
  title,
  note,
  label = title,
  columns,
  empty,
  children,
}: {
  title: string;
  note?: string;
  label?: string;
  columns: Column[];
  empty?: ReactNode;
  children: ReactNode;
}) {
  return (
    <section className="card" aria-label={title}>
      <header className="card-header">
        <h2>{title}</h2>
        {note && <span className="muted">{note}</span>}
      </header>
      <DataTable label={label} columns={columns} empty={empty}>
        {children}
      </DataTable>
    </section>
  );
}

function serviceFigures(s: PlatformService): string[] {
  const st = s.stats;
  if (s.kind === "telemetry") {
    return [
      `${formatValue(st.messages_received ?? 0)} received`,
      `${formatValue(st.messages_rejected ?? 0)} rejected`,
      `${formatValue(st.points_written ?? 0)} points written`,
      `spool ${formatValue(st.spool_points ?? 0)} points`,
      st.mqtt_connected === false ? "MQTT disconnected" : "MQTT connected",
    ];
  }
  return [
    `${formatValue(st.jobs_processed ?? 0)} jobs done`,
    `${formatValue(st.jobs_failed ?? 0)} failed`,
    st.running_job_kind ? `running ${st.running_job_kind}` : "idle",
  ];
}

function ServiceRow({ s }: { s: PlatformService }) {
  const status = SERVICE_STATUS[s.status] ?? SERVICE_STATUS.stopped!;
  const telemetry = s.kind === "telemetry";
  const trouble = s.status === "up" && (s.stats.mqtt_connected === false || (s.stats.spool_points ?? 0) > 0);
  return (
    <tr data-service={s.id} data-status={s.status} className={s.status === "silent" ? "row-failed" : undefined}>
      <td>
        <span className={`badge badge-${status.tone}`} title={status.hint}>
          <StatusDot tone={status.tone} />
          {status.label}
        </span>
      </td>
      <td>
        <div className="cell-primary">{s.name}</div>
        <div className="cell-secondary">
          {telemetry ? "Telemetry" : "Worker"} · {s.host} · pid {s.pid} · v{s.version}
        </div>
      </td>
      <td className="nowrap" title={formatDateTime(s.last_seen_at)}>
        {formatAgo(s.last_seen_at)}
        <div className="cell-secondary">up since {formatDateTime(s.started_at)}</div>
      </td>
      <td className={trouble ? "health-figures health-figures-warn" : "health-figures"}>{serviceFigures(s).join(" · ")}</td>
      <td>
        <Sparkline
          label={telemetry ? "Messages per second" : "Jobs waiting"}
          values={s.history.map((p) => (telemetry ? p.ingest_rate : p.queue_depth) ?? null)}
          tone={s.status === "up" ? "good" : "neutral"}
        />
      </td>
    </tr>
  );
}

export function PlatformHealth() {
  const [health, setHealth] = useState<Health | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  const load = useCallback(() => {
    setLoading(true);
    loadPlatformHealth()
      .then((next) => {
        setHealth(next);
        setError(null);
      })
      .catch((err: unknown) => setError(describeError(err)))
      .finally(() => setLoading(false));
  }, []);

  useEffect(() => {
    load();
    const timer = window.setInterval(() => {
      if (!document.hidden) load();
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [load]);

  const header = (
    <PageHeader
      title="Platform health"
      subtitle="The installation's own dependencies and processes, for all factories together. Refreshed every 10 seconds."
      actions={
        <button type="button" className="btn btn-secondary" onClick={load} disabled={loading}>
          {loading ? "Checking…" : "Check now"}
        </button>
      }
    />
  );
  if (!health) {
    return (
      <>
        {header}
        {error ? (
          <section className="card">
            <p className="card-body field-error">Could not load the platform health: {error}</p>
          </section>
        ) : (
          <Spinner label="Checking the platform…" />
        )}
      </>
    );
  }

  const tone = health.status === "ok" ? "good" : health.status === "degraded" ? "warn" : "bad";
  const alerts = health.alerts_open;
  const queueTone = health.queue.oldest_age_seconds > QUEUE_WAIT_WARNING_S ? "warn" : health.queue.workers_up ? "good" : "bad";
  const telemetryTone = health.telemetry.services_up ? "good" : "bad";
  const spoolTone = health.telemetry.spool_points > 0 ? "warn" : "good";
  const telemetryServices = health.services.filter((s) => s.kind === "telemetry");
  const workers = health.services.filter((s) => s.kind !== "telemetry");

  return (
    <>
      {header}
      {error && <p className="field-error">The last check failed ({error}); showing the one before.</p>}
      <section className={`health-status health-status-${tone}`} role="status" aria-label="Platform status" data-status={health.status}>
        <StatusDot tone={tone} />
        <div>
          <strong>{STATUS_TEXT[health.status].title}</strong>
          <span className="health-status-body">{STATUS_TEXT[health.status].body}</span>
          {health.problems.length > 0 && (
            <ul className="health-problems" aria-label="Problems">
              {health.problems.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          )}
        </div>
        <span className="health-checked" title={formatDateTime(health.checked_at)}>
          checked {formatAgo(health.checked_at)}
        </span>
      </section>

      <div className="health-tiles">
        <Tile
          label="Ingest rate"
          value={formatValue(health.telemetry.ingest_rate)}
          unit="msg/s"
          tone={telemetryTone}
          note={`${health.telemetry.services_up} telemetry process${health.telemetry.services_up === 1 ? "" : "es"} up`}
        >
          <Sparkline label="Messages per second, all telemetry processes" values={health.trend.map((p) => p.ingest_rate ?? null)} tone={telemetryTone} />
        </Tile>
        <Tile
          label="Jobs waiting"
          value={formatValue(health.queue.due)}
          tone={queueTone}
          note={
            health.queue.due
              ? `oldest waiting ${formatSeconds(health.queue.oldest_age_seconds)} · ${health.queue.workers_up} worker(s) up`
              : `${health.queue.running} running · ${health.queue.workers_up} worker(s) up`
          }
        >
          <Sparkline label="Jobs waiting" values={health.trend.map((p) => p.queue_depth ?? null)} tone={queueTone} />
        </Tile>
        <Tile
          label="Spool"
          value={formatValue(health.telemetry.spool_points)}
          unit="points"
          tone={spoolTone}
          note={health.telemetry.spool_points ? "waiting for the time-series store" : "every point is stored"}
        >
          <Sparkline label="Points in the spool" values={health.trend.map((p) => p.spool_points ?? null)} tone={spoolTone} />
        </Tile>
        <Tile
          label="Open alerts"
          value={formatValue((alerts.critical ?? 0) + (alerts.warning ?? 0) + (alerts.info ?? 0))}
          tone={(alerts.critical ?? 0) > 0 ? "bad" : (alerts.warning ?? 0) > 0 ? "warn" : "neutral"}
          note={`${alerts.critical ?? 0} critical · ${alerts.warning ?? 0} warning · ${alerts.info ?? 0} info`}
        />
        <Tile
          label="System alerts"
          value={formatValue(health.system_alerts_open)}
          tone={health.system_alerts_open ? "bad" : "good"}
          note={health.system_alerts_open ? "open - see the list on Factories" : "none open"}
        />
      </div>

      <TableCard title="Dependencies" columns={["Dependency", "Status", numeric("Latency"), "Detail"]}>
        {health.dependencies.map((d) => (
          <DependencyRow key={d.name} dep={d} />
        ))}
      </TableCard>

      <TableCard
        title="Processes"
        note="telemetry services and workers seen in the last 24 hours"
        columns={["Status", "Process", "Last heartbeat", "Figures", "Last minutes"]}
        empty={
          health.services.length === 0 && (
            <>
              No telemetry service or worker has reported yet. Start <code>factoryops telemetry</code> and{" "}
              <code>factoryops worker</code> (or <code>factoryops up</code>).
            </>
          )
        }
      >
        {[...telemetryServices, ...workers].map((s) => (
          <ServiceRow key={s.id} s={s} />
        ))}
      </TableCard>

      <TableCard
        title="Job queue"
        note="notifications, analytics and reports of every factory"
        label="Job queue by kind"
        columns={["Kind", numeric("Due"), numeric("Waiting (incl. later retries)"), numeric("Running"), numeric("Oldest due waits")]}
        empty={health.queue.by_kind.length === 0 && "The queue is empty."}
      >
        {health.queue.by_kind.map((q) => (
          <tr key={q.kind} data-kind={q.kind} className={q.oldest_age_seconds > QUEUE_WAIT_WARNING_S ? "row-failed" : undefined}>
            <td>
              <code>{q.kind}</code>
            </td>
            <td className="num">{q.due}</td>
            <td className="num">{q.queued}</td>
            <td className="num">{q.running}</td>
            <td className="num nowrap">{q.due ? formatSeconds(q.oldest_age_seconds) : "—"}</td>
          </tr>
        ))}
      </TableCard>
      <p className="muted health-footnote">
        Prometheus metrics: the API on <code>/metrics</code> (in production with the bearer token{" "}
        <code>FACTORYOPS_HTTP__METRICS_TOKEN</code>), telemetry services and workers on{" "}
        <code>FACTORYOPS_METRICS_PORT</code>. See <Link to="/root">Factories</Link> for system alerts by factory.
      </p>
    </>
  );
}
