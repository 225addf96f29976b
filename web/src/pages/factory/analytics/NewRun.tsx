// "/f/:slug/analytics/runs/new": start a run on a dataset. Standard mode: the person picks the
// analysis and the model, and may set its hyperparameters (inputs drawn from the catalogue's
// type, range and choices). AI co-pilot: the person gives the analysis, the target and a time
// budget; the co-pilot chooses features and model itself.
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { createRun, getCatalogue, TASKS, type ModelInfo, type ParamInfo, type RunCreate, type Task } from "../../../api/analytics";
import { ApiError, formProblems } from "../../../api/errors";
import { Badge, Card, Field, Notice, PageHeader, Spinner } from "../../../components/ui";
import { fromLocalInput } from "../../../lib/telemetryFormat";
import { datasetOption, useAnalytics, useBase, useReadyDatasets, useTimeZone } from "./common";

type Mode = "standard" | "copilot";

/** Where the API's refusals (by code) belong in the form. */
const CODE_FIELDS: Record<string, string> = {
  invalid_task: "task",
  invalid_model: "model",
  invalid_params: "params",
  target_required: "target",
  unknown_target: "target",
  unknown_features: "features",
  dataset_not_ready: "dataset_id",
  not_found: "dataset_id",
};

/** The text of a choice for a select's value (choices may be strings, numbers or booleans). */
function choiceText(value: unknown): string {
  if (value === true) return "yes";
  if (value === false) return "no";
  if (value === null || value === undefined) return "none";
  return String(value);
}

function paramProblem(p: ParamInfo, text: string): string | null {
  if (p.type !== "int" && p.type !== "float") return null;
  if (text.trim() === "") return null;
  const n = Number(text);
  if (!Number.isFinite(n)) return "Enter a number.";
  if (p.type === "int" && !Number.isInteger(n)) return "Enter a whole number.";
  if (p.low !== null && p.low !== undefined && n < p.low) return `At least ${p.low}.`;
  if (p.high !== null && p.high !== undefined && n > p.high) return `At most ${p.high}.`;
  return null;
}

function ParamInput({ param, value, onChange, error }: { param: ParamInfo; value: string; onChange: (v: string) => void; error?: string }) {
  const range =
    param.low !== null && param.low !== undefined && param.high !== null && param.high !== undefined ? `${param.low} to ${param.high}` : "";
  const hint = [param.help, range && `Range ${range}.`, `Default: ${choiceText(param.default)}.`].filter(Boolean).join(" ");
  return (
    <Field label={param.name} error={error} hint={hint}>
      {(p) =>
        param.type === "choice" && param.choices?.length ? (
          <select {...p} name={`param-${param.name}`} value={value} onChange={(e) => onChange(e.target.value)}>
            {param.choices.map((c, i) => (
              <option key={i} value={String(i)}>
                {choiceText(c)}
              </option>
            ))}
          </select>
        ) : param.type === "int" || param.type === "float" ? (
          <input
            {...p}
            type="number"
            name={`param-${param.name}`}
            step={param.type === "int" ? 1 : "any"}
            min={param.low ?? undefined}
            max={param.high ?? undefined}
            placeholder={param.default === null || param.default === undefined ? "automatic" : String(param.default)}
            value={value}
            onChange={(e) => onChange(e.target.value)}
          />
        ) : (
          <input {...p} name={`param-${param.name}`} value={value} onChange={(e) => onChange(e.target.value)} />
        )
      }
    </Field>
  );
}

/** The form's text for a parameter's default: the index of a choice, the number, or empty. */
function initialParam(p: ParamInfo): string {
  if (p.type === "choice" && p.choices?.length) {
    const i = p.choices.findIndex((c) => c === p.default);
    return String(Math.max(0, i));
  }
  return p.default === null || p.default === undefined ? "" : String(p.default);
}

