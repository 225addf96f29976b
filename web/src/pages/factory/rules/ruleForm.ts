// The rule builder's state, its conversion to and from the API's definition, and the placing of
// the API's 422 problems next to the form's fields.
import {
  isGroup,
  normaliseField,
  type Condition,
  type Group,
  type Node,
  type Operator,
  type Rule,
  type RuleBody,
  type RuleDefinition,
  type Scope,
  type Severity,
} from "../../../api/rules";
import type { FieldProblem } from "../../../api/errors";

export type Measure = "value" | "rate" | "window";
export type WindowFn = "mean" | "min" | "max";

export interface CondForm {
  kind: "condition";
  key: string;
  property: string;
  operator: Operator;
  value: string;
  value2: string;
  forSeconds: number;
  measure: Measure;
  ratePer: number;
  windowFn: WindowFn;
  windowSeconds: number;
  staleSeconds: number;
}

export interface GroupForm {
  kind: "group";
  key: string;
  op: "and" | "or";
  children: NodeForm[];
}

export type NodeForm = CondForm | GroupForm;

export interface WindowForm {
  key: string;
  start: string;
  end: string;
}

export interface RuleForm {
  name: string;
  description: string;
  enabled: boolean;
  scopeKind: Scope["kind"];
  deviceIds: string[];
  deviceType: string;
  condition: GroupForm;
  scheduled: boolean;
  days: number[];
  windows: WindowForm[];
  severity: Severity;
  cooldownSeconds: number;
  autoResolve: boolean;
  useClear: boolean;
  clear: GroupForm;
  emails: string[];
  whatsapp: string[];
  users: string[];
  remindAfterMinutes: number;
  onResolve: boolean;
}

let counter = 0;
export function newKey(): string {
  counter += 1;
  return `k${counter}`;
}

export function newCondition(property = ""): CondForm {
  return {
    kind: "condition",
    key: newKey(),
    property,
    operator: ">",
    value: "",
    value2: "",
    forSeconds: 0,
    measure: "value",
    ratePer: 60,
    windowFn: "mean",
    windowSeconds: 900,
    staleSeconds: 600,
  };
}

export function newGroup(op: "and" | "or" = "and", children?: NodeForm[]): GroupForm {
  return { kind: "group", key: newKey(), op, children: children ?? [newCondition()] };
}

export function newForm(): RuleForm {
  return {
    name: "",
    description: "",
    enabled: true,
    scopeKind: "factory",
    deviceIds: [],
    deviceType: "",
    condition: newGroup("and"),
    scheduled: false,
    days: [0, 1, 2, 3, 4, 5, 6],
    windows: [],
    severity: "warning",
    cooldownSeconds: 300,
    autoResolve: true,
    useClear: false,
    clear: newGroup("and"),
    emails: [],
    whatsapp: [],
    users: [],
    remindAfterMinutes: 0,
    onResolve: true,
  };
}

// ------------------------------------------------------------------ from the API

function conditionForm(c: Condition): CondForm {
  return {
    ...newCondition(c.property),
    operator: c.operator,
    value: c.value === null || c.value === undefined ? "" : String(c.value),
    value2: c.value2 === null || c.value2 === undefined ? "" : String(c.value2),
    forSeconds: c.for_seconds ?? 0,
    measure: c.window ? "window" : c.rate ? "rate" : "value",
    ratePer: c.rate?.per_seconds ?? 60,
    windowFn: c.window?.fn ?? "mean",
    windowSeconds: c.window?.seconds ?? 900,
    staleSeconds: c.stale_seconds ?? 600,
  };
}

function nodeForm(node: Node): NodeForm {
  if (isGroup(node)) return { kind: "group", key: newKey(), op: node.op, children: node.conditions.map(nodeForm) };
  return conditionForm(node);
}

/** The root of the builder is always a group; a lone condition becomes a group of one. */
function rootForm(node: Node | null | undefined): GroupForm {
  if (!node) return newGroup("and");
  const form = nodeForm(node);
  return form.kind === "group" ? form : newGroup("and", [form]);
}

