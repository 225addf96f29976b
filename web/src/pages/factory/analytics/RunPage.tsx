// "/f/:slug/analytics/runs/:runId": one run, live. While queued or running the page follows it
// every second (state, progress 0-100 and the job's message); once finished it shows the metrics,
// the summary in words, the charts, the co-pilot's leaderboard and feature reasons, warnings, and
// the actions: retry, cancel, download the predictions, score a newer dataset with the saved model.
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import {
  beatsNaivePct,
  cancelRun,
  downloadPredictions,
  formatMetric,
  getRun,
  getRunCharts,
  metricLabel,
  metricValue,
  MODE_LABELS,
  readCharts,
  retryRun,
  RUN_ACTIVE,
  TASK_LABELS,
  versionOfRun,
  type ChartData,
  type ModelVersion,
  type Run,
} from "../../../api/analytics";
import { ApiError, describeError } from "../../../api/errors";
import { AnalyticsProfileChart, AnalyticsTimeseriesChart } from "../../../components/AnalyticsChart";
import { Badge, Card, Notice, PageHeader, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { ProgressBar, RunStateBadge, ScoreDialog, useAnalytics, useBase, useModelTitle, useTimeZone } from "./common";

const POLL_MS = 1000;

/** Metrics shown as cards, in this order, when the run has them. */
const CARD_METRICS = ["mae", "MAE", "mape", "MAPE", "r2", "R2", "n_anomalies", "n_windows", "precision", "recall", "silhouette", "n_clusters", "savings_kwh", "savings_pct"];

function chartTitle(chart: ChartData, task: string): string {
  if (chart.title) return chart.title.replace(/_/g, " ");
  if (chart.kind === "profiles") return "Load profiles: the typical day of each type";
  switch (task) {
    case "forecast":
      return "Forecast against actual, with its interval";
    case "anomaly":
      return "Anomalies marked on the series";
    case "baseline":
      return "Baseline: predicted against actual";
    default:
      return "Chart";
  }
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return formatMetric("", value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    return entries.length ? entries.map(([k, v]) => `${k}=${typeof v === "number" ? formatMetric("", v) : JSON.stringify(v)}`).join(", ") : "—";
  }
  return String(value);
}

function Leaderboard({ rows, title }: { rows: Record<string, unknown>[]; title: (name: string) => string }) {
  const preferred = ["rank", "model", "title"];
  const keys: string[] = [];
  for (const row of rows) for (const k of Object.keys(row)) if (!keys.includes(k)) keys.push(k);
  const ordered = [...preferred.filter((k) => keys.includes(k)), ...keys.filter((k) => !preferred.includes(k) && k !== "params"), ...(keys.includes("params") ? ["params"] : [])];
  const sorted = [...rows].sort((a, b) => (Number(a.rank ?? 1e9) || 1e9) - (Number(b.rank ?? 1e9) || 1e9));
  return (
    <div className="table-wrap">
      <table className="table table-compact" aria-label="Leaderboard">
        <thead>
          <tr>
            {ordered.map((k) => (
              <th key={k} className={k === "params" || k === "model" || k === "title" ? "" : "num"}>
                {k === "rank" ? "#" : metricLabel(k)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {sorted.map((row, i) => (
            <tr key={i} className={Number(row.rank) === 1 ? "analytics-best" : ""} data-model={String(row.model ?? "")}>
              {ordered.map((k) => (
                <td key={k} className={k === "params" ? "small mono analytics-params-cell" : k === "model" || k === "title" ? "" : "num"}>
                  {k === "model" && typeof row[k] === "string" ? title(row[k]) : cell(row[k])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function FeatureReport({ rows }: { rows: Record<string, unknown>[] }) {
  return (
    <div className="table-wrap">
      <table className="table table-compact" aria-label="Feature report">
        <thead>
          <tr>
            <th>Feature</th>
            <th>Decision</th>
            <th>Reason</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i} data-feature={String(row.name ?? "")}>
              <td className="mono">{String(row.name ?? "—")}</td>
              <td>{row.kept ? <Badge tone="good">Kept</Badge> : <Badge tone="neutral">Dropped</Badge>}</td>
              <td>{String(row.reason ?? "")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function MetricCards({ run }: { run: Run }) {
  const metrics = run.metrics ?? {};
  const shown = CARD_METRICS.filter((k) => metricValue(metrics, k) !== null);
  const beats = beatsNaivePct(metrics);
  const rest = Object.keys(metrics).filter(
    (k) => !shown.includes(k) && !(beats !== null && (k === "mae_seasonal_naive" || k === "improvement_vs_seasonal_naive_pct")),
  );
  if (!shown.length && beats === null && !rest.length) return null;
  return (
    <>
      <div className="import-counts analytics-metrics" data-testid="run-metrics">
        {shown.map((k) => (
          <div key={k} className="stat" data-metric={k}>
            <span className="stat-value">{formatMetric(k, metrics[k])}</span>
            <span className="stat-label">{metricLabel(k)}</span>
          </div>
        ))}
        {beats !== null && (
          <div className={`stat ${beats > 0 ? "stat-good" : "stat-bad"}`} data-metric="beats_naive">
            <span className="stat-value">{formatMetric("x_pct", Math.abs(beats))}</span>
            <span className="stat-label" data-testid="beats-naive">
              {beats > 0 ? `beats seasonal naive by ${formatMetric("x_pct", beats)}` : `worse than seasonal naive by ${formatMetric("x_pct", -beats)}`}
              {` (its MAE ${formatMetric("mae", metricValue(metrics, "mae_seasonal_naive"))})`}
            </span>
          </div>
        )}
      </div>
      {rest.length > 0 && (
        <dl className="analytics-kv" aria-label="More metrics">
          {rest.map((k) => (
            <div key={k} className="analytics-fact">
              <dt>{metricLabel(k)}</dt>
              <dd>{formatMetric(k, metrics[k])}</dd>
            </div>
          ))}
        </dl>
      )}
    </>
  );
}

/** The baseline's savings in the report period: measured against what the baseline expected. */
function Savings({ savings }: { savings: Record<string, unknown> }) {
  const unit = typeof savings.unit === "string" ? savings.unit : "";
  const withUnit = (v: unknown) => `${formatMetric("", v)}${unit ? ` ${unit}` : ""}`;
  const rows: [string, string][] = [];
  if (metricValue(savings, "total") !== null) rows.push(["Savings in the report period", withUnit(savings.total)]);
  if (metricValue(savings, "pct") !== null) rows.push(["Savings, share of expected", formatMetric("savings_pct", savings.pct)]);
  if (metricValue(savings, "expected") !== null) rows.push(["Expected by the baseline", withUnit(savings.expected)]);
  if (metricValue(savings, "actual") !== null) rows.push(["Actually used", withUnit(savings.actual)]);
  if (!rows.length) return null;
  return (
    <dl className="facts analytics-savings" data-testid="baseline-savings">
      {rows.map(([k, v]) => (
        <div key={k} className="analytics-fact">
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function RunPage() {
  const { runId = "" } = useParams();
  const base = useBase();
  const timeZone = useTimeZone();
  const { mayChange, blocked, refresh } = useAnalytics();
  const [run, setRun] = useState<Run | null>(null);
  const [loadError, setLoadError] = useState<{ status: number; message: string } | null>(null);
  const [pollTick, setPollTick] = useState(0);
  const [charts, setCharts] = useState<ChartData[] | null>(null);
  const [chartsError, setChartsError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [acting, setActing] = useState<"retry" | "cancel" | "download" | "score" | null>(null);
  const [scoring, setScoring] = useState<ModelVersion | null>(null);
  const modelTitle = useModelTitle();

  // Follow the run every second while it is queued or running.
  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const poll = async () => {
      try {
        const next = await getRun(runId);
        if (stopped) return;
        setRun(next);
        setLoadError(null);
        if (!RUN_ACTIVE.has(next.state)) return;
      } catch (err) {
        if (stopped) return;
        setLoadError({ status: err instanceof ApiError ? err.status : 0, message: describeError(err) });
        if (err instanceof ApiError && err.status === 404) return;
      }
      timer = window.setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [runId, pollTick]);

  const succeeded = run?.state === "succeeded";
  const hasCharts = Boolean(run?.artifacts.includes("charts"));
  useEffect(() => {
    setCharts(null);
    setChartsError(null);
    if (!succeeded || !hasCharts) return;
    let cancelled = false;
    getRunCharts(runId)
      .then((payload) => !cancelled && setCharts(readCharts(payload)))
      .catch((err: unknown) => !cancelled && setChartsError(describeError(err)));
    return () => {
      cancelled = true;
    };
  }, [runId, succeeded, hasCharts]);

  const act = async (kind: "retry" | "cancel" | "download" | "score") => {
    if (!run) return;
    setActing(kind);
    setActionError(null);
    try {
      if (kind === "retry") {
        setRun(await retryRun(run.id));
        setPollTick((t) => t + 1);
      } else if (kind === "cancel") {
        setRun(await cancelRun(run.id));
        setPollTick((t) => t + 1);
      } else if (kind === "download") {
        await downloadPredictions(run);
      } else {
        const version = await versionOfRun(run);
        if (!version) throw new Error("The model version of this run was not found in the registry.");
        setScoring(version);
      }
    } catch (err) {
      if (err instanceof ApiError && err.code === "object_store_unavailable") refresh();
      setActionError(describeError(err));
    } finally {
      setActing(null);
    }
  };

  if (loadError && !run) {
    return (
      <>
        <PageHeader title="Run" />
        <Notice tone="error" title={loadError.status === 404 ? "No such run" : "Could not load the run"}>
          {loadError.message} <Link to={`${base}/runs`}>Back to the runs</Link>
        </Notice>
      </>
    );
  }
  if (!run) return <Spinner label="Loading the run…" />;

  const active = RUN_ACTIVE.has(run.state);
  const retryable = run.state === "failed" || run.state === "cancelled";
  const modelText = run.model_name ? modelTitle(run.task, run.model_name) : run.mode === "copilot" ? "model chosen by the co-pilot" : "—";
  const title = `${TASK_LABELS[run.task] ?? run.task} · ${modelText}`;

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to={`${base}/runs`}>Runs</Link> <span aria-hidden="true">/</span> <span>{title}</span>
      </nav>
      <PageHeader
        title={title}
        subtitle={
          <>
            {MODE_LABELS[run.mode] ?? run.mode} run on <Link to={`${base}/datasets/${encodeURIComponent(run.dataset_id)}`}>its dataset</Link>
            {run.spec && typeof run.spec.target === "string" && run.spec.target ? (
              <>
                {" "}
                · target <span className="mono">{run.spec.target}</span>
              </>
            ) : null}
            {" · "}started {formatDateTime(run.started_at ?? run.created_at, timeZone)} by {run.created_by || "—"}
            {run.model_version !== null && run.model_version !== undefined && (
              <>
                {" · "}
                {run.mode === "scoring" ? "applied" : "saved as"} <span className="mono">{run.registry_name}</span> v{run.model_version}
              </>
            )}
          </>
        }
        actions={<RunStateBadge state={run.state} />}
      />
      {actionError && (
        <Notice tone="error" title="That did not work" onClose={() => setActionError(null)}>
          {actionError}
        </Notice>
      )}
      {mayChange && (
        <div className="analytics-actions" role="group" aria-label="Run actions">
          {retryable && (
            <button type="button" className="btn btn-primary" disabled={acting !== null || Boolean(blocked)} title={blocked ?? undefined} onClick={() => void act("retry")}>
              {acting === "retry" ? "Retrying…" : "Retry"}
            </button>
          )}
          {active && (
            <button type="button" className="btn btn-danger-outline" disabled={acting !== null} onClick={() => void act("cancel")}>
              {acting === "cancel" ? "Cancelling…" : "Cancel"}
            </button>
          )}
          {succeeded && run.model_version !== null && run.model_version !== undefined && run.mode !== "scoring" && (
            <button type="button" className="btn btn-secondary" disabled={acting !== null || Boolean(blocked)} title={blocked ?? undefined} onClick={() => void act("score")}>
              {acting === "score" ? "Finding the model…" : "Score a newer dataset"}
            </button>
          )}
        </div>
      )}
      {active && (
        <Card title={run.state === "queued" ? "Waiting for a worker" : "Running"}>
          <ProgressBar
            label="Run progress"
            progress={run.progress}
            message={run.message || (run.state === "queued" ? "Waiting for a worker…" : "Working…")}
          />
          {run.error && <p className="small muted">{run.error}</p>}
        </Card>
      )}
      {run.state === "failed" && (
        <Notice tone="error" title="The run failed">
          <span data-testid="run-error">{run.error || "The run failed without a message."}</span>
          {mayChange && " The dataset is kept; retry once the cause is fixed."}
        </Notice>
      )}
      {run.state === "cancelled" && <Notice tone="info" title="The run was cancelled" />}
      {succeeded && (
        <>
          <div className="analytics-result-head">
            <ProgressBar label="Run progress" progress={run.progress} message={`Finished ${formatDateTime(run.finished_at, timeZone)}`} />
            {run.artifacts.includes("predictions") && (
              <button type="button" className="btn btn-secondary" disabled={acting !== null} onClick={() => void act("download")}>
                {acting === "download" ? "Downloading…" : "Download predictions (CSV)"}
              </button>
            )}
          </div>
          <MetricCards run={run} />
          {run.summary && (
            <Card title="Summary">
              <p className="analytics-summary" data-testid="run-summary">
                {run.summary}
              </p>
            </Card>
          )}
          {run.warnings.length > 0 && (
            <Notice tone="warning" title="Warnings">
              <ul className="analytics-warnings">
                {run.warnings.map((w, i) => (
                  <li key={i}>{w}</li>
                ))}
              </ul>
            </Notice>
          )}
          {hasCharts && !charts && !chartsError && <Spinner label="Loading the charts…" />}
          {chartsError && <Notice tone="error" title="Could not load the charts">{chartsError}</Notice>}
          {charts && charts.length === 0 && <p className="muted">This run has no chart.</p>}
          {charts?.map((chart, i) => (
            <Card key={i} title={chartTitle(chart, run.task)} className="analytics-chart-card">
              {chart.kind === "timeseries" ? (
                <>
                  <AnalyticsTimeseriesChart data={chart} timeZone={timeZone} label={chartTitle(chart, run.task)} />
                  {chart.savings && <Savings savings={chart.savings} />}
                </>
              ) : (
                <AnalyticsProfileChart data={chart} />
              )}
            </Card>
          ))}
          {run.leaderboard.length > 0 && (
            <Card title="Co-pilot leaderboard">
              <Leaderboard rows={run.leaderboard} title={(name) => modelTitle(run.task, name)} />
            </Card>
          )}
          {run.feature_report.length > 0 && (
            <Card title="Features: kept and dropped">
              <FeatureReport rows={run.feature_report} />
            </Card>
          )}
          {Object.keys(run.hyperparameters ?? {}).length > 0 && (
            <Card title="Hyperparameters">
              <dl className="facts" aria-label="Hyperparameters">
                {Object.entries(run.hyperparameters).map(([k, v]) => (
                  <div key={k} className="analytics-fact">
                    <dt className="mono">{k}</dt>
                    <dd>{cell(v)}</dd>
                  </div>
                ))}
              </dl>
            </Card>
          )}
        </>
      )}
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
