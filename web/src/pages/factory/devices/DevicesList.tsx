// "/f/:slug/devices": the device registry with status counts, server-side search and filters.
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, call } from "../../../api/client";
import { STATUS_LABELS, formatSeconds, type Device, type DeviceCreated, type DeviceStatus, type DeviceSummary } from "../../../api/devices";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Notice, PageHeader, Pagination, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { formatAgo } from "../../../lib/telemetryFormat";
import { useDebounced, usePaged } from "../../../lib/usePaged";
import { AddDeviceForm, CredentialsModal, ImportCsvModal } from "./DeviceForms";

const STATUSES: DeviceStatus[] = ["online", "offline", "never_seen", "disabled"];

export function StatusBadge({ status }: { status: DeviceStatus }) {
  return (
    <span className={`status status-${status}`} data-status={status}>
      <span className="status-dot" aria-hidden="true" />
      {STATUS_LABELS[status]}
    </span>
  );
}

function SummaryTiles({
  summary,
  active,
  onPick,
}: {
  summary: DeviceSummary | null;
  active: DeviceStatus | "";
  onPick: (status: DeviceStatus | "") => void;
}) {
  const tiles: { key: DeviceStatus | ""; label: string; value: number | undefined }[] = [
    { key: "", label: "All devices", value: summary?.total },
    ...STATUSES.map((s) => ({ key: s, label: STATUS_LABELS[s], value: summary?.[s] })),
  ];
  const total = summary?.total ?? 0;
  return (
    <div className="summary-tiles" role="group" aria-label="Devices by status" data-testid="device-summary">
      {tiles.map((tile) => (
        <button
          key={tile.key || "all"}
          type="button"
          className={`summary-tile summary-${tile.key || "all"}${active === tile.key ? " active" : ""}`}
          aria-pressed={active === tile.key}
          onClick={() => onPick(tile.key)}
          data-testid={`summary-${tile.key || "total"}`}
        >
          <span className="summary-label">
            {tile.key && <span className={`status-dot status-${tile.key}`} aria-hidden="true" />}
            {tile.label}
          </span>
          <span className="summary-value">{tile.value ?? "–"}</span>
          {tile.key && total > 0 && (
            <span className="summary-bar" aria-hidden="true">
              <span style={{ width: `${((tile.value ?? 0) / total) * 100}%` }} />
            </span>
          )}
        </button>
      ))}
    </div>
  );
}

