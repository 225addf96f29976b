// How long the factory's telemetry is kept: raw points, 1-minute and 1-hour rollups. The factory's
// own setting may only be shorter than the platform's maximum; every factory user reads it, the
// super admin changes it (GET / PUT /api/v1/telemetry/retention).
import type { components } from "./schema";
import { api, call } from "./client";

export type Retention = components["schemas"]["RetentionOut"];
export type RetentionUpdate = components["schemas"]["RetentionUpdate"];

export type TierField = "raw_days" | "rollup_1m_days" | "rollup_1h_days";

export interface Tier {
  field: TierField;
  own: "own_raw_days" | "own_rollup_1m_days" | "own_rollup_1h_days";
  platform: "platform_raw_days" | "platform_rollup_1m_days" | "platform_rollup_1h_days";
  label: string;
  /** What reads this resolution, in the portal's words. */
  usedFor: string;
}

/** Finest first: each must be kept at least as long as the one before it. */
export const TIERS: Tier[] = [
  { field: "raw_days", own: "own_raw_days", platform: "platform_raw_days", label: "Raw points", usedFor: "Every value as sent: latest values, short charts, rule backtests." },
  {
    field: "rollup_1m_days",
    own: "own_rollup_1m_days",
    platform: "platform_rollup_1m_days",
    label: "1-minute rollups",
    usedFor: "Count, sum, min and max per minute: charts and reports over days and weeks.",
  },
  {
    field: "rollup_1h_days",
    own: "own_rollup_1h_days",
    platform: "platform_rollup_1h_days",
    label: "1-hour rollups",
    usedFor: "The same per hour: charts and reports over months and years.",
  },
];

/** "forever", "1 day", "30 days". */
export function formatDays(days: number | null | undefined): string {
  if (days === null || days === undefined) return "forever";
  return `${days} day${days === 1 ? "" : "s"}`;
}

export function getRetention(): Promise<Retention> {
  return call(api.GET("/api/v1/telemetry/retention"));
}

export function putRetention(body: RetentionUpdate): Promise<Retention> {
  return call(api.PUT("/api/v1/telemetry/retention", { body }));
}
