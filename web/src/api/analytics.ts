// Analytics: datasets, runs, the model registry and the analytics status. Shapes taken from the
// OpenAPI types by endpoint; chart payloads (free-form JSON from the ML package) read defensively;
// downloads fetched with the session's token and handed to the browser as files.
import type { paths } from "./schema";
import { api, call, fetchWithAuth } from "./client";
import { toApiError } from "./errors";
import type { Page } from "./types";

type JsonOk<Op> = Op extends { responses: { 200: { content: { "application/json": infer T } } } }
  ? T
  : Op extends { responses: { 201: { content: { "application/json": infer T } } } }
    ? T
    : Op extends { responses: { 202: { content: { "application/json": infer T } } } }
      ? T
      : never;
type JsonBody<Op> = Op extends { requestBody: { content: { "application/json": infer T } } } ? T : never;

export type Dataset = JsonOk<paths["/api/v1/analytics/datasets/{dataset_id}"]["get"]>;
export type DatasetRequested = JsonOk<paths["/api/v1/analytics/datasets"]["post"]>;
export type DatasetCreate = JsonBody<paths["/api/v1/analytics/datasets"]["post"]>;
export type DatasetPreview = JsonOk<paths["/api/v1/analytics/datasets/{dataset_id}/preview"]["get"]>;
export type Run = JsonOk<paths["/api/v1/analytics/runs/{run_id}"]["get"]>;
export type RunCreate = JsonBody<paths["/api/v1/analytics/runs"]["post"]>;
export type ModelVersion = JsonOk<paths["/api/v1/analytics/model-versions/{version_id}"]["get"]>;
export type ModelInfo = JsonOk<paths["/api/v1/analytics/catalogue"]["get"]>[number];
export type ParamInfo = ModelInfo["params"][number];
export type AnalyticsStatus = JsonOk<paths["/api/v1/analytics/status"]["get"]>;

export type Task = "anomaly" | "forecast" | "baseline" | "profile";
export type Resolution = "raw" | "1m" | "5m" | "15m" | "1h" | "1d";
export type Aggregate = "mean" | "min" | "max" | "sum" | "count";

export const TASKS: { value: Task; label: string; help: string }[] = [
  { value: "anomaly", label: "Anomaly detection", help: "Find unusual readings and the periods they fall in." },
  { value: "forecast", label: "Forecast", help: "Predict the next hours or day of a series, with an interval." },
  { value: "baseline", label: "Energy baseline", help: "Explain consumption by its drivers and measure savings against it." },
  { value: "profile", label: "Load profiles", help: "Group days by the shape of their load curve." },
];
export const TASK_LABELS: Record<string, string> = Object.fromEntries(TASKS.map((t) => [t.value, t.label]));

export const RESOLUTIONS: { value: Resolution; label: string }[] = [
  { value: "raw", label: "Raw (every point as stored)" },
  { value: "1m", label: "1 minute" },
  { value: "5m", label: "5 minutes" },
  { value: "15m", label: "15 minutes" },
  { value: "1h", label: "1 hour" },
  { value: "1d", label: "1 day" },
];
export const AGGREGATES: { value: Aggregate; label: string }[] = [
  { value: "mean", label: "Mean" },
  { value: "min", label: "Minimum" },
  { value: "max", label: "Maximum" },
  { value: "sum", label: "Sum" },
  { value: "count", label: "Count" },
];

export const MODE_LABELS: Record<string, string> = { standard: "Standard", copilot: "AI co-pilot", scoring: "Scoring" };

/** Run states that will still change; the run page polls while in one of them. */
export const RUN_ACTIVE = new Set(["queued", "running"]);

export const DATASET_STATE_LABELS: Record<string, string> = { pending: "Exporting", ready: "Ready", failed: "Failed" };
export const RUN_STATE_LABELS: Record<string, string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function stateTone(state: string): "neutral" | "accent" | "good" | "bad" | "warn" {
  switch (state) {
    case "ready":
    case "succeeded":
      return "good";
    case "failed":
      return "bad";
    case "pending":
    case "running":
      return "accent";
    case "queued":
    case "cancelled":
      return "warn";
    default:
      return "neutral";
  }
}

