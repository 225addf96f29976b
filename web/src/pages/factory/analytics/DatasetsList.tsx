// "/f/:slug/analytics/datasets": the factory's datasets (immutable telemetry snapshots), newest
// first, with search; the list refreshes itself while an export is running.
import { useEffect, useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { formatBytes, listDatasets, type Dataset } from "../../../api/analytics";
import { Badge, Notice, PageHeader, Pagination, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { useDebounced, usePaged } from "../../../lib/usePaged";
import { DatasetStateBadge, StartButton, useAnalytics, useBase, useTimeZone } from "./common";

const PENDING_POLL_MS = 2000;

export function DatasetsList() {
  const navigate = useNavigate();
  const base = useBase();
  const timeZone = useTimeZone();
  const { mayChange } = useAnalytics();
  const [search, setSearch] = useState("");
  const q = useDebounced(search.trim(), 300);
  const datasets = usePaged<Dataset>((limit, offset) => listDatasets(q, limit, offset), [q]);
  const pending = datasets.page?.items.some((d) => d.state === "pending") ?? false;
  const { reload } = datasets;

  useEffect(() => {
    if (!pending) return;
    const timer = window.setTimeout(reload, PENDING_POLL_MS);
    return () => window.clearTimeout(timer);
  }, [pending, reload, datasets.page]);

  return (
    <>
      <PageHeader
        title="Datasets"
        subtitle="Immutable snapshots of telemetry (chosen devices, properties, range and resolution) that runs are made on."
        actions={
          <>
            <Badge tone={mayChange ? "good" : "neutral"}>{mayChange ? "You can make changes" : "Read only"}</Badge>
            <StartButton onClick={() => navigate(`${base}/datasets/new`)}>+ New dataset</StartButton>
          </>
        }
      />
      <section className="card">
        <div className="table-toolbar">
          <input
            type="search"
            className="search"
            placeholder="Search datasets by name…"
            aria-label="Search datasets"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
          <span className="toolbar-spacer" />
          {pending && <span className="muted small">An export is running; this list follows it.</span>}
          <button type="button" className="btn btn-secondary btn-sm" onClick={reload}>
            Refresh
          </button>
        </div>
        {datasets.error && (
          <Notice tone="error" title="Could not load the datasets">
            {datasets.error}
          </Notice>
        )}
        {!datasets.page && datasets.loading && <Spinner label="Loading datasets…" />}
        {datasets.page && (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Datasets">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>State</th>
                    <th className="num">Rows</th>
                    <th className="num">Columns</th>
                    <th>Created</th>
                    <th className="num">Size</th>
                  </tr>
                </thead>
                <tbody>
                  {datasets.page.items.length === 0 && (
                    <tr>
                      <td colSpan={6} className="table-empty">
                        {q ? "No dataset matches this search." : "No datasets yet. Export one from the factory's telemetry to start."}
                      </td>
                    </tr>
                  )}
                  {datasets.page.items.map((d) => {
                    const href = `${base}/datasets/${encodeURIComponent(d.id)}`;
                    return (
                      <tr
                        key={d.id}
                        data-dataset={d.name}
                        className="row-link"
                        onClick={(e) => {
                          if ((e.target as HTMLElement).closest("a, button")) return;
                          navigate(href);
                        }}
                      >
                        <td>
                          <Link className="cell-primary" to={href}>
                            {d.name}
                          </Link>
                          <div className="cell-secondary">{describeRequest(d)}</div>
                        </td>
                        <td>
                          <DatasetStateBadge state={d.state} />
                        </td>
                        <td className="num">{d.state === "ready" ? d.row_count.toLocaleString("en-GB") : "—"}</td>
                        <td className="num" title={d.columns.join(", ")}>
                          {d.state === "ready" ? d.columns.length : "—"}
                        </td>
                        <td className="nowrap">{formatDateTime(d.created_at, timeZone)}</td>
                        <td className="num nowrap">{d.state === "ready" ? formatBytes(d.size_bytes) : "—"}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
            <Pagination total={datasets.page.total} limit={datasets.limit} offset={datasets.offset} onChange={datasets.setOffset} noun="datasets" />
          </>
        )}
      </section>
    </>
  );
}

/** "2 devices · 3 properties · 15m mean" from the dataset's request. */
export function describeRequest(d: Dataset): string {
  const r = d.request as { device_ids?: unknown; properties?: unknown; resolution?: unknown; aggregate?: unknown };
  const devices = Array.isArray(r.device_ids) ? r.device_ids.length : 0;
  const props = Array.isArray(r.properties) ? r.properties.length : 0;
  const resolution = typeof r.resolution === "string" ? r.resolution : "";
  const aggregate = typeof r.aggregate === "string" && resolution !== "raw" ? ` ${r.aggregate}` : "";
  return [
    `${devices} ${devices === 1 ? "device" : "devices"}`,
    `${props} ${props === 1 ? "property" : "properties"}`,
    resolution ? `${resolution}${aggregate}` : "",
  ]
    .filter(Boolean)
    .join(" · ");
}