export function NewRun() {
  const navigate = useNavigate();
  const base = useBase();
  const timeZone = useTimeZone();
  const [search] = useSearchParams();
  const { mayChange, blocked, refresh } = useAnalytics();
  const { datasets, error: datasetsError } = useReadyDatasets();
  const [catalogue, setCatalogue] = useState<ModelInfo[] | null>(null);
  const [catalogueError, setCatalogueError] = useState<string | null>(null);

  const [datasetId, setDatasetId] = useState(search.get("dataset") ?? "");
  const [mode, setMode] = useState<Mode>("standard");
  const [task, setTask] = useState<Task>("anomaly");
  const [model, setModel] = useState("");
  const [params, setParams] = useState<Record<string, string>>({});
  const [target, setTarget] = useState("");
  const [features, setFeatures] = useState<string[]>([]);
  const [horizon, setHorizon] = useState("");
  const [savingsFrom, setSavingsFrom] = useState("");
  const [budget, setBudget] = useState("300");
  const [name, setName] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    getCatalogue()
      .then(setCatalogue)
      .catch((err: unknown) => setCatalogueError(err instanceof Error ? err.message : "Could not load the models."));
  }, []);

  const dataset = datasets?.find((d) => d.id === datasetId) ?? null;
  useEffect(() => {
    if (!datasetId && datasets?.length) setDatasetId(datasets[0]!.id);
  }, [datasets, datasetId]);
  const columns = useMemo(() => dataset?.columns ?? [], [dataset]);

  // The target must be a column of the chosen dataset.
  useEffect(() => {
    if (target && !columns.includes(target)) setTarget("");
    setFeatures((f) => f.filter((c) => columns.includes(c)));
  }, [columns, target]);

  const models = useMemo(() => (catalogue ?? []).filter((m) => m.task === task), [catalogue, task]);
  const info = models.find((m) => m.name === model) ?? null;
  useEffect(() => {
    if (models.length && !models.some((m) => m.name === model)) setModel(models[0]!.name);
  }, [models, model]);
  useEffect(() => {
    setParams(Object.fromEntries((info?.params ?? []).map((p) => [p.name, initialParam(p)])));
  }, [info]);

  const needsTarget = task === "forecast" || task === "baseline";

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!datasetId) problems.dataset_id = "Choose a dataset.";
    if (needsTarget && !target) problems.target = `A ${task === "forecast" ? "forecast" : "baseline"} needs a target column.`;
    if (mode === "standard" && !model) problems.model = "Choose a model.";
    const body: RunCreate = { dataset_id: datasetId, mode, task, name: name.trim(), budget_seconds: 300, params: {} };
    if (target) body.target = target;
    if (mode === "standard") {
      body.model = model;
      const values: Record<string, unknown> = {};
      for (const p of info?.params ?? []) {
        const text = params[p.name] ?? "";
        if (p.type === "choice" && p.choices?.length) {
          values[p.name] = p.choices[Number(text)] ?? p.default;
          continue;
        }
        const bad = paramProblem(p, text);
        if (bad) problems[`param-${p.name}`] = bad;
        else if (text.trim() !== "") values[p.name] = p.type === "int" || p.type === "float" ? Number(text) : text;
      }
      body.params = values;
    } else {
      const seconds = Number(budget);
      if (!Number.isFinite(seconds) || seconds < 10 || seconds > 3600) problems.budget_seconds = "Give 10 to 3,600 seconds.";
      else body.budget_seconds = seconds;
    }
    if (task === "baseline" && features.length) body.features = features;
    if (task === "forecast" && horizon.trim()) {
      const h = Number(horizon);
      if (!Number.isInteger(h) || h < 1) problems.horizon = "Give a whole number of steps, 1 or more.";
      else body.horizon = h;
    }
    if (task === "baseline" && savingsFrom) {
      const t = fromLocalInput(savingsFrom, timeZone);
      if (Number.isNaN(t)) problems.savings_from = "Enter a valid date and time.";
      else body.savings_from = new Date(t).toISOString();
    }
    setErrors(problems);
    if (Object.keys(problems).length) {
      setFormError("Some fields need attention; see the messages below.");
      return;
    }
    setFormError(null);
    setBusy(true);
    try {
      const run = await createRun(body);
      navigate(`${base}/runs/${encodeURIComponent(run.id)}`);
    } catch (err) {
      const { fields, message } = formProblems(err);
      if (err instanceof ApiError) {
        const field = CODE_FIELDS[err.code];
        if (field && !fields[field]) fields[field] = err.message;
        if (err.code === "object_store_unavailable") refresh();
      }
      setErrors(fields);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  if (!mayChange) {
    return (
      <>
        <PageHeader title="New run" actions={<Badge tone="neutral">Read only</Badge>} />
        <Notice tone="info" title="Starting runs needs the analytics permission">
          Ask a super admin of the factory to grant it. <Link to={`${base}/runs`}>Back to the runs</Link>
        </Notice>
      </>
    );
  }

  const taskHelp = TASKS.find((t) => t.value === task)?.help;

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to={`${base}/runs`}>Runs</Link> <span aria-hidden="true">/</span> <span>New run</span>
      </nav>
      <PageHeader title="New run" subtitle="A model fitted to a dataset; every run and the model version it saves are kept." />
      <form onSubmit={onSubmit} noValidate aria-label="New run" className="analytics-form">
        {formError && (
          <Notice tone="error" title="The run was not started" onClose={() => setFormError(null)}>
            {formError}
          </Notice>
        )}
        {(datasetsError || catalogueError) && <Notice tone="error">{datasetsError ?? catalogueError}</Notice>}
        <Card title="Data and analysis">
          <div className="form-grid">
            <Field label="Dataset" error={errors.dataset_id}>
              {(p) =>
                datasets ? (
                  <select {...p} name="dataset" value={datasetId} onChange={(e) => setDatasetId(e.target.value)}>
                    {datasets.length === 0 && <option value="">No ready dataset yet</option>}
                    {datasets.map((d) => (
                      <option key={d.id} value={d.id}>
                        {datasetOption(d, timeZone)}
                      </option>
                    ))}
                  </select>
                ) : (
                  <Spinner label="Loading datasets…" />
                )
              }
            </Field>
            <Field label="Registry name" error={errors.name} hint={`The model's name in the registry; default ${task}-${target || "all"}.`}>
              {(p) => <input {...p} name="registry-name" autoComplete="off" placeholder={`${task}-${target || "all"}`} value={name} onChange={(e) => setName(e.target.value)} />}
            </Field>
          </div>
          <div className="analytics-choice-row">
            <div className="field">
              <span className="analytics-label" id="run-mode-label">
                Mode
              </span>
              <div className="segmented" role="group" aria-labelledby="run-mode-label">
                {(["standard", "copilot"] as Mode[]).map((m) => (
                  <button key={m} type="button" className={mode === m ? "active" : ""} aria-pressed={mode === m} onClick={() => setMode(m)}>
                    {m === "standard" ? "Standard" : "AI co-pilot"}
                  </button>
                ))}
              </div>
            </div>
            <div className="field">
              <span className="analytics-label" id="run-task-label">
                Analysis
              </span>
              <div className="segmented" role="group" aria-labelledby="run-task-label">
                {TASKS.map((t) => (
                  <button key={t.value} type="button" className={task === t.value ? "active" : ""} aria-pressed={task === t.value} onClick={() => setTask(t.value)}>
                    {t.label}
                  </button>
                ))}
              </div>
              {errors.task ? <p className="field-error">{errors.task}</p> : <p className="field-hint">{taskHelp}</p>}
            </div>
          </div>
          <div className="form-grid">
            <Field
              label="Target column"
              error={errors.target}
              hint={needsTarget ? "The series to forecast or explain." : task === "anomaly" ? "The series to scan; all columns when left on “all”." : "The load series to profile."}
            >
              {(p) => (
                <select {...p} name="target" value={target} onChange={(e) => setTarget(e.target.value)}>
                  <option value="">{needsTarget ? "Choose a column…" : task === "anomaly" ? "All columns" : "Automatic"}</option>
                  {columns.map((c) => (
                    <option key={c} value={c}>
                      {c}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            {task === "forecast" && (
              <Field label="Horizon (steps ahead)" error={errors.horizon} hint="Empty: one day of the dataset's steps.">
                {(p) => <input {...p} type="number" min={1} step={1} name="horizon" placeholder="one day" value={horizon} onChange={(e) => setHorizon(e.target.value)} />}
              </Field>
            )}
            {task === "baseline" && (
              <Field label="Measure savings from" error={errors.savings_from} hint={`Fit before, measure after; empty: the last 25 % of the data.${timeZone ? ` In ${timeZone}.` : ""}`}>
                {(p) => <input {...p} type="datetime-local" name="savings_from" value={savingsFrom} onChange={(e) => setSavingsFrom(e.target.value)} />}
              </Field>
            )}
            {mode === "copilot" && (
              <Field label="Time budget (seconds)" error={errors.budget_seconds} hint="How long the co-pilot may search; it stops cleanly at the budget.">
                {(p) => <input {...p} type="number" min={10} max={3600} step={1} name="budget" value={budget} onChange={(e) => setBudget(e.target.value)} />}
              </Field>
            )}
          </div>
          {task === "baseline" && (
            <fieldset className={`analytics-props field${errors.features ? " field-invalid" : ""}`} aria-label="Features">
              <legend>Features (drivers)</legend>
              <div className="checkbox-grid">
                {columns
                  .filter((c) => c !== target)
                  .map((c) => (
                    <label key={c} className="checkbox">
                      <input type="checkbox" checked={features.includes(c)} onChange={(e) => setFeatures((f) => (e.target.checked ? [...f, c] : f.filter((x) => x !== c)))} />
                      <span className="mono">{c}</span>
                    </label>
                  ))}
              </div>
              {errors.features ? <p className="field-error">{errors.features}</p> : <p className="field-hint">None ticked: every other column.</p>}
            </fieldset>
          )}
        </Card>
        {mode === "standard" ? (
          <Card title="Model">
            {!catalogue && !catalogueError && <Spinner label="Loading the models…" />}
            {catalogue && (
              <>
                <Field label="Model" error={errors.model}>
                  {(p) => (
                    <select {...p} name="model" value={model} onChange={(e) => setModel(e.target.value)}>
                      {models.map((m) => (
                        <option key={m.name} value={m.name}>
                          {m.title}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
                {info && <p className="muted small">{info.description}</p>}
                {errors.params && <p className="field-error">{errors.params}</p>}
                {info && info.params.length > 0 && (
                  <div className="form-grid analytics-params" role="group" aria-label="Hyperparameters">
                    {info.params.map((p) => (
                      <ParamInput
                        key={p.name}
                        param={p}
                        value={params[p.name] ?? ""}
                        error={errors[`param-${p.name}`] ?? errors[`params.${p.name}`]}
                        onChange={(v) => setParams((cur) => ({ ...cur, [p.name]: v }))}
                      />
                    ))}
                  </div>
                )}
              </>
            )}
          </Card>
        ) : (
          <Card title="AI co-pilot">
            <p className="muted">
              The co-pilot keeps or drops each column with a reason, tries several model families, tunes them within the time budget by
              time-aware cross-validation, and keeps the best. The run shows its leaderboard and a summary in plain words.
            </p>
          </Card>
        )}
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy || Boolean(blocked)} title={blocked ?? undefined}>
            {busy ? "Starting…" : "Start run"}
          </button>
          <Link className="btn btn-secondary" to={`${base}/runs`}>
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
