// Shared pieces of the reports pages: the area's base path, the state badge, the progress bar,
// the sections and properties pickers (used by the builder and the schedule form), and the hook
// that follows reports while they are queued or running.
import { useEffect, useRef, useState } from "react";
import { useParams } from "react-router-dom";
import {
  FORMATS,
  listPropertyVocabulary,
  REPORT_STATE_LABELS,
  reportStateTone,
  SECTIONS,
  type Format,
  type Property,
  type Section,
} from "../../../api/reports";
import { useAuth } from "../../../auth/AuthContext";
import { Badge } from "../../../components/ui";

/** How often a queued or running report is asked for its progress. */
export const POLL_MS = 1000;

/** The base path of the reports area: "/f/acme/reports". */
export function useBase(): string {
  const { slug = "" } = useParams();
  return `/f/${slug}/reports`;
}

export function useTimeZone(): string | undefined {
  const { principal } = useAuth();
  return principal?.factory?.timezone;
}

export function ReportStateBadge({ state }: { state: string }) {
  return (
    <span className="report-state" data-state={state}>
      <Badge tone={reportStateTone(state)}>{REPORT_STATE_LABELS[state] ?? state}</Badge>
    </span>
  );
}

/** A 0-100 bar with the job's message beside it. */
export function ReportProgress({ progress, message, compact }: { progress: number; message: string; compact?: boolean }) {
  const value = Math.max(0, Math.min(100, Math.round(progress)));
  return (
    <div className={`rule-progress report-progress${compact ? " report-progress-compact" : ""}`} data-testid="report-progress">
      <div className="rule-progress-bar" role="progressbar" aria-label="Report progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={value}>
        <span style={{ width: `${Math.max(2, value)}%` }} />
      </div>
      <span className="small muted">
        <span data-testid="progress-value">{value}%</span>
        {message && (
          <>
            {" · "}
            <span data-testid="progress-message">{message}</span>
          </>
        )}
      </span>
    </div>
  );
}

/** Runs `tick` every POLL_MS while `active` and the tab is visible. */
export function usePoll(active: boolean, tick: () => void): void {
  const ref = useRef(tick);
  ref.current = tick;
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(() => {
      if (!document.hidden) ref.current();
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [active]);
}

export function SectionsPicker({
  selected,
  onChange,
  error,
  disabled,
}: {
  selected: Section[];
  onChange: (sections: Section[]) => void;
  error?: string;
  disabled?: boolean;
}) {
  return (
    <fieldset className={`report-sections field${error ? " field-invalid" : ""}`} aria-label="Sections">
      <legend>Sections</legend>
      <div className="checkbox-grid">
        {SECTIONS.map((s) => (
          <label key={s.value} className="checkbox" title={s.hint}>
            <input
              type="checkbox"
              disabled={disabled}
              checked={selected.includes(s.value)}
              onChange={(e) =>
                onChange(e.target.checked ? SECTIONS.map((x) => x.value).filter((v) => v === s.value || selected.includes(v)) : selected.filter((x) => x !== s.value))
              }
            />
            <span>{s.label}</span>
          </label>
        ))}
      </div>
      {error ? <p className="field-error">{error}</p> : <p className="field-hint">{SECTIONS.map((s) => `${s.label}: ${s.hint}`).join(". ")}.</p>}
    </fieldset>
  );
}

/** The factory's property vocabulary, asked once per page. */
export function usePropertyVocabulary(): { properties: Property[] | null; problem: string | null } {
  const [properties, setProperties] = useState<Property[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    listPropertyVocabulary()
      .then((items) => !cancelled && setProperties(items))
      .catch(() => !cancelled && setProblem("Could not load the factory's properties."));
    return () => {
      cancelled = true;
    };
  }, []);
  return { properties, problem };
}

/** Which properties the properties section covers (min, mean, max, completeness per device). */
export function PropertiesPicker({
  selected,
  onChange,
  error,
  disabled,
}: {
  selected: string[];
  onChange: (names: string[]) => void;
  error?: string;
  disabled?: boolean;
}) {
  const { properties, problem } = usePropertyVocabulary();
  const names = properties?.map((p) => p.name) ?? [];
  // Chosen names the vocabulary no longer has (e.g. on an old schedule) stay visible to untick.
  const extra = selected.filter((n) => properties && !names.includes(n));
  return (
    <fieldset className={`report-props field${error ? " field-invalid" : ""}`} aria-label="Properties">
      <legend>Properties for the properties section</legend>
      {!properties && !problem && <p className="muted small">Loading the factory's properties…</p>}
      {problem && <p className="field-error">{problem}</p>}
      {properties && !properties.length && <p className="muted small">No device of this factory has reported a property yet.</p>}
      {properties && properties.length + extra.length > 0 && (
        <div className="checkbox-grid">
          {[...properties.map((p) => ({ name: p.name, title: p.display_name || p.name, unit: p.unit })), ...extra.map((n) => ({ name: n, title: n, unit: "" }))].map((p) => (
            <label key={p.name} className="checkbox" title={p.title !== p.name ? p.title : undefined}>
              <input
                type="checkbox"
                disabled={disabled}
                checked={selected.includes(p.name)}
                onChange={(e) => onChange(e.target.checked ? [...selected, p.name] : selected.filter((x) => x !== p.name))}
              />
              <span className="mono">{p.name}</span>
              {p.unit && <span className="muted small">{p.unit}</span>}
            </label>
          ))}
        </div>
      )}
      {error ? <p className="field-error">{error}</p> : <p className="field-hint">Up to 50. Used only when the Properties section is chosen.</p>}
    </fieldset>
  );
}

export function FormatPicker({ value, onChange, disabled }: { value: Format; onChange: (v: Format) => void; disabled?: boolean }) {
  return (
    <fieldset className="report-format field" aria-label="Format">
      <legend>Format</legend>
      <div className="checkbox-grid">
        {FORMATS.map((f) => (
          <label key={f.value} className="checkbox" title={f.hint}>
            <input type="radio" name="report-format" value={f.value} disabled={disabled} checked={value === f.value} onChange={() => onChange(f.value)} />
            <span>{f.label}</span>
          </label>
        ))}
      </div>
      <p className="field-hint">{FORMATS.find((f) => f.value === value)?.hint}</p>
    </fieldset>
  );
}
