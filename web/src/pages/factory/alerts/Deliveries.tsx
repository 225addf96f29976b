// "/f/:slug/deliveries": the notification delivery log: every email and WhatsApp message about an
// alert, its state and attempts, and for failures the channel's error, in red.
import { Link, useParams, useSearchParams } from "react-router-dom";
import { DELIVERY_STATES, DELIVERY_STATE_LABELS, listDeliveries, type Delivery, type DeliveryState } from "../../../api/alerts";
import { useAuth } from "../../../auth/AuthContext";
import { Notice, PageHeader, Pagination, Spinner } from "../../../components/ui";
import { DeliveriesTable } from "./common";
import { usePolled, usePolledPage } from "./live";

const POLL_MS = 5000;

export function Deliveries() {
  const { slug = "" } = useParams();
  const { principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const [params, setParams] = useSearchParams();
  const raw = params.get("state") ?? "";
  const state: DeliveryState | "" = (DELIVERY_STATES as readonly string[]).includes(raw) ? (raw as DeliveryState) : "";

  const deliveries = usePolledPage<Delivery>((limit, offset) => listDeliveries({ state: state || undefined }, limit, offset), [state], POLL_MS, 50);
  // How many failed, whatever the filter shows, so that failures cannot go unnoticed.
  const failed = usePolled(() => listDeliveries({ state: "failed" }, 1, 0), [], POLL_MS);
  const failedCount = failed.data?.total ?? 0;

  const setState = (value: string) => setParams(value ? { state: value } : {}, { replace: true });

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to={`/f/${slug}/alerts`}>Alerts</Link>
        <span aria-hidden="true">›</span>
        <span>Delivery log</span>
      </nav>
      <PageHeader
        title="Delivery log"
        subtitle="Every notification about an alert: channel, recipient, state and attempts. Failed deliveries keep the channel's error."
      />
      {failedCount > 0 && state !== "failed" && (
        <Notice tone="error" title={`${failedCount} notification${failedCount === 1 ? "" : "s"} could not be delivered`}>
          <button type="button" className="btn btn-link btn-sm inline-link" onClick={() => setState("failed")}>
            Show the failed deliveries
          </button>
        </Notice>
      )}
      <section className="card">
        <div className="table-toolbar">
          <div className="segmented" role="group" aria-label="Filter by state">
            {["", ...DELIVERY_STATES].map((s) => (
              <button key={s || "all"} type="button" className={state === s ? "active" : undefined} aria-pressed={state === s} onClick={() => setState(s)}>
                {s ? DELIVERY_STATE_LABELS[s] : "All"}
                {s === "failed" && failedCount > 0 && <span className="segmented-count">{failedCount}</span>}
              </button>
            ))}
          </div>
          <span className="toolbar-spacer" />
          <button type="button" className="btn btn-secondary btn-sm" onClick={deliveries.reload}>
            Refresh
          </button>
        </div>
        {deliveries.error && <Notice tone="error" title="Could not load the delivery log">{deliveries.error}</Notice>}
        {!deliveries.page && deliveries.loading && <Spinner label="Loading deliveries…" />}
        {deliveries.page && (
          <>
            <DeliveriesTable
              deliveries={deliveries.page.items}
              slug={slug}
              timeZone={timeZone}
              showAlert
              empty={state ? `No ${DELIVERY_STATE_LABELS[state]?.toLowerCase() ?? state} deliveries.` : "No notifications yet. Rules that name recipients send them when alerts open and resolve."}
            />
            <Pagination total={deliveries.page.total} limit={deliveries.limit} offset={deliveries.offset} onChange={deliveries.setOffset} noun="deliveries" />
          </>
        )}
      </section>
    </>
  );
}
