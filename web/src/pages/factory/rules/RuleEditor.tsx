// "/f/:slug/rules/new" and "/f/:slug/rules/:ruleId": the rule builder. People with the rules
// permission create and change rules and backtest them; everyone else reads the rule.
import { useCallback, useEffect, useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, call } from "../../../api/client";
import type { Property } from "../../../api/devices";
import { ApiError, describeError, type FieldProblem } from "../../../api/errors";
import {
  createRule,
  DAY_NAMES,
  definitionWarnings,
  describeNode,
  describeSchedule,
  describeScope,
  getRule,
  SEVERITIES,
  updateRule,
  type Rule,
  type Scope,
} from "../../../api/rules";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Card, Field, Notice, PageHeader, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { BacktestPanel } from "./BacktestPanel";
import { GroupEditor } from "./ConditionTree";
import { DurationInput, ListInput } from "./inputs";
import { DevicePicker, UserPicker, useDeviceTypes } from "./pickers";
import { RuleWarnings } from "./RuleWarnings";
import { buildDefinition, buildRule, errorAt, formFromRule, newForm, newKey, placeName, placeProblems, type FormErrors, type RuleForm } from "./ruleForm";

const SCOPES: { kind: Scope["kind"]; label: string }[] = [
  { kind: "factory", label: "Whole factory" },
  { kind: "type", label: "Device type" },
  { kind: "device", label: "One device" },
  { kind: "devices", label: "List of devices" },
];


const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const E164_RE = /^\+[1-9]\d{6,14}$/;

