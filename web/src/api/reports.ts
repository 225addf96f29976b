// Reports: shapes taken from the OpenAPI types, the words for presets, formats, sections, states
// and KPIs, the calls of /api/v1/reports, and the download (a fetch with the token, then a blob).
import type { components } from "./schema";
import { api, call, fetchWithAuth } from "./client";
import { toApiError } from "./errors";
import type { Page } from "./types";

export type Report = components["schemas"]["ReportOut"];
export type ReportBody = components["schemas"]["ReportIn"];
export type Schedule = components["schemas"]["ScheduleOut"];
export type ScheduleBody = components["schemas"]["ScheduleIn"];
export type ReportSettings = components["schemas"]["ReportSettingsIO"];
export type Tariff = components["schemas"]["Tariff"];
export type Band = components["schemas"]["Band"];
export type Shift = components["schemas"]["Shift"];
export type Preset = ReportBody["preset"];
export type Format = ReportBody["format"];
export type Section = NonNullable<ReportBody["sections"]>[number];
export type Cadence = ScheduleBody["cadence"];
export type Property = components["schemas"]["PropertyOut"];

export const PRESETS: { value: Preset; label: string }[] = [
  { value: "yesterday", label: "Yesterday" },
  { value: "last_7_days", label: "Last 7 days" },
  { value: "last_week", label: "Last week (Mon–Sun)" },
  { value: "this_month", label: "This month so far" },
  { value: "last_month", label: "Last month" },
  { value: "custom", label: "Custom period" },
];

export const FORMATS: { value: Format; label: string; hint: string }[] = [
  { value: "pdf", label: "PDF", hint: "A document to print and hand over." },
  { value: "xlsx", label: "Excel", hint: "Sheets with the data behind each chart." },
  { value: "json", label: "JSON", hint: "The same content for other tools." },
];

export const SECTIONS: { value: Section; label: string; hint: string }[] = [
  { value: "energy", label: "Energy", hint: "consumption, peak demand, cost and CO2" },
  { value: "properties", label: "Properties", hint: "min, mean, max and completeness" },
  { value: "alerts", label: "Alerts", hint: "counts, response times, still open" },
  { value: "analytics", label: "Analytics", hint: "runs that finished in the period" },
];

export const CADENCES: { value: Cadence; label: string; period: string }[] = [
  { value: "daily", label: "Daily", period: "the day before" },
  { value: "weekly", label: "Weekly", period: "the week before (Mon–Sun)" },
  { value: "monthly", label: "Monthly", period: "the month before" },
];

export const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

export function formatLabel(format: string): string {
  return FORMATS.find((f) => f.value === format)?.label ?? format.toUpperCase();
}

export function cadenceLabel(cadence: string): string {
  return CADENCES.find((c) => c.value === cadence)?.label ?? cadence;
}