export function DevicesList() {
  const { slug = "" } = useParams();
  const navigate = useNavigate();
  const { can, principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const mayChange = can("devices");
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState<DeviceStatus | "">("");
  const [typeFilter, setTypeFilter] = useState("");
  const q = useDebounced(search.trim(), 300);
  const type = useDebounced(typeFilter.trim(), 300);
  const [summary, setSummary] = useState<DeviceSummary | null>(null);
  const [adding, setAdding] = useState(false);
  const [importing, setImporting] = useState(false);
  const [created, setCreated] = useState<DeviceCreated | null>(null);
  const [flash, setFlash] = useState<{ tone: "success" | "error"; title: string; body?: ReactNode } | null>(null);
  const [knownTypes, setKnownTypes] = useState<string[]>([]);

  const devices = usePaged<Device>(
    (limit, offset) =>
      call(
        api.GET("/api/v1/devices", {
          params: { query: { limit, offset, q: q || undefined, status: status || undefined, type: type || undefined } },
        }),
      ),
    [q, status, type],
  );

  const loadSummary = useCallback(() => {
    call(api.GET("/api/v1/devices/summary"))
      .then(setSummary)
      .catch(() => undefined);
  }, []);

  // Counts and statuses follow the devices' activity while the page is open.
  const { reload } = devices;
  useEffect(() => {
    loadSummary();
    const timer = window.setInterval(() => {
      loadSummary();
      reload();
    }, 15_000);
    return () => window.clearInterval(timer);
  }, [loadSummary, reload]);

  useEffect(() => {
    const seen = devices.page?.items.map((d) => d.type).filter(Boolean) ?? [];
    if (seen.length) setKnownTypes((prev) => Array.from(new Set([...prev, ...seen])).sort());
  }, [devices.page]);

  const refresh = () => {
    devices.reload();
    loadSummary();
  };

  const filtered = Boolean(q || status || type);

  return (
    <>
      <PageHeader
        title="Devices"
        subtitle="Meters and machines that publish telemetry, their status and MQTT credentials."
        actions={
          <>
            <Badge tone={mayChange ? "good" : "neutral"}>{mayChange ? "You can make changes" : "Read only"}</Badge>
            {mayChange && (
              <>
                <button type="button" className="btn btn-secondary" onClick={() => setImporting(true)}>
                  Import CSV
                </button>
                {!adding && (
                  <button type="button" className="btn btn-primary" onClick={() => setAdding(true)}>
                    + Add device
                  </button>
                )}
              </>
            )}
          </>
        }
      />
      {flash && (
        <Notice tone={flash.tone} title={flash.title} onClose={() => setFlash(null)}>
          {flash.body}
        </Notice>
      )}
      {adding && (
        <AddDeviceForm
          onCancel={() => setAdding(false)}
          onCreated={(device) => {
            setAdding(false);
            setCreated(device);
            setFlash({ tone: "success", title: `Device ${device.device_id} registered` });
            refresh();
          }}
        />
      )}
      <SummaryTiles summary={summary} active={status} onPick={setStatus} />
      <section className="card">
        <div className="table-toolbar">
          <input
            type="search"
            className="search"
            placeholder="Search id, name, type or location…"
            aria-label="Search devices"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
          <select aria-label="Filter by status" className="toolbar-select" value={status} onChange={(e) => setStatus(e.target.value as DeviceStatus | "")}>
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {STATUS_LABELS[s]}
              </option>
            ))}
          </select>
          <input
            className="toolbar-input"
            placeholder="Type"
            aria-label="Filter by type"
            list="device-types"
            value={typeFilter}
            onChange={(e) => setTypeFilter(e.target.value)}
          />
          <datalist id="device-types">
            {knownTypes.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
          {filtered && (
            <button
              type="button"
              className="btn btn-link btn-sm"
              onClick={() => {
                setSearch("");
                setStatus("");
                setTypeFilter("");
              }}
            >
              Clear filters
            </button>
          )}
          <span className="toolbar-spacer" />
          {devices.loading && devices.page && <span className="muted small">Updating…</span>}
          <button type="button" className="btn btn-secondary btn-sm" onClick={refresh}>
            Refresh
          </button>
        </div>
        {devices.error && <Notice tone="error" title="Could not load devices">{devices.error}</Notice>}
        {!devices.page && devices.loading && <Spinner label="Loading devices…" />}
        {devices.page && (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Devices">
                <thead>
                  <tr>
                    <th>Device</th>
                    <th>Type</th>
                    <th>Location</th>
                    <th>Status</th>
                    <th>Last seen</th>
                    <th>Firmware</th>
                  </tr>
                </thead>
                <tbody>
                  {devices.page.items.length === 0 && (
                    <tr>
                      <td colSpan={6} className="table-empty">
                        {filtered
                          ? "No devices match these filters."
                          : mayChange
                            ? "No devices yet. Add one, or import a CSV list."
                            : "No devices yet."}
                      </td>
                    </tr>
                  )}
                  {devices.page.items.map((d) => (
                    <tr
                      key={d.device_id}
                      data-device={d.device_id}
                      className={`row-link${d.enabled ? "" : " row-muted"}`}
                      onClick={(e) => {
                        if ((e.target as HTMLElement).closest("a")) return;
                        navigate(`/f/${slug}/devices/${encodeURIComponent(d.device_id)}`);
                      }}
                    >
                      <td>
                        <Link className="cell-primary" to={`/f/${slug}/devices/${encodeURIComponent(d.device_id)}`}>
                          {d.name}
                        </Link>
                        <div className="cell-secondary mono">{d.device_id}</div>
                      </td>
                      <td>{d.type || <span className="muted">—</span>}</td>
                      <td>{d.location || <span className="muted">—</span>}</td>
                      <td>
                        <StatusBadge status={d.status} />
                        {(d.status === "online" || d.status === "offline") && (
                          <div
                            className="cell-secondary"
                            data-testid="online-window"
                            title={`Online while its last message is at most ${formatSeconds(d.online_window_seconds)} old${
                              d.report_interval_seconds ? ` (reports every ${formatSeconds(d.report_interval_seconds)})` : ""
                            }`}
                          >
                            window {formatSeconds(d.online_window_seconds)}
                          </div>
                        )}
                      </td>
                      <td className="nowrap" title={d.last_seen ? formatDateTime(d.last_seen, timeZone) : undefined}>
                        {d.last_seen ? formatAgo(d.last_seen) : <span className="muted">Never</span>}
                      </td>
                      <td className="mono">{d.firmware_version || <span className="muted">—</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination total={devices.page.total} limit={devices.limit} offset={devices.offset} onChange={devices.setOffset} noun="devices" />
          </>
        )}
      </section>
      {created && (
        <CredentialsModal
          device={created}
          title={`MQTT credentials for ${created.device_id}`}
          onClose={() => setCreated(null)}
          onOpen={() => navigate(`/f/${slug}/devices/${encodeURIComponent(created.device_id)}`)}
        />
      )}
      {importing && <ImportCsvModal onClose={() => setImporting(false)} onImported={refresh} />}
    </>
  );
}
