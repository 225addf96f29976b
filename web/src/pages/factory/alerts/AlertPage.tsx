// "/f/:slug/alerts/:alertId": one alert: what fired where, the values that triggered and cleared
// it, every transition of its timeline, the notifications sent about it, and (with the alerts
// permission) Acknowledge and Resolve-with-note. It refreshes itself, so an alert that resolves
// on its own is seen doing so.
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import {
  SEVERITY_LABELS,
  acknowledgeAlert,
  getAlert,
  listDeliveries,
  resolveAlert,
  type AlertDetail,
  type Delivery,
} from "../../../api/alerts";
import { ApiError, describeError } from "../../../api/errors";
import type { Page } from "../../../api/types";
import { useAuth } from "../../../auth/AuthContext";
import { Card, Notice, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { formatDateTimeSeconds } from "../../../lib/telemetryFormat";
import { AlertStateBadge, DeliveriesTable, ResolveModal, SeverityBadge, ValuesList, When } from "./common";
import { usePolled } from "./live";

const POLL_MS = 3000;

const EVENT_LABELS: Record<string, string> = {
  opened: "Opened",
  acknowledged: "Acknowledged",
  resolved: "Resolved",
};

export function AlertPage() {
  const { slug = "", alertId = "" } = useParams();
  const { can, principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const mayAct = can("alerts");

  const alert = usePolled<AlertDetail>(() => getAlert(alertId), [alertId], POLL_MS);
  const deliveries = usePolled<Page<Delivery>>(() => listDeliveries({ alert_id: alertId }, 100, 0), [alertId], POLL_MS * 2);
  const [current, setCurrent] = useState<AlertDetail | null>(null);
  const [busy, setBusy] = useState(false);
  const [resolving, setResolving] = useState(false);
  const [resolveError, setResolveError] = useState<string | null>(null);
  const [flash, setFlash] = useState<{ tone: "success" | "error"; text: string } | null>(null);

  // The answer of an action shows at once; the next poll carries on from there.
  const data = pickNewest(alert.data, current);

  const acknowledge = async () => {
    setBusy(true);
    setFlash(null);
    try {
      setCurrent(await acknowledgeAlert(alertId));
      setFlash({ tone: "success", text: "Alert acknowledged." });
      alert.reload();
    } catch (err) {
      setFlash({ tone: "error", text: describeError(err) });
      alert.reload();
    } finally {
      setBusy(false);
    }
  };

  const resolve = async (note: string) => {
    setBusy(true);
    setResolveError(null);
    try {
      setCurrent(await resolveAlert(alertId, note));
      setResolving(false);
      setFlash({ tone: "success", text: "Alert resolved." });
      alert.reload();
      deliveries.reload();
    } catch (err) {
      setResolveError(describeError(err));
      alert.reload();
    } finally {
      setBusy(false);
    }
  };

  if (!data) {
    const err = alert.error;
    if (err) {
      const missing = err instanceof ApiError && err.status === 404;
      return (
        <>
          <Breadcrumb slug={slug} />
          <Notice tone="error" title={missing ? "Alert not found" : "Could not load the alert"}>
            {missing ? "This alert does not exist in this factory." : describeError(err)}
          </Notice>
        </>
      );
    }
    return (
      <>
        <Breadcrumb slug={slug} />
        <Spinner label="Loading alert…" />
      </>
    );
  }

  const resolved = data.state === "resolved";
  return (
    <>
      <Breadcrumb slug={slug} />
      <div className="page-header">
        <div>
          <h1 className="alert-title">
            <SeverityBadge severity={data.severity} />
            <span>{data.rule_name || "(unnamed rule)"}</span>
            <AlertStateBadge state={data.state} />
          </h1>
          <p className="page-subtitle">
            On <Link to={`/f/${slug}/devices/${encodeURIComponent(data.device_id)}`} className="mono">{data.device_id}</Link>, opened{" "}
            {formatDateTime(data.opened_at, timeZone)} (<When iso={data.opened_at} timeZone={timeZone} />)
          </p>
        </div>
        {mayAct && !resolved && (
          <div className="page-actions">
            {data.state === "open" && (
              <button type="button" className="btn btn-secondary" disabled={busy} onClick={acknowledge}>
                Acknowledge
              </button>
            )}
            <button
              type="button"
              className="btn btn-primary"
              disabled={busy}
              onClick={() => {
                setResolveError(null);
                setResolving(true);
              }}
            >
              Resolve…
            </button>
          </div>
        )}
      </div>
      {flash && (
        <Notice tone={flash.tone} onClose={() => setFlash(null)}>
          {flash.text}
        </Notice>
      )}
      {alert.error && data && <Notice tone="warning">Could not refresh the alert: {describeError(alert.error)}</Notice>}
      <div className="device-grid">
        <div>
          <Card title="Timeline" className="timeline-card">
            <ol className="timeline" aria-label="Timeline">
              {data.timeline.map((event, index) => (
                <li key={`${event.at}-${index}`} className={`timeline-item timeline-${event.kind}`} data-kind={event.kind}>
                  <span className="timeline-dot" aria-hidden="true" />
                  <div className="timeline-body">
                    <div className="timeline-head">
                      <strong>{EVENT_LABELS[event.kind] ?? event.kind}</strong>
                      <span className="muted"> by </span>
                      <span className="timeline-actor">{event.actor || "—"}</span>
                      <time className="timeline-time muted small" dateTime={event.at}>
                        {formatDateTimeSeconds(Date.parse(event.at), timeZone)}
                      </time>
                    </div>
                    {Object.keys(event.values ?? {}).length > 0 && (
                      <div className="timeline-values">
                        <ValuesList values={event.values} />
                      </div>
                    )}
                    {event.note && <blockquote className="timeline-note">{event.note}</blockquote>}
                  </div>
                </li>
              ))}
            </ol>
          </Card>
          <Card title="Notifications" className="deliveries-card">
            {deliveries.error ? (
              <Notice tone="error">{describeError(deliveries.error)}</Notice>
            ) : !deliveries.data ? (
              <Spinner label="Loading deliveries…" />
            ) : (
              <DeliveriesTable
                deliveries={deliveries.data.items}
                slug={slug}
                timeZone={timeZone}
                showAlert={false}
                label="Notifications of this alert"
                empty="No notifications were sent about this alert (the rule names no recipients)."
              />
            )}
          </Card>
        </div>
        <Card title="Details">
          <dl className="facts alert-facts">
            <dt>Rule</dt>
            <dd>
              <Link to={`/f/${slug}/rules/${encodeURIComponent(data.rule_id)}`}>{data.rule_name || data.rule_id}</Link>
            </dd>
            <dt>Device</dt>
            <dd>
              <Link to={`/f/${slug}/devices/${encodeURIComponent(data.device_id)}`} className="mono">
                {data.device_id}
              </Link>
            </dd>
            <dt>Severity</dt>
            <dd>{SEVERITY_LABELS[data.severity] ?? data.severity}</dd>
            <dt>State</dt>
            <dd data-testid="alert-state">
              <AlertStateBadge state={data.state} />
            </dd>
            <dt>Triggered by</dt>
            <dd data-testid="trigger-values">
              <ValuesList values={data.trigger_values} />
            </dd>
            <dt>Cleared by</dt>
            <dd data-testid="clear-values">
              <ValuesList values={data.clear_values} empty={resolved ? "— (resolved by a person)" : "— (still active)"} />
            </dd>
            <dt>Opened</dt>
            <dd>{formatDateTime(data.opened_at, timeZone)}</dd>
            <dt>Acknowledged</dt>
            <dd>{data.acknowledged_at ? `${formatDateTime(data.acknowledged_at, timeZone)} by ${data.acknowledged_by}` : <span className="muted">Not yet</span>}</dd>
            <dt>Resolved</dt>
            <dd>
              {data.resolved_at ? `${formatDateTime(data.resolved_at, timeZone)} by ${data.resolved_by}` : <span className="muted">Not yet</span>}
            </dd>
            {data.resolution_note && (
              <>
                <dt>Note</dt>
                <dd className="pre-wrap">{data.resolution_note}</dd>
              </>
            )}
          </dl>
          {!mayAct && <p className="muted small">You can see this alert; acknowledging and resolving need the Alerts permission.</p>}
        </Card>
      </div>
      {resolving && <ResolveModal count={1} busy={busy} error={resolveError} onCancel={() => setResolving(false)} onResolve={resolve} />}
    </>
  );
}

function Breadcrumb({ slug }: { slug: string }) {
  return (
    <nav className="breadcrumb" aria-label="Breadcrumb">
      <Link to={`/f/${slug}/alerts`}>Alerts</Link>
      <span aria-hidden="true">›</span>
      <span>Alert</span>
    </nav>
  );
}

/** The later of a polled answer and an action's answer (by how far along the timeline each is). */
function pickNewest(polled: AlertDetail | null, acted: AlertDetail | null): AlertDetail | null {
  if (!polled || !acted || acted.id !== polled.id) return polled;
  return acted.timeline.length > polled.timeline.length ? acted : polled;
}