// ------------------------------------------------------------------ calls

export function analyticsStatus(): Promise<AnalyticsStatus> {
  return call(api.GET("/api/v1/analytics/status"));
}

export function getCatalogue(): Promise<ModelInfo[]> {
  return call(api.GET("/api/v1/analytics/catalogue"));
}

export function listDatasets(q: string, limit: number, offset: number): Promise<Page<Dataset>> {
  return call(api.GET("/api/v1/analytics/datasets", { params: { query: { q: q || undefined, limit, offset } } }));
}

export function createDataset(body: DatasetCreate): Promise<DatasetRequested> {
  return call(api.POST("/api/v1/analytics/datasets", { body }));
}

export function getDataset(datasetId: string): Promise<Dataset> {
  return call(api.GET("/api/v1/analytics/datasets/{dataset_id}", { params: { path: { dataset_id: datasetId } } }));
}

export function previewDataset(datasetId: string, rows = 50): Promise<DatasetPreview> {
  return call(
    api.GET("/api/v1/analytics/datasets/{dataset_id}/preview", { params: { path: { dataset_id: datasetId }, query: { rows } } }),
  );
}

export function listRuns(query: { task?: Task; dataset_id?: string }, limit: number, offset: number): Promise<Page<Run>> {
  return call(api.GET("/api/v1/analytics/runs", { params: { query: { ...query, limit, offset } } }));
}

export function createRun(body: RunCreate): Promise<Run> {
  return call(api.POST("/api/v1/analytics/runs", { body }));
}

export function getRun(runId: string): Promise<Run> {
  return call(api.GET("/api/v1/analytics/runs/{run_id}", { params: { path: { run_id: runId } } }));
}

export function retryRun(runId: string): Promise<Run> {
  return call(api.POST("/api/v1/analytics/runs/{run_id}/retry", { params: { path: { run_id: runId } } }));
}

export function cancelRun(runId: string): Promise<Run> {
  return call(api.POST("/api/v1/analytics/runs/{run_id}/cancel", { params: { path: { run_id: runId } } }));
}

/** The run's chart data (free-form JSON; read it with `readCharts`). */
export async function getRunCharts(runId: string): Promise<unknown> {
  const res = await fetchWithAuth(`/api/v1/analytics/runs/${encodeURIComponent(runId)}/charts`, {
    headers: { Accept: "application/json" },
  });
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) throw toApiError(res.status, body);
  return body;
}

export function listModelVersions(query: { task?: Task; name?: string }, limit: number, offset: number): Promise<Page<ModelVersion>> {
  return call(api.GET("/api/v1/analytics/model-versions", { params: { query: { ...query, limit, offset } } }));
}

export function scoreWithModel(versionId: string, datasetId: string): Promise<Run> {
  return call(
    api.POST("/api/v1/analytics/model-versions/{version_id}/score", {
      params: { path: { version_id: versionId } },
      body: { dataset_id: datasetId },
    }),
  );
}

/** The model version a run registered (found by its registry name), or null. */
export async function versionOfRun(run: Run): Promise<ModelVersion | null> {
  if (run.model_version === null || run.model_version === undefined || !run.registry_name) return null;
  const page = await listModelVersions({ name: run.registry_name }, 100, 0);
  return page.items.find((v) => v.run_id === run.id) ?? page.items.find((v) => v.version === run.model_version) ?? null;
}

// ------------------------------------------------------------------ downloads

function filenameFrom(disposition: string | null, fallback: string): string {
  const match = disposition?.match(/filename\*?=(?:UTF-8'')?"?([^";]+)"?/i);
  if (!match?.[1]) return fallback;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

/**
 * Downloads an API file with the session's token (a plain link cannot send it): fetches it,
 * then offers the blob under the name the server gives. Answers the file name.
 */
