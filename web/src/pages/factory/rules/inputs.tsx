// Small inputs of the rule builder: a duration with its unit, and a list of values (emails,
// phone numbers) entered one at a time.
import { useId, useState, type KeyboardEvent } from "react";

const UNITS = [
  { label: "s", seconds: 1 },
  { label: "min", seconds: 60 },
  { label: "h", seconds: 3600 },
];

function unitFor(seconds: number, allowed: number[]): number {
  const fitting = allowed.filter((u) => seconds % u === 0 && seconds >= u);
  return fitting.length ? Math.max(...fitting) : Math.min(...allowed);
}

/** A number of seconds entered as a count and a unit (s / min / h). */
export function DurationInput({
  seconds,
  onChange,
  label,
  units = [1, 60, 3600],
  min = 0,
  disabled,
  invalid,
}: {
  seconds: number;
  onChange: (seconds: number) => void;
  label: string;
  units?: number[];
  min?: number;
  disabled?: boolean;
  invalid?: boolean;
}) {
  const [unit, setUnit] = useState(() => unitFor(seconds, units));
  const [text, setText] = useState(() => String(seconds / unit));
  // Follow changes made from outside (e.g. a loaded rule) without fighting the typing.
  const shown = Number(text) * unit === seconds ? text : String(seconds / unit);
  return (
    <span className="duration-input">
      <input
        type="number"
        min={min}
        step="any"
        aria-label={label}
        aria-invalid={invalid || undefined}
        disabled={disabled}
        value={shown}
        onChange={(e) => {
          setText(e.target.value);
          const n = Number(e.target.value);
          if (e.target.value.trim() !== "" && Number.isFinite(n)) onChange(Math.round(n * unit));
          else onChange(0);
        }}
      />
      <select
        aria-label={`${label} unit`}
        disabled={disabled}
        value={unit}
        onChange={(e) => {
          const next = Number(e.target.value);
          setUnit(next);
          const n = Number(shown);
          onChange(Math.round((Number.isFinite(n) ? n : 0) * next));
        }}
      >
        {UNITS.filter((u) => units.includes(u.seconds)).map((u) => (
          <option key={u.seconds} value={u.seconds}>
            {u.label}
          </option>
        ))}
      </select>
    </span>
  );
}

/**
 * Values added one by one (Enter, comma or the Add button) and shown as removable chips;
 * `check` refuses a malformed value before it is added.
 */
export function ListInput({
  label,
  values,
  onChange,
  placeholder,
  check,
  error,
  hint,
  disabled,
}: {
  label: string;
  values: string[];
  onChange: (values: string[]) => void;
  placeholder?: string;
  check?: (value: string) => string | null;
  error?: string;
  hint?: string;
  disabled?: boolean;
}) {
  const id = useId();
  const [text, setText] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const commit = () => {
    const parts = text
      .split(/[,;\s]+/)
      .map((p) => p.trim())
      .filter(Boolean);
    if (!parts.length) return;
    for (const part of parts) {
      const bad = check?.(part);
      if (bad) {
        setProblem(bad);
        return;
      }
    }
    onChange(Array.from(new Set([...values, ...parts])));
    setText("");
    setProblem(null);
  };
  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Enter" || e.key === ",") {
      e.preventDefault();
      commit();
    }
  };
  const shownError = problem ?? error;
  return (
    <div className={`field${shownError ? " field-invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {values.length > 0 && (
        <ul className="chips rule-chips" aria-label={`${label} added`}>
          {values.map((v) => (
            <li key={v} className="rule-chip">
              <span>{v}</span>
              {!disabled && (
                <button type="button" aria-label={`Remove ${v}`} onClick={() => onChange(values.filter((x) => x !== v))}>
                  ×
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {!disabled && (
        <div className="input-with-button">
          <input
            id={id}
            value={text}
            placeholder={placeholder}
            aria-invalid={Boolean(shownError)}
            onChange={(e) => {
              setText(e.target.value);
              setProblem(null);
            }}
            onKeyDown={onKey}
            onBlur={() => text.trim() && commit()}
          />
          <button type="button" className="btn btn-secondary" onClick={commit}>
            Add
          </button>
        </div>
      )}
      {shownError ? <p className="field-error">{shownError}</p> : hint && <p className="field-hint">{hint}</p>}
    </div>
  );
}
