// Numbers and times of telemetry, as operators read them.

const exactFormat = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 6, useGrouping: true });

/** A value rounded for a table or a legend: 41.2, 229.83, 0.934, 12,345. */
export function formatValue(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : abs === 0 ? 0 : 3;
  return new Intl.NumberFormat("en-GB", { maximumFractionDigits: digits }).format(value);
}

/** The value as stored (up to 6 decimals), for tooltips. */
export function formatExact(value: number): string {
  return exactFormat.format(value);
}

/** A value with its unit: "41.2 kW", "0.93" (no unit), "21.5 °C". */
export function withUnit(text: string, unit: string | null | undefined): string {
  return unit ? `${text} ${unit}` : text;
}

/** Date and time with seconds in the factory's zone: "27 Nov 2026, 14:05:09". */
export function formatDateTimeSeconds(ms: number, timeZone?: string): string {
  try {
    return new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "medium", timeZone }).format(new Date(ms));
  } catch {
    return new Date(ms).toLocaleString();
  }
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 days ago". */
export function formatAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  const d = Math.round(h / 24);
  return `${d} days ago`;
}

/** Milliseconds that the zone is ahead of UTC at instant `ms` (e.g. +3,600,000 for CET). */
export function zoneOffsetMs(ms: number, timeZone?: string): number {
  if (!timeZone) return -new Date(ms).getTimezoneOffset() * 60_000;
  try {
    const parts = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    }).formatToParts(new Date(ms));
    const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
    const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"), get("second"));
    return asUtc - Math.floor(ms / 1000) * 1000;
  } catch {
    return 0;
  }
}

/** "2026-11-27T14:05:09" in the zone, for a datetime-local input with seconds. */
export function toLocalInput(ms: number, timeZone?: string): string {
  const shifted = new Date(ms + zoneOffsetMs(ms, timeZone));
  return shifted.toISOString().slice(0, 19);
}

/** The instant of a datetime-local input's value read in the zone; NaN when empty or invalid. */
export function fromLocalInput(value: string, timeZone?: string): number {
  if (!value) return Number.NaN;
  const asUtc = Date.parse(`${value.length === 16 ? `${value}:00` : value}Z`);
  if (Number.isNaN(asUtc)) return Number.NaN;
  // Two passes settle the offset near a daylight-saving change.
  let t = asUtc - zoneOffsetMs(asUtc, timeZone);
  t = asUtc - zoneOffsetMs(t, timeZone);
  return t;
}