export async function downloadFile(url: string, fallbackName: string): Promise<string> {
  const res = await fetchWithAuth(url);
  if (!res.ok) {
    const body: unknown = await res.json().catch(() => null);
    throw toApiError(res.status, body);
  }
  const name = filenameFrom(res.headers.get("Content-Disposition"), fallbackName);
  const blob = await res.blob();
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return name;
}

export function downloadDataset(dataset: Dataset, part: "data" | "manifest"): Promise<string> {
  const url = `/api/v1/analytics/datasets/${encodeURIComponent(dataset.id)}/download?part=${part}`;
  return downloadFile(url, part === "data" ? `${dataset.name}.parquet` : `${dataset.name}.manifest.json`);
}

export function downloadPredictions(run: Run): Promise<string> {
  const url = `/api/v1/analytics/runs/${encodeURIComponent(run.id)}/predictions?format=csv`;
  return downloadFile(url, `run-${run.id.slice(0, 8)}-predictions.csv`);
}

// ------------------------------------------------------------------ chart payloads

/** [epoch ms, value]; value null where the model gave none (a gap). */
export type ChartPoint = [number, number | null];
export interface ChartLine {
  name: string;
  points: ChartPoint[];
}
export interface ChartBand {
  name: string;
  points: [number, number, number][];
}
export interface ChartWindow {
  start: number;
  end: number;
}
/** A moment marked across the chart, e.g. where the test period or the forecast starts. */
export interface ChartGuide {
  name: string;
  t: number;
}
export interface TimeseriesChartData {
  kind: "timeseries";
  title: string;
  unit: string;
  series: ChartLine[];
  bands: ChartBand[];
  markers: ChartLine[];
  /** Anomaly windows the model found. */
  windows: ChartWindow[];
  /** Windows known from labels in the data (anomaly runs on labelled data). */
  labelWindows: ChartWindow[];
  guides: ChartGuide[];
  savings: Record<string, unknown> | null;
}
export interface ProfileCurve {
  cluster: number;
  label: string;
  values: (number | null)[];
  days: number | null;
}
export interface ProfilesChartData {
  kind: "profiles";
  title: string;
  unit: string;
  x: (number | string)[];
  curves: ProfileCurve[];
  calendar: [string, number][];
}
export type ChartData = TimeseriesChartData | ProfilesChartData;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asNumber(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return null;
}

function asTime(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value !== "string") return null;
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : t;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function readLine(raw: unknown, index: number, prefix: string): ChartLine | null {
  if (!isObject(raw)) return null;
  const points: ChartPoint[] = [];
  for (const p of list(raw.points)) {
    if (!Array.isArray(p)) continue;
    const t = asTime(p[0]);
    if (t === null) continue;
    points.push([t, asNumber(p[1])]);
  }
  points.sort((a, b) => a[0] - b[0]);
  return { name: typeof raw.name === "string" && raw.name ? raw.name : `${prefix} ${index + 1}`, points };
}

function readTimeseries(raw: Record<string, unknown>, title: string): TimeseriesChartData {
  const series = list(raw.series)
    .map((s, i) => readLine(s, i, "series"))
    .filter((s): s is ChartLine => s !== null);
  const markers = list(raw.markers)
    .map((s, i) => readLine(s, i, "markers"))
    .filter((s): s is ChartLine => s !== null);
  const bands: ChartBand[] = [];
  list(raw.bands).forEach((b, i) => {
    if (!isObject(b)) return;
    const points: [number, number, number][] = [];
    for (const p of list(b.points)) {
      if (!Array.isArray(p)) continue;
      const t = asTime(p[0]);
      const lo = asNumber(p[1]);
      const hi = asNumber(p[2]);
      if (t !== null && lo !== null && hi !== null) points.push([t, Math.min(lo, hi), Math.max(lo, hi)]);
    }
    points.sort((a, c) => a[0] - c[0]);
    bands.push({ name: typeof b.name === "string" && b.name ? b.name : `band ${i + 1}`, points });
  });
  const guides: ChartGuide[] = [];
  for (const [key, label] of Object.entries(GUIDES)) {
    const t = asTime(raw[key]);
    if (t !== null) guides.push({ name: label, t });
  }
  return {
    kind: "timeseries",
    title,
    unit: typeof raw.unit === "string" ? raw.unit : "",
    series,
    bands,
    markers,
    windows: readWindows(raw.windows),
    labelWindows: readWindows(raw.label_windows),
    guides,
    savings: isObject(raw.savings) ? raw.savings : null,
  };
}

