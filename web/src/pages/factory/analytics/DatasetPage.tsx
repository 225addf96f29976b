// "/f/:slug/analytics/datasets/:datasetId": one dataset. While it is exporting, the page follows
// the export job every second; once ready it shows the manifest (query, rows, content hash,
// per-series statistics), a preview of the first rows, downloads, and the runs made on it.
import { useEffect, useState } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router-dom";
import {
  downloadDataset,
  formatBytes,
  getDataset,
  keyMetric,
  listRuns,
  previewDataset,
  TASK_LABELS,
  type Dataset,
  type DatasetPreview,
  type Run,
} from "../../../api/analytics";
import { ApiError, describeError } from "../../../api/errors";
import { getJob, JOB_DONE, type Job } from "../../../api/rules";
import { Card, Notice, PageHeader, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { formatDateTimeSeconds, formatValue } from "../../../lib/telemetryFormat";
import { DatasetStateBadge, ProgressBar, RunStateBadge, StartButton, useBase, useModelTitle, useTimeZone } from "./common";
import { describeRequest } from "./DatasetsList";

const POLL_MS = 1000;

interface SeriesStats {
  device_id?: string;
  property?: string;
  rows?: number;
  first?: string;
  last?: string;
  min?: number | null;
  max?: number | null;
  mean?: number | null;
}

export function DatasetPage() {
  const { datasetId = "" } = useParams();
  const location = useLocation();
  const navigate = useNavigate();
  const base = useBase();
  const timeZone = useTimeZone();
  const [dataset, setDataset] = useState<Dataset | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [loadError, setLoadError] = useState<{ status: number; message: string } | null>(null);
  const [preview, setPreview] = useState<DatasetPreview | null>(null);
  const [previewError, setPreviewError] = useState<string | null>(null);
  const [downloadError, setDownloadError] = useState<string | null>(null);
  const [downloading, setDownloading] = useState<"data" | "manifest" | null>(null);
  const [runs, setRuns] = useState<Run[] | null>(null);
  const modelTitle = useModelTitle();
  const [notice] = useState(() => location.state as { reused?: boolean; requested?: boolean } | null);

  // The notice came with the navigation; a reload must not show it again.
  useEffect(() => {
    if (location.state) navigate(location.pathname, { replace: true, state: null });
  }, [location.pathname, location.state, navigate]);

  // The dataset, and while it exports, its job: every second until it is ready or failed.
  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const poll = async () => {
      try {
        const next = await getDataset(datasetId);
        if (stopped) return;
        setDataset(next);
        setLoadError(null);
        if (next.state === "pending" && next.job_id) {
          const nextJob = await getJob(next.job_id).catch(() => null);
          if (stopped) return;
          if (nextJob) setJob(nextJob);
        }
        if (next.state !== "pending") return;
      } catch (err) {
        if (stopped) return;
        setLoadError({ status: err instanceof ApiError ? err.status : 0, message: describeError(err) });
        if (err instanceof ApiError && err.status === 404) return;
      }
      timer = window.setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [datasetId]);

  const ready = dataset?.state === "ready";
  useEffect(() => {
    if (!ready) return;
    let cancelled = false;
    previewDataset(datasetId, 50)
      .then((p) => !cancelled && setPreview(p))
      .catch((err: unknown) => !cancelled && setPreviewError(describeError(err)));
    listRuns({ dataset_id: datasetId }, 20, 0)
      .then((page) => !cancelled && setRuns(page.items))
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [ready, datasetId]);

  const download = async (part: "data" | "manifest") => {
    if (!dataset) return;
    setDownloading(part);
    setDownloadError(null);
    try {
      await downloadDataset(dataset, part);
    } catch (err) {
      setDownloadError(describeError(err));
    } finally {
      setDownloading(null);
    }
  };

  if (loadError && !dataset) {
    return (
      <>
        <PageHeader title="Dataset" />
        <Notice tone="error" title={loadError.status === 404 ? "No such dataset" : "Could not load the dataset"}>
          {loadError.message} <Link to={`${base}/datasets`}>Back to the datasets</Link>
        </Notice>
      </>
    );
  }
  if (!dataset) return <Spinner label="Loading the dataset…" />;

  const manifest = (preview?.manifest ?? {}) as Record<string, unknown>;
  const query = (manifest.query ?? dataset.request) as Record<string, unknown>;
  const series = (Array.isArray(manifest.series) ? manifest.series : []) as SeriesStats[];
  const exporting = dataset.state === "pending";
  const jobLive = job && !JOB_DONE.has(job.state);

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to={`${base}/datasets`}>Datasets</Link> <span aria-hidden="true">/</span> <span>{dataset.name}</span>
      </nav>
      <PageHeader
        title={dataset.name}
        subtitle={`${describeRequest(dataset)} · created ${formatDateTime(dataset.created_at, timeZone)} by ${dataset.created_by || "—"}`}
        actions={
          <>
            <DatasetStateBadge state={dataset.state} />
            {ready && (
              <StartButton onClick={() => navigate(`${base}/runs/new?dataset=${encodeURIComponent(dataset.id)}`)}>New run on this dataset</StartButton>
            )}
          </>
        }
      />
      {notice?.reused && (
        <Notice tone="info" title="Reused existing snapshot">
          The same devices, properties, range and resolution were exported before; that snapshot answers this request.
        </Notice>
      )}
      {exporting && (
        <Card title="Exporting…">
          <ProgressBar
            label="Export progress"
            progress={job?.progress ?? 0}
            message={job ? job.message || (job.state === "queued" ? "Waiting for a worker…" : "Exporting…") : "Starting…"}
          />
          {job?.error && jobLive && <p className="small muted">Last attempt failed and will be retried: {job.error}</p>}
        </Card>
      )}
      {dataset.state === "failed" && (
        <Notice tone="error" title="The export failed">
          {dataset.error || "The export job failed."}
        </Notice>
      )}
      {ready && (
        <>
          <div className="analytics-grid">
            <Card title="Manifest" className="analytics-manifest">
              <dl className="facts" data-testid="dataset-manifest">
                <dt>Devices</dt>
                <dd className="mono">{Array.isArray(query.device_ids) ? query.device_ids.join(", ") : "—"}</dd>
                <dt>Properties</dt>
                <dd className="mono">{Array.isArray(query.properties) ? query.properties.join(", ") : "—"}</dd>
                <dt>Range</dt>
                <dd>
                  {formatDateTime(String(query.start ?? ""), timeZone)} – {formatDateTime(String(query.end ?? ""), timeZone)}
                </dd>
                <dt>Resolution</dt>
                <dd>
                  {String(query.resolution ?? "—")}
                  {query.aggregate ? ` (${String(query.aggregate)})` : ""}
                </dd>
                <dt>Rows</dt>
                <dd data-testid="dataset-rows">{dataset.row_count.toLocaleString("en-GB")} values (one row per value)</dd>
                <dt>Columns</dt>
                <dd className="mono">{dataset.columns.join(", ")}</dd>
                <dt>Size</dt>
                <dd>{formatBytes(dataset.size_bytes)}</dd>
                <dt>Content hash</dt>
                <dd className="mono analytics-hash" title="SHA-256 of the Parquet file">
                  {dataset.content_hash}
                </dd>
                <dt>Ready</dt>
                <dd>{formatDateTime(dataset.ready_at, timeZone)}</dd>
              </dl>
              {downloadError && (
                <Notice tone="error" title="The download failed" onClose={() => setDownloadError(null)}>
                  {downloadError}
                </Notice>
              )}
              <div className="form-actions">
                <button type="button" className="btn btn-secondary" disabled={downloading !== null} onClick={() => void download("data")}>
                  {downloading === "data" ? "Downloading…" : "Download Parquet"}
                </button>
                <button type="button" className="btn btn-secondary" disabled={downloading !== null} onClick={() => void download("manifest")}>
                  {downloading === "manifest" ? "Downloading…" : "Download manifest"}
                </button>
              </div>
            </Card>
            <Card title="Runs on this dataset">
              {!runs && <Spinner label="Loading runs…" />}
              {runs && runs.length === 0 && <p className="muted">No runs yet.</p>}
              {runs && runs.length > 0 && (
                <ul className="analytics-run-list">
                  {runs.map((r) => (
                    <li key={r.id}>
                      <Link to={`${base}/runs/${encodeURIComponent(r.id)}`}>
                        {TASK_LABELS[r.task] ?? r.task} · {r.model_name ? modelTitle(r.task, r.model_name) : "co-pilot"}
                      </Link>{" "}
                      <RunStateBadge state={r.state} /> <span className="muted small">{keyMetric(r)}</span>
                    </li>
                  ))}
                </ul>
              )}
            </Card>
          </div>
          <Card title="Series">
            {previewError && <Notice tone="error">{previewError}</Notice>}
            {!preview && !previewError && <Spinner label="Loading the manifest…" />}
            {preview && (
              <div className="table-wrap">
                <table className="table table-compact" aria-label="Series statistics">
                  <thead>
                    <tr>
                      <th>Device</th>
                      <th>Property</th>
                      <th className="num">Rows</th>
                      <th>First</th>
                      <th>Last</th>
                      <th className="num">Min</th>
                      <th className="num">Mean</th>
                      <th className="num">Max</th>
                    </tr>
                  </thead>
                  <tbody>
                    {series.length === 0 && (
                      <tr>
                        <td colSpan={8} className="table-empty">
                          No values in this range.
                        </td>
                      </tr>
                    )}
                    {series.map((s, i) => (
                      <tr key={`${s.device_id}-${s.property}-${i}`}>
                        <td className="mono">{s.device_id ?? "—"}</td>
                        <td className="mono">{s.property ?? "—"}</td>
                        <td className="num">{typeof s.rows === "number" ? s.rows.toLocaleString("en-GB") : "—"}</td>
                        <td className="nowrap">{formatDateTime(s.first, timeZone)}</td>
                        <td className="nowrap">{formatDateTime(s.last, timeZone)}</td>
                        <td className="num">{formatValue(s.min)}</td>
                        <td className="num">{formatValue(s.mean)}</td>
                        <td className="num">{formatValue(s.max)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Card>
          <Card title="Preview: the first 50 rows">
            {preview && (
              <div className="table-wrap analytics-preview">
                <table className="table table-compact" aria-label="Dataset preview">
                  <thead>
                    <tr>
                      {preview.columns.map((c) => (
                        <th key={c} className={c === "ts" ? "" : "num"}>
                          {c === "ts" ? "Time" : c}
                        </th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {preview.rows.length === 0 && (
                      <tr>
                        <td colSpan={Math.max(1, preview.columns.length)} className="table-empty">
                          The dataset holds no rows.
                        </td>
                      </tr>
                    )}
                    {preview.rows.map((row, i) => (
                      <tr key={i}>
                        {row.map((v, j) =>
                          j === 0 ? (
                            <td key={j} className="nowrap">
                              {formatDateTimeSeconds(Date.parse(String(v)), timeZone)}
                            </td>
                          ) : (
                            <td key={j} className="num">
                              {typeof v === "number" ? formatValue(v) : "—"}
                            </td>
                          ),
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Card>
        </>
      )}
    </>
  );
}
