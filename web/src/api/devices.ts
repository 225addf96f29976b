// Devices, properties and telemetry: shapes taken from the OpenAPI types by endpoint, the CSV
// import (a text/csv body the typed client does not serialise by itself), and the live stream.
import type { components, paths } from "./schema";
import { api, call, fetchWithAuth } from "./client";
import { ApiError, toApiError } from "./errors";

type JsonOk<Op> = Op extends { responses: { 200: { content: { "application/json": infer T } } } }
  ? T
  : Op extends { responses: { 201: { content: { "application/json": infer T } } } }
    ? T
    : never;

export type Device = JsonOk<paths["/api/v1/devices/{device_id}"]["get"]>;
export type DeviceStatus = Device["status"];
export type DeviceCreated = JsonOk<paths["/api/v1/devices"]["post"]>;
export type MqttCredentials = DeviceCreated["mqtt"];
export type DeviceSummary = JsonOk<paths["/api/v1/devices/summary"]["get"]>;
export type ImportResult = JsonOk<paths["/api/v1/devices/import"]["post"]>;
export type DeviceProperty = JsonOk<paths["/api/v1/devices/{device_id}/properties"]["get"]>[number];
export type Property = JsonOk<paths["/api/v1/properties"]["get"]>["items"][number];
export type PropertyKind = Property["kind"];
export type LatestValue = components["schemas"]["LatestValue"];
export type History = JsonOk<paths["/api/v1/telemetry/history"]["get"]>;
export type Reject = JsonOk<paths["/api/v1/telemetry/rejects"]["get"]>["items"][number];
export type RejectCount = JsonOk<paths["/api/v1/telemetry/reject-counts"]["get"]>["items"][number];

export const STATUS_LABELS: Record<DeviceStatus, string> = {
  online: "Online",
  offline: "Offline",
  never_seen: "Never seen",
  disabled: "Disabled",
};

/** The largest report interval the API takes (a week), in seconds. */
export const MAX_REPORT_INTERVAL_SECONDS = 7 * 86_400;

/** A span of seconds in words: "45 s", "15 min", "5 min 45 s", "3 h 1 min", "2 d 3 h". */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const both = (a: number, unitA: string, b: number, unitB: string) => (b ? `${a} ${unitA} ${b} ${unitB}` : `${a} ${unitA}`);
  if (s < 60) return `${s} s`;
  if (s < 3600) return both(Math.floor(s / 60), "min", s % 60, "s");
  if (s < 2 * 86_400) return both(Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "min");
  return both(Math.floor(s / 86_400), "d", Math.floor((s % 86_400) / 3600), "h");
}

/** The report interval typed in a form: seconds, null when left empty, or a problem to show. */
export function parseReportInterval(text: string): { seconds: number | null; problem?: string } {
  const t = text.trim();
  if (!t) return { seconds: null };
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > MAX_REPORT_INTERVAL_SECONDS) {
    return { seconds: null, problem: `Use a whole number of seconds from 1 to ${MAX_REPORT_INTERVAL_SECONDS}, or leave it empty.` };
  }
  return { seconds: Number(t) };
}

/** Reasons the ingest pipeline gives for rejected telemetry, with words for people. */
export const REJECT_REASONS: Record<string, string> = {
  invalid_json: "Invalid JSON",
  not_an_object: "Not a JSON object",
  no_metrics: "No metrics",
  too_many_metrics: "Too many metrics",
  non_numeric: "Non-numeric value",
  non_finite: "NaN or infinite value",
  invalid_metric_name: "Invalid metric name",
  too_deep: "Nested too deep",
  oversize: "Payload too large",
  unknown_device: "Unknown device",
  device_disabled: "Device disabled",
  bad_topic: "Bad topic",
  registration_failed: "Property registration failed",
};

/** Registers or updates devices from a CSV text (header: device_id,name,type,location[,report_interval_seconds]). */
export function importDevicesCsv(csv: string): Promise<ImportResult> {
  return call(
    api.POST("/api/v1/devices/import", {
      body: csv,
      bodySerializer: (body: string) => body,
      headers: { "Content-Type": "text/csv" },
    }),
  );
}

/** A CSV file of the credentials of freshly created devices (they are shown only once). */
export function credentialsCsv(devices: DeviceCreated[]): string {
  const quote = (v: string) => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const lines = ["device_id,name,mqtt_username,mqtt_password,mqtt_client_id,mqtt_topic"];
  for (const d of devices) {
    lines.push([d.device_id, d.name, d.mqtt.username, d.mqtt.password, d.mqtt.client_id, d.mqtt.topic].map(quote).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}

/** Offers a text as a file download. */
export function downloadText(filename: string, text: string, type = "text/csv"): void {
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export interface LiveEvent {
  device_id: string;
  values: LatestValue[];
}

export type LiveState = "connecting" | "open" | "retrying" | "ended" | "stopped";

/** The server's last event when it ends a stream early: why, and a sentence for people. */
interface LiveEnd {
  reason: string;
  message?: string;
}

/**
 * Follows a device's live values (Server-Sent Events) until `signal` aborts. EventSource cannot
 * send the Bearer token, so this reads the stream with fetch(). When the stream ends (the server
 * closes it after `seconds`) or fails, it reconnects with a growing pause. An `end` event means the
 * server stopped it: an expired access token reconnects at once (fetchWithAuth renews it); any other
 * reason (the session was revoked, the user disabled) reports "ended" and stops following.
 */
export async function followLive(
  deviceId: string,
  onValues: (event: LiveEvent) => void,
  onState: (state: LiveState, problem?: string) => void,
  signal: AbortSignal,
  seconds = 900,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    onState(failures ? "retrying" : "connecting");
    try {
      const res = await fetchWithAuth(`/api/v1/devices/${encodeURIComponent(deviceId)}/live?seconds=${seconds}`, {
        headers: { Accept: "text/event-stream" },
        signal,
      });
      if (!res.ok || !res.body) {
        let body: unknown = null;
        try {
          body = await res.json();
        } catch {
          // not JSON
        }
        throw toApiError(res.status, body);
      }
      onState("open");
      failures = 0;
      let end: LiveEnd | null = null;
      await readEvents(res.body, (name, data) => {
        if (name !== "values" && name !== "end") return;
        try {
          if (name === "end") end = JSON.parse(data) as LiveEnd;
          else onValues(JSON.parse(data) as LiveEvent);
        } catch {
          // a malformed event is skipped
        }
      });
      const ended = end as LiveEnd | null;
      if (ended && ended.reason !== "token_expired") {
        onState("ended", ended.message || "The server ended the live stream.");
        return;
      }
    } catch (err) {
      if (signal.aborted) break;
      failures += 1;
      const problem = err instanceof ApiError ? err.message : "The live connection was interrupted.";
      onState("retrying", problem);
      // A device that is gone or a session that ended will not come back by retrying fast.
      const fatal = err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404);
      await pause(fatal ? 30_000 : Math.min(1000 * 2 ** (failures - 1), 15_000), signal);
      continue;
    }
    // The server ended the stream on time: reconnect at once.
  }
  onState("stopped");
}

async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (name: string, data: string) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut: number;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") name = text;
          else if (field === "data") data.push(text);
        }
        if (data.length) onEvent(name, data.join("\n"));
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = window.setTimeout(done, ms);
    function done() {
      window.clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
