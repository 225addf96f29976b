// Shared pieces of the analytics pages: whether analytics can start work now (and who may),
// state badges, the progress bar of a job, and the dialog that scores a dataset with a saved model.
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { useNavigate, useParams } from "react-router-dom";
import {
  DATASET_STATE_LABELS,
  getCatalogue,
  listDatasets,
  RUN_STATE_LABELS,
  scoreWithModel,
  stateTone,
  type AnalyticsStatus,
  type Dataset,
  type ModelInfo,
} from "../../../api/analytics";
import { describeError } from "../../../api/errors";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Field, Modal, Notice, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";

export interface AnalyticsAccess {
  /** The last answer of GET /analytics/status; null until it arrives. */
  status: AnalyticsStatus | null;
  /** The user holds the analytics permission. */
  mayChange: boolean;
  /** Why new work cannot start now (no permission, or analytics paused), or null when it can. */
  blocked: string | null;
  refresh: () => void;
}

export const AnalyticsContext = createContext<AnalyticsAccess>({ status: null, mayChange: false, blocked: null, refresh: () => undefined });

export function useAnalytics(): AnalyticsAccess {
  return useContext(AnalyticsContext);
}

export function useTimeZone(): string | undefined {
  const { principal } = useAuth();
  return principal?.factory?.timezone;
}

/** The base path of the analytics area: "/f/acme/analytics". */
export function useBase(): string {
  const { slug = "" } = useParams();
  return `/f/${slug}/analytics`;
}

export function DatasetStateBadge({ state }: { state: string }) {
  return (
    <span className="analytics-state" data-state={state}>
      <Badge tone={stateTone(state)}>{DATASET_STATE_LABELS[state] ?? state}</Badge>
    </span>
  );
}

export function RunStateBadge({ state }: { state: string }) {
  return (
    <span className="analytics-state" data-state={state}>
      <Badge tone={stateTone(state)}>{RUN_STATE_LABELS[state] ?? state}</Badge>
    </span>
  );
}

/** A 0-100 bar with the job's message under it. */
export function ProgressBar({ progress, message, label }: { progress: number; message: string; label: string }) {
  const value = Math.max(0, Math.min(100, Math.round(progress)));
  return (
    <div className="rule-progress analytics-progress" data-testid="analytics-progress">
      <div className="rule-progress-bar" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={value}>
        <span style={{ width: `${Math.max(2, value)}%` }} />
      </div>
      <span className="small muted">
        <span data-testid="progress-value">{value}%</span> · <span data-testid="progress-message">{message}</span>
      </span>
    </div>
  );
}

/** The analytics-is-paused banner (object store unreachable), with the API's own words. */
export function UnavailableBanner() {
  const { status } = useAnalytics();
  if (!status || status.available) return null;
  return (
    <Notice tone="warning">
      <span data-testid="analytics-unavailable">{status.message || "Analytics is paused: it cannot start new work right now."}</span>
    </Notice>
  );
}

/** A button that starts new work: disabled with the reason when analytics is paused or not allowed. */
export function StartButton({ onClick, children, busy }: { onClick: () => void; children: ReactNode; busy?: boolean }) {
  const { blocked } = useAnalytics();
  return (
    <button type="button" className="btn btn-primary" disabled={Boolean(blocked) || busy} title={blocked ?? undefined} onClick={onClick}>
      {children}
    </button>
  );
}

let catalogueCache: Promise<ModelInfo[]> | null = null;

/** The catalogue's titles of models ("Isolation forest" for anomaly/isolation_forest); the name until loaded. */
export function useModelTitle(): (task: string, name: string) => string {
  const [models, setModels] = useState<ModelInfo[]>([]);
  useEffect(() => {
    let cancelled = false;
    catalogueCache ??= getCatalogue().catch((err: unknown) => {
      catalogueCache = null;
      throw err;
    });
    catalogueCache.then((m) => !cancelled && setModels(m)).catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, []);
  return (task, name) => models.find((m) => m.task === task && m.name === name)?.title ?? name;
}

/** The factory's ready datasets, newest first (for pickers). */
export function useReadyDatasets(): { datasets: Dataset[] | null; error: string | null } {
  const [datasets, setDatasets] = useState<Dataset[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    listDatasets("", 200, 0)
      .then((page) => !cancelled && setDatasets(page.items.filter((d) => d.state === "ready")))
      .catch((err: unknown) => !cancelled && setError(describeError(err)));
    return () => {
      cancelled = true;
    };
  }, []);
  return { datasets, error };
}

export function datasetOption(d: Dataset, timeZone?: string): string {
  return `${d.name} · ${d.columns.length} columns · ${formatDateTime(d.created_at, timeZone)}`;
}

/**
 * Applies a saved model version to a dataset the user picks (a scoring run), then opens that run.
 * The datasets offered must hold the columns the model was fitted on.
 */
export function ScoreDialog({
  versionId,
  title,
  columns,
  defaultDatasetId,
  onClose,
}: {
  versionId: string;
  title: string;
  columns: string[];
  defaultDatasetId?: string;
  onClose: () => void;
}) {
  const navigate = useNavigate();
  const base = useBase();
  const timeZone = useTimeZone();
  const { blocked } = useAnalytics();
  const { datasets, error: loadError } = useReadyDatasets();
  const [datasetId, setDatasetId] = useState(defaultDatasetId ?? "");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const fits = (d: Dataset) => columns.every((c) => d.columns.includes(c));
  const choices = (datasets ?? []).filter(fits);
  const chosen = datasetId || choices[0]?.id || "";

  const submit = async () => {
    if (!chosen) return;
    setBusy(true);
    setError(null);
    try {
      const run = await scoreWithModel(versionId, chosen);
      onClose();
      navigate(`${base}/runs/${encodeURIComponent(run.id)}`);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title={`Score with ${title}`} onClose={onClose}>
      <form
        aria-label="Score a dataset"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <p className="muted small">
          The saved model is applied as it is, without refitting, to the dataset you choose; the result is a new scoring run.
        </p>
        {blocked && <Notice tone="warning">{blocked}</Notice>}
        {(error || loadError) && <Notice tone="error">{error ?? loadError}</Notice>}
        {!datasets && !loadError && <Spinner label="Loading datasets…" />}
        {datasets && (
          <Field label="Dataset" hint={columns.length ? `Needs the columns ${columns.join(", ")}.` : undefined}>
            {(p) => (
              <select {...p} value={chosen} onChange={(e) => setDatasetId(e.target.value)}>
                {choices.length === 0 && <option value="">No ready dataset has the model's columns</option>}
                {choices.map((d) => (
                  <option key={d.id} value={d.id}>
                    {datasetOption(d, timeZone)}
                  </option>
                ))}
              </select>
            )}
          </Field>
        )}
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={!chosen || busy || Boolean(blocked)}>
            {busy ? "Starting…" : "Start scoring run"}
          </button>
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}
