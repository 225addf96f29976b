// "/f/:slug/audit": who did what in this factory (super admin).
import { useState } from "react";
import { api, call } from "../../api/client";
import type { AuditEvent } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { Badge, Notice, PageHeader, Pagination, Spinner } from "../../components/ui";
import { formatDateTime } from "../../lib/format";
import { useDebounced, usePaged } from "../../lib/usePaged";
import { NoAccess } from "./NoAccess";

export function AuditLog() {
  const { isSuperAdmin } = useAuth();
  if (!isSuperAdmin) return <NoAccess what="the audit log" />;
  return <AuditTable />;
}

/** Actions recorded today, offered as suggestions; the filter matches an action exactly. */
const KNOWN_ACTIONS = [
  "login_succeeded",
  "login_failed",
  "login_refused_locked",
  "login_refused_disabled",
  "account_locked",
  "password_changed",
  "password_reset",
  "user_created",
  "user_updated",
  "role_changed",
  "user_disabled",
  "user_enabled",
  "factory_created",
  "factory_updated",
];

function actionTone(action: string): "bad" | "good" | "neutral" {
  if (/fail|lock|denied|disable/.test(action)) return "bad";
  if (/login|create|enable/.test(action)) return "good";
  return "neutral";
}

function DetailsCell({ details }: { details: AuditEvent["details"] }) {
  const entries = details ? Object.entries(details) : [];
  if (!entries.length) return <span className="muted">—</span>;
  return (
    <dl className="kv">
      {entries.map(([key, value]) => (
        <div key={key}>
          <dt>{key}</dt>
          <dd>{typeof value === "string" ? value : JSON.stringify(value)}</dd>
        </div>
      ))}
    </dl>
  );
}

function AuditTable() {
  const { principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const [filter, setFilter] = useState("");
  const action = useDebounced(filter.trim(), 300);
  const events = usePaged<AuditEvent>(
    (limit, offset) => call(api.GET("/api/v1/audit-events", { params: { query: { limit, offset, action: action || undefined } } })),
    [action],
    50,
  );

  return (
    <>
      <PageHeader title="Audit log" subtitle="Every sign-in and every change to users and roles in this factory, newest first." />
      <section className="card">
        <div className="table-toolbar">
          <input
            type="search"
            className="search"
            placeholder="Filter by action, e.g. login_failed"
            aria-label="Filter by action"
            list="audit-actions"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
          />
          <datalist id="audit-actions">
            {KNOWN_ACTIONS.map((a) => (
              <option key={a} value={a} />
            ))}
          </datalist>
          <button type="button" className="btn btn-secondary btn-sm" onClick={events.reload}>
            Refresh
          </button>
        </div>
        {events.error && <Notice tone="error" title="Could not load the audit log">{events.error}</Notice>}
        {!events.page && events.loading && <Spinner label="Loading events…" />}
        {events.page && (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Audit events">
                <thead>
                  <tr>
                    <th>Time</th>
                    <th>Actor</th>
                    <th>Action</th>
                    <th>Target</th>
                    <th className="col-details">Details</th>
                    <th>IP address</th>
                  </tr>
                </thead>
                <tbody>
                  {events.page.items.length === 0 && (
                    <tr>
                      <td colSpan={6} className="table-empty">
                        {action ? `No events with action “${action}”.` : "No events yet."}
                      </td>
                    </tr>
                  )}
                  {events.page.items.map((ev) => (
                    <tr key={ev.id}>
                      <td className="nowrap">{formatDateTime(ev.created_at, timeZone)}</td>
                      <td>{ev.actor_email || <span className="muted">—</span>}</td>
                      <td>
                        <Badge tone={actionTone(ev.action)}>{ev.action}</Badge>
                      </td>
                      <td>
                        {ev.target_type ? (
                          <>
                            <div className="cell-primary">{ev.target_type}</div>
                            <div className="cell-secondary mono" title={ev.target_id}>
                              {ev.target_id.length > 12 ? `${ev.target_id.slice(0, 8)}…` : ev.target_id}
                            </div>
                          </>
                        ) : (
                          <span className="muted">—</span>
                        )}
                      </td>
                      <td>
                        <DetailsCell details={ev.details} />
                      </td>
                      <td className="mono nowrap">{ev.ip || "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination total={events.page.total} limit={events.limit} offset={events.offset} onChange={events.setOffset} noun="events" />
          </>
        )}
      </section>
    </>
  );
}