/** Keys of a chart payload that mark a moment, and their words. */
const GUIDES: Record<string, string> = {
  test_start: "test period starts",
  forecast_start: "forecast starts",
  report_start: "report period starts",
};

function readWindows(raw: unknown): ChartWindow[] {
  const windows: ChartWindow[] = [];
  for (const w of list(raw)) {
    const start = isObject(w) ? asTime(w.start) : Array.isArray(w) ? asTime(w[0]) : null;
    const end = isObject(w) ? asTime(w.end) : Array.isArray(w) ? asTime(w[1]) : null;
    if (start !== null && end !== null) windows.push({ start: Math.min(start, end), end: Math.max(start, end) });
  }
  return windows;
}

function readProfiles(raw: Record<string, unknown>, title: string): ProfilesChartData {
  const x = list(raw.x).map((v, i) => (typeof v === "number" || typeof v === "string" ? v : i));
  const curves: ProfileCurve[] = [];
  list(raw.curves).forEach((c, i) => {
    if (!isObject(c)) return;
    const cluster = asNumber(c.cluster) ?? i;
    curves.push({
      cluster,
      label: typeof c.label === "string" && c.label ? c.label : `Cluster ${cluster}`,
      values: list(c.values).map(asNumber),
      days: asNumber(c.days),
    });
  });
  const calendar: [string, number][] = [];
  for (const entry of list(raw.calendar)) {
    if (!Array.isArray(entry) || typeof entry[0] !== "string") continue;
    const cluster = asNumber(entry[1]);
    if (cluster !== null) calendar.push([entry[0].slice(0, 10), cluster]);
  }
  return { kind: "profiles", title, unit: typeof raw.unit === "string" ? raw.unit : "", x, curves, calendar };
}

/**
 * The drawable charts in a run's chart payload: one chart object, a list of them, or an object
 * of named charts. Unknown kinds and keys are ignored; missing keys read as empty.
 */
export function readCharts(payload: unknown): ChartData[] {
  const out: ChartData[] = [];
  const visit = (raw: unknown, title: string, depth: number) => {
    if (depth > 3) return;
    if (Array.isArray(raw)) {
      raw.forEach((item, i) => visit(item, title ? `${title} ${i + 1}` : "", depth + 1));
      return;
    }
    if (!isObject(raw)) return;
    const named = typeof raw.title === "string" && raw.title ? raw.title : title;
    if (raw.kind === "timeseries" || (raw.kind === undefined && Array.isArray(raw.series))) {
      out.push(readTimeseries(raw, named));
      return;
    }
    if (raw.kind === "profiles" || (raw.kind === undefined && Array.isArray(raw.curves))) {
      out.push(readProfiles(raw, named));
      return;
    }
    if (raw.kind !== undefined) return; // a kind this portal does not draw
    for (const [key, value] of Object.entries(raw)) if (isObject(value) || Array.isArray(value)) visit(value, key, depth + 1);
  };
  visit(payload, "", 0);
  return out;
}

// ------------------------------------------------------------------ metrics in words

