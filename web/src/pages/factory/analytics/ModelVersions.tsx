// "/f/:slug/analytics/models": the model registry, newest first. Each saved version can be applied
// to a dataset with the columns it was fitted on (a scoring run).
import { useState } from "react";
import { Link } from "react-router-dom";
import { formatMetric, listModelVersions, metricLabel, TASK_LABELS, TASKS, type ModelVersion, type Task } from "../../../api/analytics";
import { Notice, PageHeader, Pagination, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { usePaged } from "../../../lib/usePaged";
import { ScoreDialog, useAnalytics, useBase, useModelTitle, useTimeZone } from "./common";

/** The first few metrics of a version, in words. */
function metricsText(metrics: Record<string, unknown>): string {
  const entries = Object.entries(metrics ?? {}).filter(([, v]) => typeof v === "number");
  if (!entries.length) return "—";
  return entries
    .slice(0, 4)
    .map(([k, v]) => `${metricLabel(k)} ${formatMetric(k, v)}`)
    .join(" · ");
}

export function ModelVersions() {
  const base = useBase();
  const timeZone = useTimeZone();
  const { mayChange, blocked } = useAnalytics();
  const [task, setTask] = useState<Task | "">("");
  const [scoring, setScoring] = useState<ModelVersion | null>(null);
  const modelTitle = useModelTitle();
  const versions = usePaged<ModelVersion>((limit, offset) => listModelVersions({ task: task || undefined }, limit, offset), [task]);

  return (
    <>
      <PageHeader title="Model versions" subtitle="Every fitted model is saved as a new version of its name, and can be applied to newer data." />
      <section className="card">
        <div className="table-toolbar">
          <select aria-label="Filter by analysis" className="toolbar-select" value={task} onChange={(e) => setTask(e.target.value as Task | "")}>
            <option value="">All analyses</option>
            {TASKS.map((t) => (
              <option key={t.value} value={t.value}>
                {t.label}
              </option>
            ))}
          </select>
          <span className="toolbar-spacer" />
          <button type="button" className="btn btn-secondary btn-sm" onClick={versions.reload}>
            Refresh
          </button>
        </div>
        {versions.error && (
          <Notice tone="error" title="Could not load the model versions">
            {versions.error}
          </Notice>
        )}
        {!versions.page && versions.loading && <Spinner label="Loading model versions…" />}
        {versions.page && (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Model versions">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th className="num">Version</th>
                    <th>Analysis</th>
                    <th>Model</th>
                    <th>Metrics</th>
                    <th>Dataset</th>
                    <th>Created</th>
                    {mayChange && <th />}
                  </tr>
                </thead>
                <tbody>
                  {versions.page.items.length === 0 && (
                    <tr>
                      <td colSpan={mayChange ? 8 : 7} className="table-empty">
                        No model versions yet. A run that fits a model saves one.
                      </td>
                    </tr>
                  )}
                  {versions.page.items.map((v) => (
                    <tr key={v.id} data-version={`${v.name}:${v.version}`}>
                      <td>
                        <Link className="cell-primary mono" to={`${base}/runs/${encodeURIComponent(v.run_id)}`}>
                          {v.name}
                        </Link>
                        {v.target && <div className="cell-secondary">target {v.target}</div>}
                      </td>
                      <td className="num">v{v.version}</td>
                      <td>{TASK_LABELS[v.task] ?? v.task}</td>
                      <td data-model={v.model_name}>{modelTitle(v.task, v.model_name)}</td>
                      <td className="small">{metricsText(v.metrics)}</td>
                      <td>
                        <Link className="mono small" to={`${base}/datasets/${encodeURIComponent(v.dataset_id)}`}>
                          {v.dataset_id.slice(0, 8)}
                        </Link>
                      </td>
                      <td className="nowrap">{formatDateTime(v.created_at, timeZone)}</td>
                      {mayChange && (
                        <td>
                          <button
                            type="button"
                            className="btn btn-secondary btn-sm"
                            aria-label={`Score with ${v.name} v${v.version}`}
                            disabled={Boolean(blocked)}
                            title={blocked ?? undefined}
                            onClick={() => setScoring(v)}
                          >
                            Score
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination total={versions.page.total} limit={versions.limit} offset={versions.offset} onChange={versions.setOffset} noun="versions" />
          </>
        )}
      </section>
      {scoring && (
        <ScoreDialog
          versionId={scoring.id}
          title={`${scoring.name} v${scoring.version}`}
          columns={scoring.columns}
          onClose={() => setScoring(null)}
        />
      )}
    </>
  );
}