export function formFromRule(rule: Rule): RuleForm {
  const d = rule.definition as unknown as RuleDefinition;
  const notify = d.notify ?? {};
  return {
    name: rule.name,
    description: rule.description,
    enabled: rule.enabled,
    scopeKind: d.scope.kind,
    deviceIds: d.scope.device_ids ?? [],
    deviceType: d.scope.device_type ?? "",
    condition: rootForm(d.condition),
    scheduled: Boolean(d.schedule),
    days: d.schedule?.days ?? [0, 1, 2, 3, 4, 5, 6],
    windows: (d.schedule?.windows ?? []).map((w) => ({ key: newKey(), start: w.start, end: w.end })),
    severity: d.severity,
    cooldownSeconds: d.cooldown_seconds,
    autoResolve: d.auto_resolve,
    useClear: Boolean(d.clear),
    clear: rootForm(d.clear),
    emails: notify.emails ?? [],
    whatsapp: notify.whatsapp ?? [],
    users: notify.users ?? [],
    remindAfterMinutes: notify.remind_after_minutes ?? 0,
    onResolve: notify.on_resolve ?? true,
  };
}

// ------------------------------------------------------------------ to the API

function numberOrNull(text: string): number | null {
  if (!text.trim()) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

function conditionBody(c: CondForm): Condition {
  if (c.operator === "stale") {
    return { property: c.property.trim(), operator: "stale", stale_seconds: c.staleSeconds, for_seconds: 0 };
  }
  const out: Condition = {
    property: c.property.trim(),
    operator: c.operator,
    value: numberOrNull(c.value),
    for_seconds: c.forSeconds,
  };
  if (c.operator === "between" || c.operator === "outside") out.value2 = numberOrNull(c.value2);
  if (c.measure === "rate") out.rate = { per_seconds: c.ratePer };
  if (c.measure === "window") out.window = { fn: c.windowFn, seconds: c.windowSeconds };
  return out;
}

/** Converts a node and records which API path names which form node (for 422 problems). */
function nodeBody(node: NodeForm, path: string, paths: Record<string, string>): Node {
  paths[path] = node.key;
  if (node.kind === "condition") return conditionBody(node);
  const group: Group = { op: node.op, conditions: [] };
  node.children.forEach((child, i) => group.conditions.push(nodeBody(child, `${path}.conditions.${i}`, paths)));
  return group;
}

/** The root group; a group of a single condition is sent as that condition. */
function rootBody(root: GroupForm, path: string, paths: Record<string, string>): Node {
  const only = root.children.length === 1 ? root.children[0] : undefined;
  if (only && only.kind === "condition") {
    paths[`${path}#group`] = root.key;
    return nodeBody(only, path, paths);
  }
  return nodeBody(root, path, paths);
}

export interface Built {
  body: RuleBody;
  /** API path of each node of the trees -> the form node's key. */
  paths: Record<string, string>;
}

export function buildDefinition(form: RuleForm, paths: Record<string, string> = {}): RuleDefinition {
  const scope: Scope = { kind: form.scopeKind, device_ids: [], device_type: "" };
  if (form.scopeKind === "device") scope.device_ids = form.deviceIds.slice(0, 1);
  if (form.scopeKind === "devices") scope.device_ids = [...form.deviceIds];
  if (form.scopeKind === "type") scope.device_type = form.deviceType.trim();
  return {
    scope,
    condition: rootBody(form.condition, "definition.condition", paths),
    schedule: form.scheduled ? { days: [...form.days].sort(), windows: form.windows.map((w) => ({ start: w.start, end: w.end })) } : null,
    severity: form.severity,
    cooldown_seconds: form.cooldownSeconds,
    auto_resolve: form.autoResolve,
    clear: form.useClear ? rootBody(form.clear, "definition.clear", paths) : null,
    notify: {
      emails: form.emails,
      whatsapp: form.whatsapp,
      on_resolve: form.onResolve,
      users: form.users,
      remind_after_minutes: form.remindAfterMinutes,
    },
  };
}

export function buildRule(form: RuleForm): Built {
  const paths: Record<string, string> = {};
  const definition = buildDefinition(form, paths);
  return { body: { name: form.name.trim(), description: form.description.trim(), enabled: form.enabled, definition }, paths };
}

// ------------------------------------------------------------------ 422 problems on the form

/** Problems by form place: "name", "scope", "schedule.windows.0", "notify.emails", "node:k12", ... */
export type FormErrors = Record<string, string>;

function add(errors: FormErrors, key: string, message: string): void {
  errors[key] = errors[key] && !errors[key].includes(message) ? `${errors[key]} ${message}` : (errors[key] ?? message);
}

function conditionsWithProperty(root: GroupForm, name: string): string[] {
  const keys: string[] = [];
  const walk = (node: NodeForm) => {
    if (node.kind === "condition") {
      if (node.property.trim() === name) keys.push(node.key);
    } else node.children.forEach(walk);
  };
  walk(root);
  return keys;
}

/**
 * Places the API's problems on the form. Condition-tree problems go to the deepest node whose
 * path is a prefix of the problem's field ("definition.condition.conditions.1.conditions.0.value2"
 * -> that condition); "unknown property 'x'" goes to every condition on x. Everything else is
 * keyed by its path without "definition." ("scope.device_ids", "schedule.windows.0").
 */
export function placeProblems(details: FieldProblem[], form: RuleForm, paths: Record<string, string>): FormErrors {
  const errors: FormErrors = {};
  for (const d of details) {
    const field = normaliseField(d.field);
    const message = d.message;
    const unknownProperty = /unknown property '([^']+)'/i.exec(message);
    if (unknownProperty && field.startsWith("definition.")) {
      const name = unknownProperty[1]!;
      const keys = [...conditionsWithProperty(form.condition, name), ...(form.useClear ? conditionsWithProperty(form.clear, name) : [])];
      if (keys.length) {
        for (const key of keys) add(errors, `node:${key}`, message);
        continue;
      }
    }
    if (field.startsWith("definition.condition") || field.startsWith("definition.clear")) {
      let best = "";
      for (const path of Object.keys(paths)) {
        if (path.endsWith("#group")) continue;
        if ((field === path || field.startsWith(`${path}.`)) && path.length > best.length) best = path;
      }
      if (best) {
        const rest = field.slice(best.length + 1);
        // An empty root group: its problem is about the group the builder shows.
        const key = rest === "conditions" && paths[`${best}#group`] ? paths[`${best}#group`]! : paths[best]!;
        add(errors, `node:${key}`, message);
        if (rest) add(errors, `node:${key}:${rest.split(".")[0]}`, message);
        continue;
      }
    }
    const short = field.replace(/^definition\./, "");
    add(errors, short, message);
  }
  return errors;
}