const METRIC_LABELS: Record<string, string> = {
  mae: "MAE",
  MAE: "MAE",
  mape: "MAPE",
  MAPE: "MAPE",
  r2: "R²",
  R2: "R²",
  rmse: "RMSE",
  mae_seasonal_naive: "MAE of seasonal naive",
  n_anomalies: "Anomalies",
  anomaly_rate: "Anomaly rate",
  n_windows: "Anomaly windows",
  precision: "Precision",
  recall: "Recall",
  silhouette: "Silhouette",
  n_clusters: "Day types",
  savings_kwh: "Savings",
  savings_pct: "Savings %",
  improvement_vs_seasonal_naive_pct: "Better than seasonal naive",
  interval_coverage: "Interval coverage",
  n_train: "Training points",
  n_test: "Test points",
  n_points: "Points",
  n_days: "Days",
  n_report: "Report points",
  report_expected: "Expected in report period",
  report_actual: "Actual in report period",
  cv_mae: "Cross-validated MAE",
  elapsed_seconds: "Elapsed (s)",
  f1: "F1",
  window_recall: "Window recall",
  false_positive_windows: "False-positive windows",
  label_windows: "Labelled windows",
  fit_seconds: "Fit (s)",
};

export function metricLabel(key: string): string {
  return METRIC_LABELS[key] ?? key.replace(/_/g, " ");
}

/** Metrics that are shares between 0 and 1, shown as percentages. */
const FRACTIONS = new Set(["interval_coverage", "precision", "recall", "f1", "window_recall"]);

/** A metric's value for people: percentages for rates and MAPE, grouping for counts. */
export function formatMetric(key: string, value: unknown): string {
  const n = asNumber(value);
  if (n === null) return value === null || value === undefined ? "—" : String(value);
  const k = key.toLowerCase();
  if (k === "mape" || k.endsWith("_pct")) return `${n.toLocaleString("en-GB", { maximumFractionDigits: 1 })} %`;
  if (k.endsWith("_rate") || FRACTIONS.has(k)) return `${(n * 100).toLocaleString("en-GB", { maximumFractionDigits: 2 })} %`;
  if (k.startsWith("n_")) return Math.round(n).toLocaleString("en-GB");
  const abs = Math.abs(n);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return n.toLocaleString("en-GB", { maximumFractionDigits: digits });
}

export function metricValue(metrics: Record<string, unknown> | null | undefined, ...keys: string[]): number | null {
  for (const key of keys) {
    const n = asNumber(metrics?.[key]);
    if (n !== null) return n;
  }
  return null;
}

/** How much better than seasonal naive the run's MAE is, in % (negative: worse), or null. */
export function beatsNaivePct(metrics: Record<string, unknown> | null | undefined): number | null {
  const mae = metricValue(metrics, "mae", "MAE");
  const naive = metricValue(metrics, "mae_seasonal_naive");
  if (mae === null || naive === null || naive <= 0) return null;
  return ((naive - mae) / naive) * 100;
}

/** The one figure a list shows for a run, by task. */
export function keyMetric(run: { task: string; metrics: Record<string, unknown> }): string {
  const m = run.metrics ?? {};
  switch (run.task) {
    case "forecast": {
      const mae = metricValue(m, "mae", "MAE");
      return mae === null ? "—" : `MAE ${formatMetric("mae", mae)}`;
    }
    case "baseline": {
      const r2 = metricValue(m, "r2", "R2");
      const savings = metricValue(m, "savings_kwh");
      if (savings !== null) return `Savings ${formatMetric("savings_kwh", savings)}${r2 !== null ? ` · R² ${formatMetric("r2", r2)}` : ""}`;
      return r2 === null ? "—" : `R² ${formatMetric("r2", r2)}`;
    }
    case "anomaly": {
      const n = metricValue(m, "n_anomalies");
      return n === null ? "—" : `${formatMetric("n_anomalies", n)} anomalies`;
    }
    case "profile": {
      const s = metricValue(m, "silhouette");
      return s === null ? "—" : `Silhouette ${formatMetric("silhouette", s)}`;
    }
    default:
      return "—";
  }
}

/** 1536 -> "1.5 kB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "—";
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toLocaleString("en-GB", { maximumFractionDigits: value >= 100 ? 0 : 1 })} ${units[unit]}`;
}