export const REPORT_STATE_LABELS: Record<string, string> = {
  queued: "Queued",
  running: "Generating",
  succeeded: "Ready",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** States in which a report is still being made (the pages poll it). */
export const REPORT_ACTIVE = new Set(["queued", "running"]);

export function reportStateTone(state: string): "neutral" | "accent" | "good" | "bad" | "warn" {
  if (state === "succeeded") return "good";
  if (state === "failed") return "bad";
  if (state === "cancelled") return "warn";
  if (state === "running") return "accent";
  return "neutral";
}

/** The period's words as the server resolved them ("Monday 02 March 2026"). */
export function periodLabel(report: Pick<Report, "params">): string {
  const label = report.params.label;
  return typeof label === "string" && label ? label : "—";
}

/** 1234567 -> "1.2 MB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (!bytes) return "—";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

// ------------------------------------------------------------------ summary

/**
 * The words and units of the KPIs a finished report stores (summary.kpis is key -> value; the
 * labels below are the ones the report's own summary uses). `currency` marks the cost.
 */
export const KPI_INFO: Record<string, { label: string; unit: string; digits: number }> = {
  total_kwh: { label: "Energy consumed", unit: "kWh", digits: 0 },
  cost: { label: "Energy cost", unit: "currency", digits: 2 },
  co2_kg: { label: "CO2 emitted", unit: "kg", digits: 0 },
  peak_kw: { label: "Peak demand (hourly)", unit: "kW", digits: 1 },
  load_factor: { label: "Load factor", unit: "", digits: 2 },
  alerts: { label: "Alerts raised", unit: "", digits: 0 },
  open_alerts: { label: "Alerts still open", unit: "", digits: 0 },
  mttr_hours: { label: "Mean time to resolve", unit: "h", digits: 2 },
};

export interface Kpi {
  key: string;
  label: string;
  value: string;
  unit: string;
}

/** The KPIs of a finished report, in the report's order, ready to show. */
export function reportKpis(report: Report, currency: string): Kpi[] {
  const raw = report.summary.kpis;
  if (!raw || typeof raw !== "object") return [];
  return Object.entries(raw as Record<string, unknown>).map(([key, value]) => {
    const info = KPI_INFO[key] ?? { label: key.replace(/_/g, " "), unit: "", digits: 2 };
    const unit = info.unit === "currency" ? currency : info.unit;
    let text = "n/a";
    if (typeof value === "number" && Number.isFinite(value)) {
      text = value.toLocaleString("en-GB", { minimumFractionDigits: 0, maximumFractionDigits: info.digits });
    }
    return { key, label: info.label, value: text, unit: text === "n/a" ? "" : unit };
  });
}

export function reportHighlights(report: Report): string[] {
  const raw = report.summary.highlights;
  return Array.isArray(raw) ? raw.filter((x): x is string => typeof x === "string") : [];
}

// ------------------------------------------------------------------ recipients

/** Splits a comma/semicolon/newline separated list of emails; answers the emails and the bad ones. */
export function parseRecipients(text: string): { emails: string[]; invalid: string[] } {
  const parts = text
    .split(/[\n,;]+/)
    .map((x) => x.trim())
    .filter(Boolean);
  const emails: string[] = [];
  const invalid: string[] = [];
  for (const part of parts) {
    if (/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(part)) {
      if (!emails.includes(part.toLowerCase())) emails.push(part.toLowerCase());
    } else invalid.push(part);
  }
  return { emails, invalid };
}

// ------------------------------------------------------------------ calls

export function listReports(limit: number, offset: number): Promise<Page<Report>> {
  return call(api.GET("/api/v1/reports", { params: { query: { limit, offset } } }));
}

export function getReport(reportId: string): Promise<Report> {
  return call(api.GET("/api/v1/reports/{report_id}", { params: { path: { report_id: reportId } } }));
}

export function createReport(body: ReportBody): Promise<Report> {
  return call(api.POST("/api/v1/reports", { body }));
}

export function retryReport(reportId: string): Promise<Report> {
  return call(api.POST("/api/v1/reports/{report_id}/retry", { params: { path: { report_id: reportId } } }));
}

export function listSchedules(): Promise<Schedule[]> {
  return call(api.GET("/api/v1/reports/schedules"));
}

export function createSchedule(body: ScheduleBody): Promise<Schedule> {
  return call(api.POST("/api/v1/reports/schedules", { body }));
}

export function updateSchedule(scheduleId: string, body: ScheduleBody): Promise<Schedule> {
  return call(api.PUT("/api/v1/reports/schedules/{schedule_id}", { params: { path: { schedule_id: scheduleId } }, body }));
}

export async function deleteSchedule(scheduleId: string): Promise<void> {
  await call(api.DELETE("/api/v1/reports/schedules/{schedule_id}", { params: { path: { schedule_id: scheduleId } } }));
}

export function runSchedule(scheduleId: string): Promise<Report> {
  return call(api.POST("/api/v1/reports/schedules/{schedule_id}/run", { params: { path: { schedule_id: scheduleId } } }));
}

export function getReportSettings(): Promise<ReportSettings> {
  return call(api.GET("/api/v1/reports/settings"));
}

export function putReportSettings(body: ReportSettings): Promise<ReportSettings> {
  return call(api.PUT("/api/v1/reports/settings", { body }));
}

/** The factory's property vocabulary (the first 200 names), for the properties section. */
export async function listPropertyVocabulary(): Promise<Property[]> {
  const page = await call(api.GET("/api/v1/properties", { params: { query: { limit: 200 } } }));
  return page.items;
}

// ------------------------------------------------------------------ download

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
 * Downloads a report's file with the session's token (a plain link cannot send it): fetches it,
 * then offers the blob under the name the server gives. Answers the file name.
 */
export async function downloadReport(report: Pick<Report, "id" | "format">): Promise<string> {
  const res = await fetchWithAuth(`/api/v1/reports/${encodeURIComponent(report.id)}/download`);
  if (!res.ok) {
    const body: unknown = await res.json().catch(() => null);
    throw toApiError(res.status, body);
  }
  const name = filenameFrom(res.headers.get("Content-Disposition"), `report-${report.id.slice(0, 8)}.${report.format}`);
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