/** The first problem whose place is `prefix` or inside it. */
export function errorAt(errors: FormErrors, prefix: string): string | undefined {
  if (errors[prefix]) return errors[prefix];
  const key = Object.keys(errors).find((k) => k.startsWith(`${prefix}.`));
  return key ? errors[key] : undefined;
}

const PLACE_NAMES: Record<string, string> = {
  name: "Name",
  description: "Description",
  severity: "Severity",
  cooldown_seconds: "Cooldown",
  auto_resolve: "Resolve automatically",
  scope: "Applies to",
  "scope.device_ids": "Applies to",
  "scope.device_type": "Device type",
  schedule: "Schedule",
  "schedule.days": "Schedule days",
  "notify.emails": "Emails",
  "notify.whatsapp": "WhatsApp numbers",
  "notify.users": "Users to notify",
  "notify.remind_after_minutes": "Remind after",
  start: "Backtest start",
  end: "Backtest end",
};

/**
 * Where a problem is, in the builder's own words: "definition.condition.conditions.1.conditions.0"
 * -> "Condition, group 2, condition 1" (the label of that row), "schedule.windows.0" -> "Time window 1".
 */
export function placeName(field: string, form: RuleForm): string {
  const path = normaliseField(field);
  const tree = /^definition\.(condition|clear)(.*)$/.exec(path);
  if (tree) {
    const root = tree[1] === "clear" ? form.clear : form.condition;
    const parts = [tree[1] === "clear" ? "Resolve only when" : "Condition"];
    const steps = [...tree[2]!.matchAll(/\.conditions\.(\d+)/g)].map((m) => Number(m[1]));
    const only = root.children.length === 1 && root.children[0]?.kind === "condition";
    if (only && steps.length === 0) return `${parts[0]}, condition 1`;
    let node: NodeForm | undefined = root;
    for (const i of steps) {
      node = node?.kind === "group" ? node.children[i] : undefined;
      if (!node) break;
      parts.push(`${node.kind === "group" ? "group" : "condition"} ${i + 1}`);
    }
    return parts.join(", ");
  }
  const short = path.replace(/^definition\./, "");
  const window = /^schedule\.windows\.(\d+)/.exec(short);
  if (window) return `Time window ${Number(window[1]) + 1}`;
  return PLACE_NAMES[short] ?? PLACE_NAMES[short.split(".").slice(0, 2).join(".")] ?? short;
}
