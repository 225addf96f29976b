// Alerts, the notification delivery log, a user's notification preferences and system alerts:
// shapes taken from the OpenAPI types by endpoint, the calls, and words for people.
import type { paths } from "./schema";
import { api, call } from "./client";
import type { Page } from "./types";

type JsonOk<Op> = Op extends { responses: { 200: { content: { "application/json": infer T } } } }
  ? T
  : Op extends { responses: { 201: { content: { "application/json": infer T } } } }
    ? T
    : never;

export type Alert = JsonOk<paths["/api/v1/alerts"]["get"]>["items"][number];
export type AlertDetail = JsonOk<paths["/api/v1/alerts/{alert_id}"]["get"]>;
export type AlertEvent = AlertDetail["timeline"][number];
export type AlertCounts = JsonOk<paths["/api/v1/alerts/counts"]["get"]>;
export type BulkResult = JsonOk<paths["/api/v1/alerts/bulk"]["post"]>;
export type Delivery = JsonOk<paths["/api/v1/notifications/deliveries"]["get"]>["items"][number];

export type AlertState = "open" | "acknowledged" | "resolved";
export type AlertStateFilter = AlertState | "unresolved";
export type Severity = "info" | "warning" | "critical";

export const SEVERITIES: Severity[] = ["critical", "warning", "info"];
export const SEVERITY_LABELS: Record<string, string> = { info: "Info", warning: "Warning", critical: "Critical" };
export const STATE_LABELS: Record<string, string> = {
  open: "Open",
  acknowledged: "Acknowledged",
  resolved: "Resolved",
  unresolved: "Unresolved (open or acknowledged)",
};

/** Delivery states: the log's words for them. */
export const DELIVERY_STATES = ["queued", "sent", "failed", "suppressed"] as const;
export const DELIVERY_STATE_LABELS: Record<string, string> = {
  queued: "Queued",
  sent: "Sent",
  failed: "Failed",
  suppressed: "Suppressed",
};
export const DELIVERY_EVENT_LABELS: Record<string, string> = {
  opened: "Opened",
  resolved: "Resolved",
  reminder: "Reminder",
  digest: "Digest",
  system: "System alert",
};
export const CHANNEL_LABELS: Record<string, string> = { email: "Email", whatsapp: "WhatsApp" };

export interface AlertFilters {
  state?: AlertStateFilter;
  severity?: Severity;
  device_id?: string;
  rule_id?: string;
  since?: string;
  until?: string;
}

export function listAlerts(filters: AlertFilters, limit: number, offset: number): Promise<Page<Alert>> {
  return call(api.GET("/api/v1/alerts", { params: { query: { ...filters, limit, offset } } }));
}

export function alertCounts(): Promise<AlertCounts> {
  return call(api.GET("/api/v1/alerts/counts"));
}

export function getAlert(alertId: string): Promise<AlertDetail> {
  return call(api.GET("/api/v1/alerts/{alert_id}", { params: { path: { alert_id: alertId } } }));
}

export function acknowledgeAlert(alertId: string, note = ""): Promise<AlertDetail> {
  return call(api.POST("/api/v1/alerts/{alert_id}/acknowledge", { params: { path: { alert_id: alertId } }, body: { note } }));
}

export function resolveAlert(alertId: string, note: string): Promise<AlertDetail> {
  return call(api.POST("/api/v1/alerts/{alert_id}/resolve", { params: { path: { alert_id: alertId } }, body: { note } }));
}

export function bulkAlerts(ids: string[], action: "acknowledge" | "resolve", note = ""): Promise<BulkResult> {
  return call(api.POST("/api/v1/alerts/bulk", { body: { ids, action, note } }));
}

export type DeliveryState = NonNullable<NonNullable<paths["/api/v1/notifications/deliveries"]["get"]["parameters"]["query"]>["state"]>;

/** The delivery log, newest first, optionally of one state or one alert. */
export function listDeliveries(query: { state?: DeliveryState; alert_id?: string }, limit: number, offset: number): Promise<Page<Delivery>> {
  return call(api.GET("/api/v1/notifications/deliveries", { params: { query: { ...query, limit, offset } } }));
}

// ---------------------------------------------------------------- contract 2: preferences

export type NotificationPrefs = JsonOk<paths["/api/v1/me/notification-preferences"]["get"]>;
export type QuietHours = NonNullable<NotificationPrefs["quiet_hours"]>;

export function getNotificationPrefs(): Promise<NotificationPrefs> {
  return call(api.GET("/api/v1/me/notification-preferences"));
}

export function saveNotificationPrefs(prefs: NotificationPrefs): Promise<NotificationPrefs> {
  return call(api.PUT("/api/v1/me/notification-preferences", { body: prefs }));
}

// ---------------------------------------------------------------- contract 3: system alerts

export type SystemAlert = JsonOk<paths["/api/v1/system-alerts"]["get"]>["items"][number];
export type RootSystemAlert = JsonOk<paths["/api/v1/root/system-alerts"]["get"]>["items"][number];

export const SYSTEM_ALERT_KINDS: Record<string, string> = {
  timeseries_down: "Time-series store down",
  registration_failing: "Property registration failing",
  channel_failing: "Notification channel failing",
  objectstore_down: "Object store unreachable (analytics paused)",
  property_limit: "Device past the property limit",
};

/** The factory's system alerts (every user of the factory reads them). */
export function listSystemAlerts(state: "open" | "resolved" | "", limit: number, offset: number): Promise<Page<SystemAlert>> {
  return call(api.GET("/api/v1/system-alerts", { params: { query: { state: state || undefined, limit, offset } } }));
}

/** Every factory's system alerts (the platform root only). */
export function listRootSystemAlerts(state: "open" | "resolved" | "", limit: number, offset: number): Promise<Page<RootSystemAlert>> {
  return call(api.GET("/api/v1/root/system-alerts", { params: { query: { state: state || undefined, limit, offset } } }));
}

// ---------------------------------------------------------------- helpers

/** "power_kw = 140.2, voltage = 231" for a values object of an alert or a timeline entry. */
export function valuesText(values: Record<string, unknown> | null | undefined): string {
  const entries = Object.entries(values ?? {});
  if (!entries.length) return "";
  return entries
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} = ${typeof v === "number" ? formatNumber(v) : String(v)}`)
    .join(", ");
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return new Intl.NumberFormat("en-GB", { maximumFractionDigits: 3 }).format(value);
}
