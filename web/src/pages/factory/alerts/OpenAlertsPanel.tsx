// The overview's "Open alerts" panel: counts per severity and the newest open or acknowledged
// alerts, refreshed every 2 seconds while the tab is visible.
import { Link } from "react-router-dom";
import { SEVERITIES, SEVERITY_LABELS, alertCounts, listAlerts, type Alert, type AlertCounts } from "../../../api/alerts";
import { describeError } from "../../../api/errors";
import type { Page } from "../../../api/types";
import { Card } from "../../../components/ui";
import { AlertStateBadge, SeverityBadge, ValuesList, When } from "./common";
import { usePolled } from "./live";

const POLL_MS = 2000;
const SHOWN = 8;

export function OpenAlertsPanel({ slug, timeZone }: { slug: string; timeZone?: string }) {
  const alerts = usePolled<Page<Alert>>(() => listAlerts({ state: "unresolved" }, SHOWN, 0), [], POLL_MS);
  const counts = usePolled<AlertCounts>(alertCounts, [], POLL_MS);
  const bySeverity = counts.data?.open_by_severity ?? {};
  const total = alerts.data?.total;

  return (
    <Card
      className="open-alerts"
      title={
        <>
          Open alerts{" "}
          <span className="open-alerts-total" data-testid="open-alerts-total">
            {total ?? "–"}
          </span>
        </>
      }
      actions={
        <div className="open-alerts-actions">
          <span className="live-indicator live-open" title="Refreshes every 2 seconds">
            <span className="live-dot" aria-hidden="true" />
            Live
          </span>
          <Link to={`/f/${slug}/alerts`} className="btn btn-secondary btn-sm">
            All alerts
          </Link>
        </div>
      }
    >
      <div className="open-alerts-severities" role="group" aria-label="Open alerts by severity">
        {SEVERITIES.map((s) => (
          <Link
            key={s}
            to={`/f/${slug}/alerts?state=unresolved&severity=${s}`}
            className={`sev-count sev-count-${s}${bySeverity[s] ? " nonzero" : ""}`}
            data-testid={`open-${s}`}
          >
            <span className="sev-count-value">{counts.data ? (bySeverity[s] ?? 0) : "–"}</span>
            <span className="sev-count-label">{SEVERITY_LABELS[s]}</span>
          </Link>
        ))}
      </div>
      {alerts.error && !alerts.data ? (
        <p className="muted">Could not load alerts: {describeError(alerts.error)}</p>
      ) : alerts.data && alerts.data.items.length === 0 ? (
        <p className="open-alerts-empty">No open alerts. All quiet.</p>
      ) : (
        <ul className="open-alerts-list" aria-label="Newest open alerts">
          {(alerts.data?.items ?? []).map((a) => (
            <li key={a.id} data-alert={a.id} data-rule={a.rule_name} data-device={a.device_id} data-state={a.state}>
              <SeverityBadge severity={a.severity} />
              <Link to={`/f/${slug}/alerts/${encodeURIComponent(a.id)}`} className="open-alert-link">
                <span className="cell-primary">{a.rule_name || "(unnamed rule)"}</span>
                <span className="muted"> on </span>
                <span className="mono">{a.device_id}</span>
              </Link>
              <span className="open-alert-values">
                <ValuesList values={a.trigger_values} />
              </span>
              <When iso={a.opened_at} timeZone={timeZone} />
              <AlertStateBadge state={a.state} />
            </li>
          ))}
        </ul>
      )}
      {total !== undefined && total > SHOWN && (
        <p className="muted small open-alerts-more">
          Showing the newest {SHOWN} of {total}. <Link to={`/f/${slug}/alerts?state=unresolved`}>See them all</Link>
        </p>
      )}
    </Card>
  );
}
