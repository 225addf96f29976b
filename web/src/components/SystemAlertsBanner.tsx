// System alerts (time-series store down, property registration failing, a notification channel
// failing): a banner across a factory's pages for its super admins, and the platform root's
// section of every factory's. Checked every 15 seconds while the tab is visible.
import { useEffect, useRef, useState } from "react";
import { SYSTEM_ALERT_KINDS, listRootSystemAlerts, listSystemAlerts, type RootSystemAlert, type SystemAlert } from "../api/alerts";
import { ApiError, describeError } from "../api/errors";
import type { Page } from "../api/types";
import { formatDateTime } from "../lib/format";
import { formatAgo } from "../lib/telemetryFormat";
import { Pagination } from "./ui";

const POLL_MS = 15_000;

export function SystemAlertsBanner({ timeZone }: { timeZone?: string }) {
  const [alerts, setAlerts] = useState<SystemAlert[]>([]);
  const [total, setTotal] = useState(0);
  const [collapsed, setCollapsed] = useState(false);
  const unavailable = useRef(false);

  useEffect(() => {
    let stopped = false;
    const load = () => {
      if (unavailable.current || document.hidden) return;
      listSystemAlerts("open", 20, 0)
        .then((page) => {
          if (stopped) return;
          setAlerts(page.items);
          setTotal(page.total);
        })
        .catch((err: unknown) => {
          // Not offered by this server, or not for this person: no banner, no more asking.
          if (err instanceof ApiError && (err.status === 403 || err.status === 404)) unavailable.current = true;
        });
    };
    load();
    const timer = window.setInterval(load, POLL_MS);
    const onVisibility = () => {
      if (!document.hidden) load();
    };
    document.addEventListener("visibilitychange", onVisibility);
    return () => {
      stopped = true;
      window.clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisibility);
    };
  }, []);

  if (!alerts.length) return null;
  return (
    <div className="system-banner" role="alert" aria-label="System alerts" data-testid="system-alerts-banner">
      <div className="system-banner-head">
        <strong>
          {total === 1 ? "A system problem needs attention" : `${total} system problems need attention`}
        </strong>
        <button type="button" className="btn btn-link btn-sm" onClick={() => setCollapsed((c) => !c)} aria-expanded={!collapsed}>
          {collapsed ? "Show" : "Hide"}
        </button>
      </div>
      {!collapsed && (
        <ul className="system-banner-list">
          {alerts.map((a) => (
            <li key={a.id} data-kind={a.kind}>
              <span className="system-kind">{SYSTEM_ALERT_KINDS[a.kind] ?? a.kind}</span>
              <span className="system-message">{a.message}</span>
              <span className="system-meta">
                since <time dateTime={a.opened_at} title={formatDateTime(a.opened_at, timeZone)}>{formatAgo(a.opened_at)}</time>
                {" · "}
                {a.occurrences} occurrence{a.occurrences === 1 ? "" : "s"}
                {" · last "}
                <time dateTime={a.last_seen_at} title={formatDateTime(a.last_seen_at, timeZone)}>{formatAgo(a.last_seen_at)}</time>
              </span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/**
 * The platform root's "System alerts" section: system problems of every factory, open or
 * resolved, newest first. Refreshed every 15 seconds while the tab is visible.
 */
export function RootSystemAlerts() {
  const [state, setState] = useState<"open" | "resolved" | "">("open");
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<RootSystemAlert> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [missing, setMissing] = useState(false);
  const limit = 20;

  useEffect(() => {
    let stopped = false;
    const load = () => {
      if (document.hidden) return;
      listRootSystemAlerts(state, limit, offset)
        .then((next) => {
          if (stopped) return;
          setPage(next);
          setError(null);
        })
        .catch((err: unknown) => {
          if (stopped) return;
          if (err instanceof ApiError && err.status === 404) setMissing(true);
          else setError(describeError(err));
        });
    };
    load();
    const timer = window.setInterval(load, POLL_MS);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [state, offset]);

  const openCount = state === "open" ? page?.total : undefined;
  return (
    <section className="card system-alerts-card" aria-label="System alerts">
      <header className="card-header">
        <h2>
          System alerts
          {openCount ? <span className="system-open-count"> {openCount} open</span> : null}
        </h2>
        <div className="segmented" role="group" aria-label="System alerts to show">
          {(["open", "resolved", ""] as const).map((s) => (
            <button
              key={s || "all"}
              type="button"
              className={state === s ? "active" : undefined}
              aria-pressed={state === s}
              onClick={() => {
                setState(s);
                setOffset(0);
              }}
            >
              {s === "open" ? "Open" : s === "resolved" ? "Resolved" : "All"}
            </button>
          ))}
        </div>
      </header>
      {missing && <p className="card-body muted">This server does not report system alerts yet.</p>}
      {error && <p className="card-body field-error">Could not load system alerts: {error}</p>}
      {!missing && page && (
        <>
          <div className="table-wrap">
            <table className="table" aria-label="System alerts of all factories">
              <thead>
                <tr>
                  <th>Factory</th>
                  <th>Problem</th>
                  <th>Message</th>
                  <th>Since</th>
                  <th>Last seen</th>
                  <th className="num">Occurrences</th>
                  <th>State</th>
                </tr>
              </thead>
              <tbody>
                {page.items.length === 0 && (
                  <tr>
                    <td colSpan={7} className="table-empty">
                      {state === "open" ? "No open system alerts. Every factory's pipeline is healthy." : "No system alerts."}
                    </td>
                  </tr>
                )}
                {page.items.map((a) => (
                  <tr key={a.id} data-kind={a.kind} data-state={a.state} className={a.state === "open" ? "row-failed" : undefined}>
                    <td>{a.factory_name || a.factory_id}</td>
                    <td className="nowrap">{SYSTEM_ALERT_KINDS[a.kind] ?? a.kind}</td>
                    <td>{a.message}</td>
                    <td className="nowrap" title={formatDateTime(a.opened_at)}>
                      {formatAgo(a.opened_at)}
                    </td>
                    <td className="nowrap" title={formatDateTime(a.last_seen_at)}>
                      {formatAgo(a.last_seen_at)}
                    </td>
                    <td className="num">{a.occurrences}</td>
                    <td>
                      <span className={`alert-state alert-state-${a.state}`}>{a.state === "open" ? "Open" : "Resolved"}</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pagination total={page.total} limit={limit} offset={offset} onChange={setOffset} noun="system alerts" />
        </>
      )}
    </section>
  );
}
