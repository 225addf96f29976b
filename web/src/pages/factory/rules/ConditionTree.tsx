// The condition tree of the rule builder: AND/OR groups, nested, each with conditions on the
// factory's discovered properties (thresholds, ranges, durations, rates, windows, staleness).
import { OPERATORS, type Operator } from "../../../api/rules";
import type { Property } from "../../../api/devices";
import { DurationInput } from "./inputs";
import { newCondition, newGroup, type CondForm, type FormErrors, type GroupForm, type Measure, type NodeForm, type WindowFn } from "./ruleForm";

interface TreeProps {
  /** Property names known to the factory, for the pickers (a datalist with this id). */
  listId: string;
  properties: Map<string, Property>;
  /** False when the factory has more properties than were loaded (no "unknown" hint then). */
  propertiesComplete: boolean;
  errors: FormErrors;
  readOnly: boolean;
}

function replaceChild(group: GroupForm, key: string, next: NodeForm | null): GroupForm {
  return { ...group, children: group.children.flatMap((c) => (c.key === key ? (next ? [next] : []) : [c])) };
}

export function GroupEditor({
  group,
  onChange,
  onRemove,
  depth,
  label,
  ...tree
}: TreeProps & {
  group: GroupForm;
  onChange: (group: GroupForm) => void;
  onRemove?: () => void;
  depth: number;
  label: string;
}) {
  const error = tree.errors[`node:${group.key}`];
  const joiner = group.op === "and" ? "AND" : "OR";
  return (
    <div
      className={`rule-group rule-group-${group.op}${depth ? " rule-group-nested" : ""}${error ? " rule-node-invalid" : ""}`}
      role="group"
      aria-label={label}
      data-kind="group"
      data-depth={depth}
    >
      <div className="rule-group-head">
        <div className="segmented" role="group" aria-label={`${label}: combine with`}>
          {(["and", "or"] as const).map((op) => (
            <button
              key={op}
              type="button"
              className={group.op === op ? "active" : ""}
              aria-pressed={group.op === op}
              disabled={tree.readOnly}
              onClick={() => onChange({ ...group, op })}
            >
              {op === "and" ? "All of (AND)" : "Any of (OR)"}
            </button>
          ))}
        </div>
        <span className="toolbar-spacer" />
        {!tree.readOnly && (
          <>
            <button type="button" className="btn btn-secondary btn-sm" onClick={() => onChange({ ...group, children: [...group.children, newCondition()] })}>
              + Condition
            </button>
            <button
              type="button"
              className="btn btn-secondary btn-sm"
              onClick={() => onChange({ ...group, children: [...group.children, newGroup(group.op === "and" ? "or" : "and")] })}
            >
              + Group
            </button>
            {onRemove && (
              <button type="button" className="btn btn-link btn-sm text-bad" onClick={onRemove}>
                Remove group
              </button>
            )}
          </>
        )}
      </div>
      {error && <p className="field-error rule-node-error">{error}</p>}
      {group.children.length === 0 && <p className="muted small rule-empty">This group is empty: add a condition.</p>}
      <ol className="rule-children">
        {group.children.map((child, i) => (
          <li key={child.key}>
            {i > 0 && <span className={`rule-joiner rule-joiner-${group.op}`}>{joiner}</span>}
            {child.kind === "group" ? (
              <GroupEditor
                {...tree}
                group={child}
                depth={depth + 1}
                label={`${label}, group ${i + 1}`}
                onChange={(next) => onChange(replaceChild(group, child.key, next))}
                onRemove={() => onChange(replaceChild(group, child.key, null))}
              />
            ) : (
              <ConditionEditor
                {...tree}
                condition={child}
                label={`${label}, condition ${i + 1}`}
                onChange={(next) => onChange(replaceChild(group, child.key, next))}
                onRemove={group.children.length > 1 || depth > 0 ? () => onChange(replaceChild(group, child.key, null)) : undefined}
              />
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}

function ConditionEditor({
  condition: c,
  onChange,
  onRemove,
  label,
  listId,
  properties,
  propertiesComplete,
  errors,
  readOnly,
}: TreeProps & { condition: CondForm; onChange: (c: CondForm) => void; onRemove?: () => void; label: string }) {
  const error = errors[`node:${c.key}`];
  const fieldError = (name: string) => Boolean(errors[`node:${c.key}:${name}`]);
  const set = (patch: Partial<CondForm>) => onChange({ ...c, ...patch });
  const two = c.operator === "between" || c.operator === "outside";
  const stale = c.operator === "stale";
  const unit = properties.get(c.property.trim())?.unit ?? "";
  const known = !propertiesComplete || !c.property.trim() || properties.has(c.property.trim());
  const measureUnit = c.measure === "rate" && unit ? `${unit}/${c.ratePer === 3600 ? "h" : "min"}` : unit;
  return (
    <div className={`rule-condition${error ? " rule-node-invalid" : ""}`} role="group" aria-label={label} data-kind="condition">
      <div className="rule-condition-main">
        <input
          className="rule-property"
          aria-label="Property"
          list={listId}
          placeholder="Property, e.g. power_kw"
          spellCheck={false}
          autoComplete="off"
          disabled={readOnly}
          aria-invalid={fieldError("property") || !known || undefined}
          value={c.property}
          onChange={(e) => set({ property: e.target.value })}
        />
        <select
          className="rule-operator"
          aria-label="Operator"
          disabled={readOnly}
          value={c.operator}
          onChange={(e) => set({ operator: e.target.value as Operator })}
        >
          {OPERATORS.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
        {stale ? (
          <DurationInput
            label="No new value for"
            seconds={c.staleSeconds}
            units={[1, 60, 3600]}
            min={10}
            disabled={readOnly}
            invalid={fieldError("stale_seconds")}
            onChange={(staleSeconds) => set({ staleSeconds })}
          />
        ) : (
          <>
            <input
              className="rule-value"
              type="number"
              step="any"
              aria-label={two ? "From" : "Value"}
              placeholder={two ? "from" : "value"}
              disabled={readOnly}
              aria-invalid={fieldError("value") || undefined}
              value={c.value}
              onChange={(e) => set({ value: e.target.value })}
            />
            {two && (
              <>
                <span className="muted">{c.operator === "between" ? "and" : "to"}</span>
                <input
                  className="rule-value"
                  type="number"
                  step="any"
                  aria-label="To"
                  placeholder="to"
                  disabled={readOnly}
                  aria-invalid={fieldError("value2") || Boolean(error && /value2|range/i.test(error)) || undefined}
                  value={c.value2}
                  onChange={(e) => set({ value2: e.target.value })}
                />
              </>
            )}
            {measureUnit && <span className="unit">{measureUnit}</span>}
          </>
        )}
        <span className="toolbar-spacer" />
        {onRemove && !readOnly && (
          <button type="button" className="btn btn-link btn-sm text-bad" aria-label={`Remove ${label.toLowerCase()}`} onClick={onRemove}>
            Remove
          </button>
        )}
      </div>
      {!stale && (
        <div className="rule-condition-options">
          <label className="rule-inline">
            <span>Compare</span>
            <select
              aria-label="Compare"
              disabled={readOnly}
              value={c.measure}
              onChange={(e) => set({ measure: e.target.value as Measure })}
            >
              <option value="value">the value</option>
              <option value="rate">its rate of change</option>
              <option value="window">an aggregate over a window</option>
            </select>
          </label>
          {c.measure === "rate" && (
            <label className="rule-inline">
              <span>per</span>
              <select aria-label="Rate per" disabled={readOnly} value={c.ratePer} onChange={(e) => set({ ratePer: Number(e.target.value) })}>
                <option value={60}>minute</option>
                <option value={3600}>hour</option>
              </select>
            </label>
          )}
          {c.measure === "window" && (
            <span className="rule-inline">
              <select aria-label="Aggregate" disabled={readOnly} value={c.windowFn} onChange={(e) => set({ windowFn: e.target.value as WindowFn })}>
                <option value="mean">mean</option>
                <option value="min">minimum</option>
                <option value="max">maximum</option>
              </select>
              <span>over the last</span>
              <DurationInput
                label="Window"
                seconds={c.windowSeconds}
                units={[60, 3600]}
                min={1}
                disabled={readOnly}
                invalid={fieldError("window")}
                onChange={(windowSeconds) => set({ windowSeconds })}
              />
            </span>
          )}
          <span className="rule-inline">
            <span>holds for</span>
            <DurationInput
              label="Holds for"
              seconds={c.forSeconds}
              units={[1, 60, 3600]}
              disabled={readOnly}
              invalid={fieldError("for_seconds")}
              onChange={(forSeconds) => set({ forSeconds })}
            />
            <span className="muted small">(0: at once)</span>
          </span>
        </div>
      )}
      {!known && !error && <p className="field-hint">No device of this factory has reported “{c.property.trim()}” yet.</p>}
      {error && <p className="field-error rule-node-error">{error}</p>}
    </div>
  );
}
