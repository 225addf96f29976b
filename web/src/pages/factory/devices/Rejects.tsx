// "/f/:slug/telemetry-rejects": telemetry the platform refused, for the super admin: counts per
// device and reason, and the latest rejected messages with what was wrong.
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, call } from "../../../api/client";
import { REJECT_REASONS, type Reject, type RejectCount } from "../../../api/devices";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Card, Notice, PageHeader, Pagination, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { formatAgo } from "../../../lib/telemetryFormat";
import { useDebounced, usePaged } from "../../../lib/usePaged";
import { NoAccess } from "../NoAccess";

export function Rejects() {
  const { isSuperAdmin } = useAuth();
  if (!isSuperAdmin) return <NoAccess what="the telemetry reject log" />;
  return <RejectLog />;
}

function reasonLabel(reason: string): string {
  return REJECT_REASONS[reason] ?? reason;
}

function DeviceLink({ deviceId }: { deviceId: string }) {
  const { slug = "" } = useParams();
  if (!deviceId) return <span className="muted">—</span>;
  return (
    <Link className="mono nowrap" to={`/f/${slug}/devices/${encodeURIComponent(deviceId)}`}>
      {deviceId}
    </Link>
  );
}

function RejectLog() {
  const { principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const [reason, setReason] = useState("");
  const [deviceFilter, setDeviceFilter] = useState("");
  const deviceId = useDebounced(deviceFilter.trim(), 300);

  const rejects = usePaged<Reject>(
    (limit, offset) =>
      call(
        api.GET("/api/v1/telemetry/rejects", {
          params: { query: { limit, offset, reason: reason || undefined, device_id: deviceId || undefined } },
        }),
      ),
    [reason, deviceId],
    25,
  );
  const counts = usePaged<RejectCount>((limit, offset) => call(api.GET("/api/v1/telemetry/reject-counts", { params: { query: { limit, offset } } })), [], 20);

  const reloadRejects = rejects.reload;
  const reloadCounts = counts.reload;
  useEffect(() => {
    const timer = window.setInterval(() => {
      reloadRejects();
      reloadCounts();
    }, 10_000);
    return () => window.clearInterval(timer);
  }, [reloadRejects, reloadCounts]);

  const maxCount = Math.max(1, ...(counts.page?.items.map((c) => c.count) ?? [1]));
  const reasons = Array.from(new Set([...Object.keys(REJECT_REASONS), ...(counts.page?.items.map((c) => c.reason) ?? [])]));

  return (
    <>
      <PageHeader
        title="Telemetry rejects"
        subtitle="Messages and metrics the platform refused, and why. Good metrics in the same message are still stored."
        actions={
          <button
            type="button"
            className="btn btn-secondary"
            onClick={() => {
              rejects.reload();
              counts.reload();
            }}
          >
            Refresh
          </button>
        }
      />
      <Card title="Rejected per device and reason" className="counts-card">
        {counts.error && <Notice tone="error" title="Could not load the counts">{counts.error}</Notice>}
        {!counts.page && counts.loading && <Spinner />}
        {counts.page && counts.page.items.length === 0 && <p className="muted">Nothing has been rejected. Every message so far was valid.</p>}
        {counts.page && counts.page.items.length > 0 && (
          <>
            <div className="table-wrap">
              <table className="table table-compact" aria-label="Reject counts">
                <thead>
                  <tr>
                    <th>Device</th>
                    <th>Reason</th>
                    <th className="col-bar">Count</th>
                    <th>Last</th>
                  </tr>
                </thead>
                <tbody>
                  {counts.page.items.map((c) => (
                    <tr key={`${c.device_id}/${c.reason}`} data-device={c.device_id} data-reason={c.reason}>
                      <td>
                        <DeviceLink deviceId={c.device_id} />
                      </td>
                      <td>
                        <button type="button" className="reason-link" title="Show these rejects below" onClick={() => setReason(c.reason)}>
                          <Badge tone="bad">{reasonLabel(c.reason)}</Badge>
                        </button>
                      </td>
                      <td className="col-bar">
                        <div className="count-bar">
                          <span className="count-bar-fill" style={{ width: `${(c.count / maxCount) * 100}%` }} />
                          <span className="count-bar-value">{c.count.toLocaleString("en-GB")}</span>
                        </div>
                      </td>
                      <td className="nowrap" title={formatDateTime(c.last_at, timeZone)}>
                        {formatAgo(c.last_at)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            {counts.page.total > counts.limit && (
              <Pagination total={counts.page.total} limit={counts.limit} offset={counts.offset} onChange={counts.setOffset} noun="device and reason pairs" />
            )}
          </>
        )}
      </Card>

      <section className="card">
        <header className="card-header">
          <h2>Latest rejects</h2>
        </header>
        <div className="table-toolbar">
          <select aria-label="Filter by reason" className="toolbar-select" value={reason} onChange={(e) => setReason(e.target.value)}>
            <option value="">Any reason</option>
            {reasons.map((r) => (
              <option key={r} value={r}>
                {reasonLabel(r)}
              </option>
            ))}
          </select>
          <input className="toolbar-input" placeholder="Device ID" aria-label="Filter by device" value={deviceFilter} onChange={(e) => setDeviceFilter(e.target.value)} />
          {(reason || deviceFilter) && (
            <button
              type="button"
              className="btn btn-link btn-sm"
              onClick={() => {
                setReason("");
                setDeviceFilter("");
              }}
            >
              Clear filters
            </button>
          )}
          <span className="toolbar-spacer" />
          {rejects.loading && rejects.page && <span className="muted small">Updating…</span>}
        </div>
        {rejects.error && <Notice tone="error" title="Could not load the rejects">{rejects.error}</Notice>}
        {!rejects.page && rejects.loading && <Spinner label="Loading rejects…" />}
        {rejects.page && (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Rejects">
                <thead>
                  <tr>
                    <th>Time</th>
                    <th>Device</th>
                    <th>Reason</th>
                    <th>Metric</th>
                    <th>Detail</th>
                    <th className="col-details">Payload excerpt</th>
                  </tr>
                </thead>
                <tbody>
                  {rejects.page.items.length === 0 && (
                    <tr>
                      <td colSpan={6} className="table-empty">
                        {reason || deviceId ? "No rejects match these filters." : "No rejects recorded."}
                      </td>
                    </tr>
                  )}
                  {rejects.page.items.map((r, i) => (
                    <tr key={`${r.at}-${r.device_id}-${i}`} data-reason={r.reason}>
                      <td className="nowrap">{formatDateTime(r.at, timeZone)}</td>
                      <td>
                        <DeviceLink deviceId={r.device_id} />
                      </td>
                      <td>
                        <Badge tone="bad">{reasonLabel(r.reason)}</Badge>
                        <div className="cell-secondary mono">{r.reason}</div>
                      </td>
                      <td className="mono">{r.metric || <span className="muted">—</span>}</td>
                      <td>{r.detail}</td>
                      <td>
                        {r.excerpt ? <code className="excerpt" title={r.excerpt}>{r.excerpt}</code> : <span className="muted">—</span>}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination total={rejects.page.total} limit={rejects.limit} offset={rejects.offset} onChange={rejects.setOffset} noun="rejects" />
          </>
        )}
      </section>
    </>
  );
}
