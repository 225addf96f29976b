// "/f/:slug/analytics/runs": the factory's runs, newest first, filtered by analysis type; 2 to 4
// of them can be ticked and compared side by side. The list follows runs that are still going.
import { useEffect, useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { keyMetric, listRuns, MODE_LABELS, RUN_ACTIVE, TASK_LABELS, TASKS, type Run, type Task } from "../../../api/analytics";
import { Badge, Notice, PageHeader, Pagination, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { usePaged } from "../../../lib/usePaged";
import { RunStateBadge, StartButton, useAnalytics, useBase, useModelTitle, useTimeZone } from "./common";

const ACTIVE_POLL_MS = 2000;
const MAX_COMPARE = 4;

export function RunsList() {
  const navigate = useNavigate();
  const base = useBase();
  const timeZone = useTimeZone();
  const { mayChange } = useAnalytics();
  const [task, setTask] = useState<Task | "">("");
  const [selected, setSelected] = useState<string[]>([]);
  const modelTitle = useModelTitle();
  const runs = usePaged<Run>((limit, offset) => listRuns({ task: task || undefined }, limit, offset), [task]);
  const active = runs.page?.items.some((r) => RUN_ACTIVE.has(r.state)) ?? false;
  const { reload } = runs;

  useEffect(() => {
    if (!active) return;
    const timer = window.setTimeout(reload, ACTIVE_POLL_MS);
    return () => window.clearTimeout(timer);
  }, [active, reload, runs.page]);

  const toggle = (id: string, on: boolean) =>
    setSelected((cur) => (on ? (cur.includes(id) ? cur : [...cur, id].slice(-MAX_COMPARE)) : cur.filter((x) => x !== id)));
  const canCompare = selected.length >= 2 && selected.length <= MAX_COMPARE;

  return (
    <>
      <PageHeader
        title="Runs"
        subtitle="Every run is kept with its model, hyperparameters, metrics and results."
        actions={
          <>
            <Badge tone={mayChange ? "good" : "neutral"}>{mayChange ? "You can make changes" : "Read only"}</Badge>
            <StartButton onClick={() => navigate(`${base}/runs/new`)}>+ New run</StartButton>
          </>
        }
      />
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
          <span className="muted small">{selected.length ? `${selected.length} ticked` : "Tick 2 to 4 runs to compare them."}</span>
          {selected.length > 0 && (
            <button type="button" className="btn btn-link btn-sm" onClick={() => setSelected([])}>
              Clear
            </button>
          )}
          <button
            type="button"
            className="btn btn-secondary btn-sm"
            disabled={!canCompare}
            onClick={() => navigate(`${base}/runs/compare?ids=${selected.map(encodeURIComponent).join(",")}`)}
          >
            Compare
          </button>
          <button type="button" className="btn btn-secondary btn-sm" onClick={reload}>
            Refresh
          </button>
        </div>
        {runs.error && (
          <Notice tone="error" title="Could not load the runs">
            {runs.error}
          </Notice>
        )}
        {!runs.page && runs.loading && <Spinner label="Loading runs…" />}
        {runs.page && (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Runs">
                <thead>
                  <tr>
                    <th aria-label="Compare" />
                    <th>Run</th>
                    <th>State</th>
                    <th>Progress</th>
                    <th>Model</th>
                    <th>Version</th>
                    <th>Key metric</th>
                    <th>Created</th>
                  </tr>
                </thead>
                <tbody>
                  {runs.page.items.length === 0 && (
                    <tr>
                      <td colSpan={8} className="table-empty">
                        {task ? "No runs of this analysis yet." : "No runs yet. Start one on a dataset."}
                      </td>
                    </tr>
                  )}
                  {runs.page.items.map((r) => {
                    const href = `${base}/runs/${encodeURIComponent(r.id)}`;
                    return (
                      <tr
                        key={r.id}
                        data-run={r.id}
                        data-task={r.task}
                        className="row-link"
                        onClick={(e) => {
                          if ((e.target as HTMLElement).closest("a, button, input, label")) return;
                          navigate(href);
                        }}
                      >
                        <td>
                          <input
                            type="checkbox"
                            aria-label={`Compare run ${r.id.slice(0, 8)}`}
                            checked={selected.includes(r.id)}
                            onChange={(e) => toggle(r.id, e.target.checked)}
                          />
                        </td>
                        <td>
                          <Link className="cell-primary" to={href}>
                            {TASK_LABELS[r.task] ?? r.task}
                          </Link>
                          <div className="cell-secondary">
                            {MODE_LABELS[r.mode] ?? r.mode}
                            {typeof r.spec?.target === "string" && r.spec.target ? ` · ${r.spec.target}` : ""}
                          </div>
                        </td>
                        <td>
                          <RunStateBadge state={r.state} />
                        </td>
                        <td className="analytics-progress-cell">
                          {RUN_ACTIVE.has(r.state) ? (
                            <div className="rule-progress-bar" role="progressbar" aria-label={`Progress of run ${r.id.slice(0, 8)}`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={r.progress}>
                              <span style={{ width: `${Math.max(2, r.progress)}%` }} />
                            </div>
                          ) : (
                            <span className="muted small">{r.state === "succeeded" ? "100%" : `${r.progress}%`}</span>
                          )}
                        </td>
                        <td>{r.model_name ? modelTitle(r.task, r.model_name) : <span className="muted">{RUN_ACTIVE.has(r.state) ? "choosing…" : "—"}</span>}</td>
                        <td className="nowrap">
                          {r.model_version !== null && r.model_version !== undefined ? (
                            <span>
                              <span className="mono">{r.registry_name}</span> v{r.model_version}
                            </span>
                          ) : (
                            "—"
                          )}
                        </td>
                        <td className="nowrap" data-testid="key-metric">
                          {r.state === "succeeded" ? keyMetric(r) : "—"}
                        </td>
                        <td className="nowrap">{formatDateTime(r.created_at, timeZone)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
            <Pagination total={runs.page.total} limit={runs.limit} offset={runs.offset} onChange={runs.setOffset} noun="runs" />
          </>
        )}
      </section>
    </>
  );
}