export function RuleEditor() {
  const { slug = "", ruleId } = useParams();
  const isNew = !ruleId;
  const navigate = useNavigate();
  const { can, principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const mayChange = can("rules");
  const readOnly = !mayChange;

  const [rule, setRule] = useState<Rule | null>(null);
  const [loadError, setLoadError] = useState<{ status: number; message: string } | null>(null);
  const [form, setForm] = useState<RuleForm>(() => newForm());
  const [errors, setErrors] = useState<FormErrors>({});
  const [formError, setFormError] = useState<{ message: string; problems: string[] } | null>(null);
  const [busy, setBusy] = useState(false);
  const [showJson, setShowJson] = useState(false);
  const [properties, setProperties] = useState<Map<string, Property>>(new Map());
  const [propertiesComplete, setPropertiesComplete] = useState(false);
  const deviceTypes = useDeviceTypes(!readOnly && form.scopeKind === "type");

  useEffect(() => {
    if (isNew) {
      setRule(null);
      setForm(newForm());
      return;
    }
    let cancelled = false;
    getRule(ruleId)
      .then((r) => {
        if (cancelled) return;
        setRule(r);
        setForm(formFromRule(r));
      })
      .catch((err: unknown) => !cancelled && setLoadError({ status: err instanceof ApiError ? err.status : 0, message: describeError(err) }));
    return () => {
      cancelled = true;
    };
  }, [isNew, ruleId]);

  useEffect(() => {
    call(api.GET("/api/v1/properties", { params: { query: { limit: 200 } } }))
      .then((page) => {
        setProperties(new Map(page.items.map((p) => [p.name, p])));
        setPropertiesComplete(page.total <= page.items.length);
      })
      .catch(() => undefined);
  }, []);

  const set = useCallback((patch: Partial<RuleForm>) => setForm((f) => ({ ...f, ...patch })), []);
  const preview = useMemo(() => buildRule(form).body, [form]);
  // What the API will warn about when the rule is saved (the rule is valid all the same).
  const warnings = useMemo(() => definitionWarnings(preview.definition), [preview]);

  /** "Time window 1: start and end are equal…" for the list at the top of the form. */
  const problemText = (d: FieldProblem) => {
    const place = d.field ? placeName(d.field, form) : "";
    return place ? `${place}: ${d.message}` : d.message;
  };

  const showProblems = useCallback(
    (details: FieldProblem[], current: RuleForm) => {
      const { paths } = buildRule(current);
      setErrors(placeProblems(details, current, paths));
    },
    [],
  );

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    if (readOnly) return;
    setErrors({});
    setFormError(null);
    if (!form.name.trim()) {
      setErrors({ name: "Give the rule a name." });
      setFormError({ message: "Some fields need attention; see the messages below.", problems: [] });
      return;
    }
    setBusy(true);
    const { body } = buildRule(form);
    try {
      const saved = isNew ? await createRule(body) : await updateRule(ruleId, body);
      navigate(`/f/${slug}/rules`, {
        state: { flash: `Rule “${saved.name}” ${isNew ? "created" : `saved (version ${saved.version})`}.`, warnings: saved.warnings },
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) {
        showProblems(err.details, form);
        setFormError(
          err.code === "validation_error"
            ? { message: "Some fields need attention; see the messages next to them.", problems: err.details.map(problemText) }
            : { message: err.message, problems: [] },
        );
      } else {
        setFormError({ message: describeError(err), problems: [] });
      }
      window.scrollTo({ top: 0, behavior: "smooth" });
    } finally {
      setBusy(false);
    }
  };

  if (loadError) {
    return (
      <>
        <PageHeader title="Rule" />
        <Notice tone="error" title={loadError.status === 404 ? "No such rule" : "Could not load the rule"}>
          {loadError.message} <Link to={`/f/${slug}/rules`}>Back to the rules</Link>
        </Notice>
      </>
    );
  }
  if (!isNew && !rule) return <Spinner label="Loading the rule…" />;
  if (isNew && readOnly) {
    return (
      <>
        <PageHeader title="New rule" actions={<Badge tone="neutral">Read only</Badge>} />
        <Notice tone="info" title="Creating rules needs the rules permission">
          Ask a super admin of the factory to grant it. <Link to={`/f/${slug}/rules`}>Back to the rules</Link>
        </Notice>
      </>
    );
  }

  const title = isNew ? "New rule" : rule?.name ?? "Rule";
  const scopeError = errorAt(errors, "scope");
  const listId = "rule-properties";

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to={`/f/${slug}/rules`}>Rules</Link> <span aria-hidden="true">/</span> <span>{title}</span>
      </nav>
      <PageHeader
        title={title}
        subtitle={
          rule
            ? `Version ${rule.version} · updated ${formatDateTime(rule.updated_at, timeZone)} · created by ${rule.created_by || "—"}`
            : "A condition on live telemetry that opens an alert."
        }
        actions={<Badge tone={mayChange ? "good" : "neutral"}>{mayChange ? "You can make changes" : "Read only"}</Badge>}
      />
      {readOnly && rule && (
        <Card title="In words">
          <dl className="facts rule-words" data-testid="rule-words">
            <dt>Applies to</dt>
            <dd>{describeScope(rule.definition.scope)}</dd>
            <dt>Fires when</dt>
            <dd>{describeNode(rule.definition.condition)}</dd>
            <dt>Schedule</dt>
            <dd>{describeSchedule(rule.definition.schedule)}</dd>
          </dl>
        </Card>
      )}
      <form onSubmit={onSubmit} noValidate aria-label={isNew ? "New rule" : "Edit rule"} className="rule-form">
        {formError && (
          <Notice tone="error" title="The rule was not saved" onClose={() => setFormError(null)}>
            <p>{formError.message}</p>
            {formError.problems.length > 0 && (
              <ul className="rule-problems">
                {formError.problems.map((p, i) => (
                  <li key={i}>{p}</li>
                ))}
              </ul>
            )}
          </Notice>
        )}
        <datalist id={listId}>
          {[...properties.values()].map((p) => (
            <option key={p.name} value={p.name}>
              {p.display_name && p.display_name !== p.name ? p.display_name : p.unit || p.kind}
            </option>
          ))}
        </datalist>

        <Card title="Rule">
          <div className="form-grid">
            <Field label="Name" error={errors.name}>
              {(p) => <input {...p} name="name" disabled={readOnly} value={form.name} onChange={(e) => set({ name: e.target.value })} />}
            </Field>
            <Field label="Severity" error={errors.severity}>
              {(p) => (
                <select {...p} name="severity" disabled={readOnly} value={form.severity} onChange={(e) => set({ severity: e.target.value as RuleForm["severity"] })}>
                  {SEVERITIES.map((s) => (
                    <option key={s.value} value={s.value}>
                      {s.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
          <Field label="Description" error={errors.description}>
            {(p) => (
              <textarea {...p} name="description" rows={2} disabled={readOnly} value={form.description} onChange={(e) => set({ description: e.target.value })} />
            )}
          </Field>
          <label className="checkbox">
            <input type="checkbox" name="enabled" disabled={readOnly} checked={form.enabled} onChange={(e) => set({ enabled: e.target.checked })} />
            <span>Enabled</span>
          </label>
        </Card>

        <Card title="Applies to">
          <div className="segmented rule-scope" role="group" aria-label="Applies to">
            {SCOPES.map((s) => (
              <button
                key={s.kind}
                type="button"
                className={form.scopeKind === s.kind ? "active" : ""}
                aria-pressed={form.scopeKind === s.kind}
                disabled={readOnly}
                onClick={() => set({ scopeKind: s.kind, deviceIds: s.kind === "device" ? form.deviceIds.slice(0, 1) : form.deviceIds })}
              >
                {s.label}
              </button>
            ))}
          </div>
          <div className="rule-scope-body">
            {form.scopeKind === "factory" && <p className="muted">Every device of the factory, including devices added later.</p>}
            {form.scopeKind === "type" && (
              <Field label="Device type" error={scopeError} hint="Every device of this type, including devices added later.">
                {(p) => (
                  <>
                    <input {...p} name="device_type" list="rule-device-types" disabled={readOnly} value={form.deviceType} onChange={(e) => set({ deviceType: e.target.value })} />
                    <datalist id="rule-device-types">
                      {deviceTypes.map((t) => (
                        <option key={t} value={t} />
                      ))}
                    </datalist>
                  </>
                )}
              </Field>
            )}
            {(form.scopeKind === "device" || form.scopeKind === "devices") && (
              <DevicePicker
                single={form.scopeKind === "device"}
                selected={form.deviceIds}
                onChange={(deviceIds) => set({ deviceIds })}
                error={scopeError}
                readOnly={readOnly}
              />
            )}
            {form.scopeKind === "factory" && scopeError && <p className="field-error">{scopeError}</p>}
          </div>
        </Card>

        <Card title="Condition">
          <p className="muted small rule-help">
            The alert opens when the condition holds. Conditions compare a property the factory's devices report; groups combine
            them with AND (all must hold) or OR (one is enough) and can be nested.
          </p>
          <GroupEditor
            group={form.condition}
            onChange={(condition) => set({ condition })}
            depth={0}
            label="Condition"
            listId={listId}
            properties={properties}
            propertiesComplete={propertiesComplete}
            errors={errors}
            readOnly={readOnly}
          />
          <p className="rule-words-preview" data-testid="condition-words">
            <span className="muted">In words: </span>
            {describeNode(preview.definition.condition)}
          </p>
        </Card>

        <Card title="Schedule">
          <div className="segmented" role="group" aria-label="Schedule">
            <button type="button" className={form.scheduled ? "" : "active"} aria-pressed={!form.scheduled} disabled={readOnly} onClick={() => set({ scheduled: false })}>
              Always
            </button>
            <button type="button" className={form.scheduled ? "active" : ""} aria-pressed={form.scheduled} disabled={readOnly} onClick={() => set({ scheduled: true })}>
              Only at set times
            </button>
          </div>
          {form.scheduled && (
            <div className="rule-schedule">
              <fieldset className={`field${errors["schedule.days"] ? " field-invalid" : ""}`}>
                <legend>Days</legend>
                <div className="checkbox-grid" role="group" aria-label="Days">
                  {DAY_NAMES.map((name, day) => (
                    <label key={name} className="checkbox">
                      <input
                        type="checkbox"
                        disabled={readOnly}
                        checked={form.days.includes(day)}
                        onChange={(e) => set({ days: e.target.checked ? [...form.days, day] : form.days.filter((d) => d !== day) })}
                      />
                      <span>{name}</span>
                    </label>
                  ))}
                </div>
                {errors["schedule.days"] && <p className="field-error">{errors["schedule.days"]}</p>}
              </fieldset>
              <div className="field">
                <span className="rule-label">Time windows</span>
                {form.windows.length === 0 && <p className="muted small">No windows: the rule is active all day on the chosen days.</p>}
                <ol className="rule-windows">
                  {form.windows.map((w, i) => {
                    const err = errorAt(errors, `schedule.windows.${i}`);
                    const overnight = w.start && w.end && w.end < w.start;
                    return (
                      <li key={w.key} className={err ? "field-invalid" : ""} role="group" aria-label={`Time window ${i + 1}`}>
                        <label className="rule-inline">
                          <span>From</span>
                          <input
                            type="time"
                            aria-label="Start"
                            disabled={readOnly}
                            value={w.start}
                            onChange={(e) => set({ windows: form.windows.map((x) => (x.key === w.key ? { ...x, start: e.target.value } : x)) })}
                          />
                        </label>
                        <label className="rule-inline">
                          <span>to</span>
                          <input
                            type="time"
                            aria-label="End"
                            disabled={readOnly}
                            value={w.end}
                            onChange={(e) => set({ windows: form.windows.map((x) => (x.key === w.key ? { ...x, end: e.target.value } : x)) })}
                          />
                        </label>
                        {overnight && <Badge tone="accent">runs past midnight</Badge>}
                        {!readOnly && (
                          <button type="button" className="btn btn-link btn-sm text-bad" onClick={() => set({ windows: form.windows.filter((x) => x.key !== w.key) })}>
                            Remove
                          </button>
                        )}
                        {err && <p className="field-error">{err}</p>}
                      </li>
                    );
                  })}
                </ol>
                {!readOnly && (
                  <button
                    type="button"
                    className="btn btn-secondary btn-sm rule-add-window"
                    onClick={() => set({ windows: [...form.windows, { key: newKey(), start: "08:00", end: "18:00" }] })}
                  >
                    + Time window
                  </button>
                )}
                {errors.schedule && <p className="field-error">{errors.schedule}</p>}
                <p className="field-hint">
                  Times are in the factory's time zone{timeZone ? ` (${timeZone})` : ""}. A window whose end is earlier than its start
                  runs past midnight: 22:00–06:00 on Friday covers Friday night until Saturday 06:00.
                </p>
              </div>
            </div>
          )}
          <p className="muted small">{describeSchedule(preview.definition.schedule)}</p>
        </Card>

        <Card title="When it fires">
          <div className="form-grid">
            <div className={`field${errors.cooldown_seconds ? " field-invalid" : ""}`}>
              <span className="rule-label">Cooldown</span>
              <DurationInput label="Cooldown" seconds={form.cooldownSeconds} units={[1, 60, 3600]} disabled={readOnly} onChange={(cooldownSeconds) => set({ cooldownSeconds })} />
              {errors.cooldown_seconds ? (
                <p className="field-error">{errors.cooldown_seconds}</p>
              ) : (
                <p className="field-hint">No new alert for the same device this long after the last one opened.</p>
              )}
            </div>
            <div className="field">
              <span className="rule-label">Resolving</span>
              <label className="checkbox">
                <input type="checkbox" name="auto_resolve" disabled={readOnly} checked={form.autoResolve} onChange={(e) => set({ autoResolve: e.target.checked })} />
                <span>Resolve automatically</span>
              </label>
              <p className="field-hint">Otherwise a person resolves the alert.</p>
            </div>
          </div>
          <label className="checkbox">
            <input type="checkbox" name="use_clear" disabled={readOnly} checked={form.useClear} onChange={(e) => set({ useClear: e.target.checked })} />
            <span>Resolve only when a different condition holds (hysteresis)</span>
          </label>
          {form.useClear && (
            <div className="rule-clear">
              <p className="muted small">
                Resolve only when… (for example trigger above 100 kW, resolve only below 80 kW, so values hovering near 100
                do not open and close alerts over and over).
              </p>
              <GroupEditor
                group={form.clear}
                onChange={(clear) => set({ clear })}
                depth={0}
                label="Resolve only when"
                listId={listId}
                properties={properties}
                propertiesComplete={propertiesComplete}
                errors={errors}
                readOnly={readOnly}
              />
              {preview.definition.clear && (
                <p className="rule-words-preview" data-testid="clear-words">
                  <span className="muted">Resolves when: </span>
                  {describeNode(preview.definition.clear)}
                </p>
              )}
            </div>
          )}
        </Card>

        <Card title="Notify">
          <div className="form-grid">
            <ListInput
              label="Emails"
              values={form.emails}
              onChange={(emails) => set({ emails })}
              placeholder="energy@plant.example"
              check={(v) => (EMAIL_RE.test(v) ? null : `“${v}” is not an email address.`)}
              error={errorAt(errors, "notify.emails")}
              disabled={readOnly}
            />
            <ListInput
              label="WhatsApp numbers"
              values={form.whatsapp}
              onChange={(whatsapp) => set({ whatsapp })}
              placeholder="+4915112345678"
              check={(v) => (E164_RE.test(v) ? null : `“${v}” is not an E.164 number: a + and the country code, like +4915112345678.`)}
              error={errorAt(errors, "notify.whatsapp")}
              hint="In international E.164 form: + and the country code, no spaces."
              disabled={readOnly}
            />
          </div>
          <UserPicker selected={form.users} onChange={(users) => set({ users })} error={errorAt(errors, "notify.users")} readOnly={readOnly} />
          <div className="form-grid">
            <div className={`field${errors["notify.remind_after_minutes"] ? " field-invalid" : ""}`}>
              <label htmlFor="rule-remind">Remind after (minutes)</label>
              <input
                id="rule-remind"
                type="number"
                min={0}
                disabled={readOnly}
                value={form.remindAfterMinutes}
                onChange={(e) => set({ remindAfterMinutes: Math.max(0, Math.round(Number(e.target.value) || 0)) })}
              />
              {errors["notify.remind_after_minutes"] ? (
                <p className="field-error">{errors["notify.remind_after_minutes"]}</p>
              ) : (
                <p className="field-hint">Remind the recipients when the alert stays unacknowledged this long; 0: no reminder.</p>
              )}
            </div>
            <div className="field">
              <span className="rule-label">On resolve</span>
              <label className="checkbox">
                <input type="checkbox" name="on_resolve" disabled={readOnly} checked={form.onResolve} onChange={(e) => set({ onResolve: e.target.checked })} />
                <span>Also notify when the alert resolves</span>
              </label>
            </div>
          </div>
          <RuleWarnings warnings={warnings} />
        </Card>

        <div className="rule-json-toggle">
          <button type="button" className="btn btn-link btn-sm" aria-expanded={showJson} onClick={() => setShowJson((v) => !v)}>
            {showJson ? "Hide the JSON definition" : "Show the JSON definition"}
          </button>
          {showJson && (
            <pre className="rule-json" data-testid="rule-json">
              {JSON.stringify(preview, null, 2)}
            </pre>
          )}
        </div>

        {!readOnly && (
          <div className="form-actions rule-actions">
            <button type="submit" className="btn btn-primary" disabled={busy}>
              {busy ? "Saving…" : isNew ? "Create rule" : "Save rule"}
            </button>
            <Link className="btn btn-secondary" to={`/f/${slug}/rules`}>
              Cancel
            </Link>
          </div>
        )}
      </form>
      {!readOnly && (
        <BacktestPanel
          definition={() => buildDefinition(form)}
          timeZone={timeZone}
          onProblems={(details) => {
            showProblems(details, form);
            if (details.length) setFormError({ message: "The backtest refused the definition:", problems: details.map(problemText) });
          }}
        />
      )}
    </>
  );
}
