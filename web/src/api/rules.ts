// Rules: shapes taken from the OpenAPI types, a rule described in words for lists, the mapping of
// the API's 422 field paths onto the rule builder, and the backtest calls (contract 1).
import type { components, paths } from "./schema";
import { api, call } from "./client";

type JsonOk<Op> = Op extends { responses: { 200: { content: { "application/json": infer T } } } }
  ? T
  : Op extends { responses: { 201: { content: { "application/json": infer T } } } }
    ? T
    : never;

export type Rule = JsonOk<paths["/api/v1/rules/{rule_id}"]["get"]>;
export type Job = JsonOk<paths["/api/v1/jobs/{job_id}"]["get"]>;
export type Condition = components["schemas"]["Condition"];
export type Operator = Condition["operator"];
export type Scope = components["schemas"]["Scope"];
export type Schedule = components["schemas"]["Schedule"];
export type Severity = Rule["definition"]["severity"];

/** A group of the condition tree (the same shape for reading and writing). */
export interface Group {
  op: "and" | "or";
  conditions: Node[];
}
export type Node = Condition | Group;

/** Who hears about the rule's alerts (`users` and `remind_after_minutes`: contract 2). */
export interface Notify {
  emails?: string[];
  whatsapp?: string[];
  on_resolve?: boolean;
  users?: string[];
  remind_after_minutes?: number;
}

/** A rule's definition as the builder sends it (POST /rules "definition"). */
export interface RuleDefinition {
  scope: Scope;
  condition: Node;
  schedule?: Schedule | null;
  severity: Severity;
  cooldown_seconds: number;
  auto_resolve: boolean;
  notify?: Notify;
  clear?: Node | null;
}

/** Something about a valid rule its author most likely wants to know (the rule is saved all the same). */
export type RuleWarning = components["schemas"]["RuleWarning"];

/** The API's no_recipients warning, word for word (src/factoryops/rules/schemas.py). */
export const NO_RECIPIENTS: RuleWarning = {
  code: "no_recipients",
  message: "This rule opens alerts but notifies nobody: add users or channels under Notify.",
};

/** The warnings the API will answer for this definition, worked out before saving. */
export function definitionWarnings(definition: RuleDefinition): RuleWarning[] {
  const notify = definition.notify ?? {};
  const nobody = !notify.emails?.length && !notify.whatsapp?.length && !notify.users?.length;
  return nobody ? [NO_RECIPIENTS] : [];
}

export function isGroup(node: Node): node is Group {
  return "conditions" in node;
}

export const OPERATORS: { value: Operator; label: string }[] = [
  { value: ">", label: ">" },
  { value: ">=", label: "≥" },
  { value: "<", label: "<" },
  { value: "<=", label: "≤" },
  { value: "==", label: "=" },
  { value: "!=", label: "≠" },
  { value: "between", label: "between" },
  { value: "outside", label: "outside" },
  { value: "stale", label: "no new value for" },
];

export const SEVERITIES: { value: Severity; label: string; tone: "neutral" | "warn" | "bad" }[] = [
  { value: "info", label: "Info", tone: "neutral" },
  { value: "warning", label: "Warning", tone: "warn" },
  { value: "critical", label: "Critical", tone: "bad" },
];

export const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

// ------------------------------------------------------------------ in words

