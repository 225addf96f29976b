// "/f/:slug/analytics/runs/compare?ids=a,b": 2 to 4 runs side by side, one column per run and one
// row per metric; for the usual error and fit metrics, the best value of the row is marked.
import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { beatsNaivePct, formatMetric, getRun, metricLabel, metricValue, MODE_LABELS, TASK_LABELS, type Run } from "../../../api/analytics";
import { describeError } from "../../../api/errors";
import { Card, Notice, PageHeader, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { RunStateBadge, useBase, useModelTitle, useTimeZone } from "./common";

const LOWER_IS_BETTER = new Set(["mae", "mape", "rmse", "mae_seasonal_naive"]);
const HIGHER_IS_BETTER = new Set(["r2", "precision", "recall", "silhouette", "savings_kwh", "savings_pct"]);

export function RunCompare() {
  const [search] = useSearchParams();
  const base = useBase();
  const timeZone = useTimeZone();
  const ids = (search.get("ids") ?? "").split(",").filter(Boolean).slice(0, 4);
  const key = ids.join(",");
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const modelTitle = useModelTitle();

  useEffect(() => {
    let cancelled = false;
    setRuns(null);
    setError(null);
    Promise.all(key.split(",").filter(Boolean).map(getRun))
      .then((found) => !cancelled && setRuns(found))
      .catch((err: unknown) => !cancelled && setError(describeError(err)));
    return () => {
      cancelled = true;
    };
  }, [key]);

  const header = (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to={`${base}/runs`}>Runs</Link> <span aria-hidden="true">/</span> <span>Compare</span>
      </nav>
      <PageHeader title="Compare runs" subtitle="Metrics of the chosen runs side by side." />
    </>
  );
  if (ids.length < 2) {
    return (
      <>
        {header}
        <Notice tone="info" title="Choose 2 to 4 runs">
          Tick them in <Link to={`${base}/runs`}>the list of runs</Link>, then press Compare.
        </Notice>
      </>
    );
  }
  if (error) {
    return (
      <>
        {header}
        <Notice tone="error" title="Could not load the runs">
          {error}
        </Notice>
      </>
    );
  }
  if (!runs) return <Spinner label="Loading the runs…" />;

  const metricKeys: string[] = [];
  for (const r of runs) for (const k of Object.keys(r.metrics ?? {})) if (!metricKeys.includes(k)) metricKeys.push(k);
  const bestOf = (k: string): number | null => {
    const lower = LOWER_IS_BETTER.has(k.toLowerCase());
    const higher = HIGHER_IS_BETTER.has(k.toLowerCase());
    if (!lower && !higher) return null;
    const values = runs.map((r) => metricValue(r.metrics, k)).filter((v): v is number => v !== null);
    if (values.length < 2) return null;
    return lower ? Math.min(...values) : Math.max(...values);
  };
  // The ML's own improvement figure, when present, says the same as the computed one.
  const anyBeats = !metricKeys.includes("improvement_vs_seasonal_naive_pct") && runs.some((r) => beatsNaivePct(r.metrics) !== null);

  return (
    <>
      {header}
      <Card>
        <div className="table-wrap">
          <table className="table analytics-compare" aria-label="Run comparison">
            <thead>
              <tr>
                <th />
                {runs.map((r) => (
                  <th key={r.id} data-run={r.id}>
                    <Link to={`${base}/runs/${encodeURIComponent(r.id)}`}>{TASK_LABELS[r.task] ?? r.task}</Link>
                    <div className="cell-secondary">{formatDateTime(r.created_at, timeZone)}</div>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              <tr>
                <th scope="row">State</th>
                {runs.map((r) => (
                  <td key={r.id}>
                    <RunStateBadge state={r.state} />
                  </td>
                ))}
              </tr>
              <tr>
                <th scope="row">Mode</th>
                {runs.map((r) => (
                  <td key={r.id}>{MODE_LABELS[r.mode] ?? r.mode}</td>
                ))}
              </tr>
              <tr>
                <th scope="row">Model</th>
                {runs.map((r) => (
                  <td key={r.id}>{r.model_name ? modelTitle(r.task, r.model_name) : "—"}</td>
                ))}
              </tr>
              <tr>
                <th scope="row">Version</th>
                {runs.map((r) => (
                  <td key={r.id}>{r.model_version !== null && r.model_version !== undefined ? `${r.registry_name} v${r.model_version}` : "—"}</td>
                ))}
              </tr>
              <tr>
                <th scope="row">Target</th>
                {runs.map((r) => (
                  <td key={r.id} className="mono">
                    {typeof r.spec?.target === "string" && r.spec.target ? r.spec.target : "—"}
                  </td>
                ))}
              </tr>
              <tr>
                <th scope="row">Dataset</th>
                {runs.map((r) => (
                  <td key={r.id}>
                    <Link to={`${base}/datasets/${encodeURIComponent(r.dataset_id)}`} className="mono small">
                      {r.dataset_id.slice(0, 8)}
                    </Link>
                  </td>
                ))}
              </tr>
              {metricKeys.map((k) => {
                const best = bestOf(k);
                return (
                  <tr key={k} data-metric={k}>
                    <th scope="row">{metricLabel(k)}</th>
                    {runs.map((r) => {
                      const v = metricValue(r.metrics, k);
                      return (
                        <td key={r.id} className={`num${best !== null && v === best ? " analytics-best-cell" : ""}`}>
                          {k in (r.metrics ?? {}) ? formatMetric(k, r.metrics[k]) : "—"}
                        </td>
                      );
                    })}
                  </tr>
                );
              })}
              {anyBeats && (
                <tr data-metric="beats_naive">
                  <th scope="row">Beats seasonal naive by</th>
                  {runs.map((r) => {
                    const b = beatsNaivePct(r.metrics);
                    return (
                      <td key={r.id} className="num">
                        {b === null ? "—" : formatMetric("x_pct", b)}
                      </td>
                    );
                  })}
                </tr>
              )}
            </tbody>
          </table>
        </div>
        {metricKeys.length === 0 && <p className="muted">None of these runs has metrics yet.</p>}
      </Card>
    </>
  );
}
