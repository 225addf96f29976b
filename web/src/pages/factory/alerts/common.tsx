// Pieces shared by the alert pages, the overview's panel and the delivery log.
import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import {
  CHANNEL_LABELS,
  DELIVERY_EVENT_LABELS,
  DELIVERY_STATE_LABELS,
  SEVERITY_LABELS,
  STATE_LABELS,
  type Delivery,
} from "../../../api/alerts";
import { Modal } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { formatAgo } from "../../../lib/telemetryFormat";

export function SeverityBadge({ severity }: { severity: string }) {
  return (
    <span className={`sev sev-${severity}`} data-severity={severity}>
      <span className="sev-mark" aria-hidden="true" />
      {SEVERITY_LABELS[severity] ?? severity}
    </span>
  );
}

export function AlertStateBadge({ state }: { state: string }) {
  return (
    <span className={`alert-state alert-state-${state}`} data-state={state}>
      {STATE_LABELS[state] ?? state}
    </span>
  );
}

export function DeliveryStateBadge({ state }: { state: string }) {
  return (
    <span className={`delivery-state delivery-state-${state}`} data-state={state}>
      {DELIVERY_STATE_LABELS[state] ?? state}
    </span>
  );
}

/** The values of an alert or a timeline entry as `name value` chips. */
export function ValuesList({ values, empty = "—" }: { values: Record<string, unknown> | null | undefined; empty?: string }) {
  const entries = Object.entries(values ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return <span className="muted">{empty}</span>;
  return (
    <span className="alert-values">
      {entries.map(([name, value]) => (
        <span key={name} className="alert-value" data-property={name}>
          <span className="alert-value-name">{name}</span>
          <span className="alert-value-number">{typeof value === "number" ? formatNumber(value) : String(value)}</span>
        </span>
      ))}
    </span>
  );
}

function formatNumber(value: number): string {
  return Number.isFinite(value) ? new Intl.NumberFormat("en-GB", { maximumFractionDigits: 3 }).format(value) : String(value);
}

/** When something happened: "5 min ago", with the exact time in the factory's zone on hover. */
export function When({ iso, timeZone }: { iso: string | null | undefined; timeZone?: string }) {
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={formatDateTime(iso, timeZone)} className="nowrap">
      {formatAgo(iso)}
    </time>
  );
}

/** Asks for the note that goes with resolving one or more alerts. */
export function ResolveModal({
  count,
  busy,
  error,
  onCancel,
  onResolve,
}: {
  count: number;
  busy: boolean;
  error: string | null;
  onCancel: () => void;
  onResolve: (note: string) => void;
}) {
  const [note, setNote] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onResolve(note.trim());
  };
  const title = count === 1 ? "Resolve alert" : `Resolve ${count} alerts`;
  return (
    <Modal title={title} onClose={onCancel}>
      <form onSubmit={submit} aria-label={title} noValidate>
        <div className="field">
          <label htmlFor="resolve-note">Resolution note</label>
          <textarea
            id="resolve-note"
            rows={4}
            maxLength={2000}
            placeholder="What was done, or why no action is needed"
            value={note}
            onChange={(e) => setNote(e.target.value)}
            autoFocus
          />
          <p className="field-hint">Kept on the alert and shown in its timeline.</p>
        </div>
        {error && (
          <p className="field-error" role="alert">
            {error}
          </p>
        )}
        <div className="form-actions">
          <button type="button" className="btn btn-secondary" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Resolving…" : count === 1 ? "Resolve" : `Resolve ${count}`}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** Rows of the delivery log; failures in red with their error. */
export function DeliveriesTable({
  deliveries,
  slug,
  timeZone,
  showAlert,
  label = "Deliveries",
  empty,
}: {
  deliveries: Delivery[];
  slug: string;
  timeZone?: string;
  showAlert: boolean;
  label?: string;
  empty: string;
}) {
  const columns = showAlert ? 8 : 7;
  return (
    <div className="table-wrap">
      <table className="table delivery-table" aria-label={label}>
        <thead>
          <tr>
            <th>Time</th>
            <th>Channel</th>
            <th>Recipient</th>
            <th>Event</th>
            <th>State</th>
            <th className="num">Attempts</th>
            <th>Error</th>
            {showAlert && <th>Alert</th>}
          </tr>
        </thead>
        <tbody>
          {deliveries.length === 0 && (
            <tr>
              <td colSpan={columns} className="table-empty">
                {empty}
              </td>
            </tr>
          )}
          {deliveries.map((d) => (
            <tr key={d.id} data-delivery={d.id} data-state={d.state} className={d.state === "failed" ? "row-failed" : undefined}>
              <td className="nowrap">
                <When iso={d.sent_at ?? d.created_at} timeZone={timeZone} />
              </td>
              <td>{CHANNEL_LABELS[d.channel] ?? d.channel}</td>
              <td className="mono">{d.recipient}</td>
              <td>{DELIVERY_EVENT_LABELS[d.event] ?? d.event}</td>
              <td>
                <DeliveryStateBadge state={d.state} />
              </td>
              <td className="num">{d.attempts}</td>
              <td className="delivery-error">{d.error ? <span className="text-bad">{d.error}</span> : <span className="muted">—</span>}</td>
              {showAlert && (
                <td>
                  {d.event === "system" ? (
                    <span className="muted small">System alert</span>
                  ) : d.alert_id ? (
                    <Link to={`/f/${slug}/alerts/${encodeURIComponent(d.alert_id)}`} className="mono small">
                      {d.alert_id.slice(0, 8)}
                    </Link>
                  ) : (
                    <span className="muted">—</span>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