/** 300 -> "5 min", 3600 -> "1 h", 90 -> "90 s", 86400 -> "1 day". */
export function formatDuration(seconds: number): string {
  if (seconds % 86_400 === 0 && seconds >= 86_400) return seconds === 86_400 ? "1 day" : `${seconds / 86_400} days`;
  if (seconds % 3600 === 0 && seconds >= 3600) return `${seconds / 3600} h`;
  if (seconds % 60 === 0 && seconds >= 60) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function num(value: number | null | undefined): string {
  if (value === null || value === undefined) return "?";
  return String(Number(value.toPrecision(12)));
}

/** "power_kw > 100 for 5 min", "15 min mean of power_kw > 90", "no new temp_c for 10 min". */
export function describeCondition(c: Condition): string {
  if (c.operator === "stale") return `no new ${c.property} for ${formatDuration(c.stale_seconds ?? 0)}`;
  let subject = c.property;
  if (c.window) subject = `${formatDuration(c.window.seconds)} ${c.window.fn} of ${c.property}`;
  else if (c.rate) subject = `change of ${c.property} per ${c.rate.per_seconds === 60 ? "minute" : c.rate.per_seconds === 3600 ? "hour" : formatDuration(c.rate.per_seconds)}`;
  const op = OPERATORS.find((o) => o.value === c.operator)?.value ?? c.operator;
  let text: string;
  if (c.operator === "between") text = `${subject} between ${num(c.value)} and ${num(c.value2)}`;
  else if (c.operator === "outside") text = `${subject} outside ${num(c.value)} to ${num(c.value2)}`;
  else text = `${subject} ${op} ${num(c.value)}`;
  if (c.for_seconds) text += ` for ${formatDuration(c.for_seconds)}`;
  return text;
}

/** The condition tree in words; nested groups in parentheses. */
export function describeNode(node: Node, nested = false): string {
  if (!isGroup(node)) return describeCondition(node);
  if (node.conditions.length === 1) return describeNode(node.conditions[0]!, nested);
  const joined = node.conditions.map((child) => describeNode(child, true)).join(node.op === "and" ? " AND " : " OR ");
  return nested ? `(${joined})` : joined;
}

export function describeScope(scope: Scope): string {
  const ids = scope.device_ids ?? [];
  switch (scope.kind) {
    case "factory":
      return "Whole factory";
    case "type":
      return `Devices of type ${scope.device_type}`;
    case "device":
      return `Device ${ids[0] ?? "?"}`;
    case "devices":
      return ids.length <= 3 ? `Devices ${ids.join(", ")}` : `${ids.length} devices: ${ids.slice(0, 3).join(", ")}, …`;
  }
}

export function describeSchedule(schedule: Schedule | null | undefined): string {
  if (!schedule) return "Always";
  const days = schedule.days ?? [0, 1, 2, 3, 4, 5, 6];
  const dayText = days.length === 7 ? "Every day" : days.map((d) => DAY_NAMES[d] ?? d).join(", ");
  const windows = schedule.windows ?? [];
  if (!windows.length) return `${dayText}, all day`;
  return `${dayText}, ${windows.map((w) => `${w.start}–${w.end}${w.end < w.start ? " (past midnight)" : ""}`).join(", ")}`;
}

// ------------------------------------------------------------------ 422 field paths

/**
 * "body.definition.condition.group.conditions.1.condition.value2" ->
 * "definition.condition.conditions.1.value2": drops the location and the tags Pydantic puts
 * after a node of the condition tree ("group" / "condition").
 */
export function normaliseField(field: string): string {
  const parts = field.replace(/^(body|query|path)\./, "").split(".");
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    out.push(part);
    const atNode =
      (out.length === 2 && out[0] === "definition" && (part === "condition" || part === "clear")) ||
      (/^\d+$/.test(part) && out[out.length - 2] === "conditions");
    const next = parts[i + 1];
    if (atNode && (next === "group" || next === "condition")) i += 1;
  }
  return out.join(".");
}

// ------------------------------------------------------------------ calls

export function getRule(ruleId: string): Promise<Rule> {
  return call(api.GET("/api/v1/rules/{rule_id}", { params: { path: { rule_id: ruleId } } }));
}

export function setRuleEnabled(ruleId: string, enabled: boolean): Promise<Rule> {
  return call(api.PATCH("/api/v1/rules/{rule_id}", { params: { path: { rule_id: ruleId } }, body: { enabled } }));
}

export interface RuleBody {
  name: string;
  description: string;
  enabled: boolean;
  definition: RuleDefinition;
}

// The builder's definition is the API's JSON; the generated types spell the recursive condition
// tree and the defaulted fields differently, so the bodies are handed over as they are.
type ApiRuleCreate = components["schemas"]["RuleCreate"];
type ApiDefinition = components["schemas"]["RuleDefinition-Input"];

export function createRule(body: RuleBody): Promise<Rule> {
  return call(api.POST("/api/v1/rules", { body: body as unknown as ApiRuleCreate }));
}

export function updateRule(ruleId: string, body: RuleBody): Promise<Rule> {
  return call(
    api.PATCH("/api/v1/rules/{rule_id}", { params: { path: { rule_id: ruleId } }, body: body as unknown as ApiRuleCreate }),
  );
}

export interface BacktestAlert {
  device_id: string;
  opened_at: string;
  resolved_at: string | null;
  trigger_values: Record<string, number>;
}

export interface BacktestResult {
  start: string;
  end: string;
  devices: number;
  points: number;
  alerts: BacktestAlert[];
  truncated: boolean;
}

/** Starts a backtest of an unsaved definition over [start, end); answers the job's id. */
export function startBacktest(definition: RuleDefinition, start: string, end: string): Promise<{ job_id: string }> {
  return call(api.POST("/api/v1/rules/backtest", { body: { definition: definition as unknown as ApiDefinition, start, end } }));
}

export function getJob(jobId: string): Promise<Job> {
  return call(api.GET("/api/v1/jobs/{job_id}", { params: { path: { job_id: jobId } } }));
}

export function cancelJob(jobId: string): Promise<Job> {
  return call(api.POST("/api/v1/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } }));
}

export const JOB_DONE = new Set(["succeeded", "failed", "cancelled"]);
