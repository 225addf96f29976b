// "/f/:slug/notifications": the signed-in person's own notification preferences: which channels
// reach them, from which severity up, and quiet hours in the factory's time zone.
import { useEffect, useState, type FormEvent } from "react";
import {
  SEVERITIES,
  SEVERITY_LABELS,
  getNotificationPrefs,
  saveNotificationPrefs,
  type NotificationPrefs as Prefs,
  type Severity,
} from "../../api/alerts";
import { ApiError, describeError, formProblems } from "../../api/errors";
import { useAuth } from "../../auth/AuthContext";
import { Card, Field, Notice, PageHeader, Spinner } from "../../components/ui";

interface FormState {
  email: boolean;
  whatsapp: boolean;
  whatsappNumber: string;
  minSeverity: Severity;
  quiet: boolean;
  quietStart: string;
  quietEnd: string;
}

function toForm(p: Prefs): FormState {
  return {
    email: p.email,
    whatsapp: p.whatsapp,
    whatsappNumber: p.whatsapp_number ?? "",
    minSeverity: p.min_severity,
    quiet: Boolean(p.quiet_hours),
    quietStart: p.quiet_hours?.start ?? "22:00",
    quietEnd: p.quiet_hours?.end ?? "06:00",
  };
}

function toPrefs(f: FormState): Prefs {
  const number = f.whatsappNumber.replace(/[\s()-]/g, "");
  return {
    email: f.email,
    whatsapp: f.whatsapp,
    whatsapp_number: number || null,
    min_severity: f.minSeverity,
    quiet_hours: f.quiet ? { start: f.quietStart, end: f.quietEnd } : null,
  };
}

export function NotificationPrefs() {
  const { principal } = useAuth();
  const timeZone = principal?.factory?.timezone ?? "UTC";
  const [form, setForm] = useState<FormState | null>(null);
  const [loadError, setLoadError] = useState<{ missing: boolean; message: string } | null>(null);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    getNotificationPrefs()
      .then((p) => setForm(toForm(p)))
      .catch((err: unknown) =>
        setLoadError({ missing: err instanceof ApiError && err.status === 404, message: describeError(err) }),
      );
  }, []);

  const set = (patch: Partial<FormState>) => {
    setForm((f) => (f ? { ...f, ...patch } : f));
    setSaved(false);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!form) return;
    // The server checks the number's format, the times and their order; its 422 names the field.
    setFields({});
    setSaved(false);
    setSaving(true);
    setMessage(null);
    try {
      const next = await saveNotificationPrefs(toPrefs(form));
      setForm(toForm(next));
      setSaved(true);
    } catch (err) {
      const problems = formProblems(err);
      setFields(problems.fields);
      setMessage(problems.message);
    } finally {
      setSaving(false);
    }
  };

  return (
    <>
      <PageHeader
        title="Notification preferences"
        subtitle={
          <>
            How alerts reach you, <strong>{principal?.email}</strong>, when a rule names you as a recipient.
          </>
        }
      />
      {loadError && (
        <Notice tone="error" title="Could not load your preferences">
          {loadError.missing ? "This server does not offer notification preferences yet." : loadError.message}
        </Notice>
      )}
      {!form && !loadError && <Spinner label="Loading your preferences…" />}
      {form && (
        <Card className="form-card prefs-card">
          <form onSubmit={submit} aria-label="Notification preferences" noValidate>
            {message && (
              <Notice tone="error" onClose={() => setMessage(null)}>
                {message}
              </Notice>
            )}
            {saved && <Notice tone="success" title="Preferences saved" onClose={() => setSaved(false)} />}
            <fieldset className="field prefs-channels">
              <legend>Channels</legend>
              <label className="checkbox">
                <input type="checkbox" checked={form.email} onChange={(e) => set({ email: e.target.checked })} />
                <span>Email to {principal?.email}</span>
              </label>
              {fields.email && <p className="field-error">{fields.email}</p>}
              <label className="checkbox">
                <input type="checkbox" checked={form.whatsapp} onChange={(e) => set({ whatsapp: e.target.checked })} />
                <span>WhatsApp</span>
              </label>
              {fields.whatsapp && <p className="field-error">{fields.whatsapp}</p>}
            </fieldset>
            <Field label="WhatsApp number" error={fields.whatsapp_number} hint="International format with +, e.g. +4915112345678.">
              {(props) => (
                <input
                  {...props}
                  type="tel"
                  inputMode="tel"
                  autoComplete="tel"
                  placeholder="+4915112345678"
                  value={form.whatsappNumber}
                  onChange={(e) => set({ whatsappNumber: e.target.value })}
                />
              )}
            </Field>
            <Field label="Minimum severity" error={fields.min_severity} hint="Alerts below this severity are not sent to you.">
              {(props) => (
                <select {...props} value={form.minSeverity} onChange={(e) => set({ minSeverity: e.target.value as Severity })}>
                  {[...SEVERITIES].reverse().map((s) => (
                    <option key={s} value={s}>
                      {SEVERITY_LABELS[s]}
                      {s === "info" ? " (everything)" : s === "warning" ? " and critical" : " only"}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <fieldset className={`field prefs-quiet${fields.quiet_hours ? " field-invalid" : ""}`}>
              <legend>Quiet hours</legend>
              <label className="checkbox">
                <input type="checkbox" checked={form.quiet} onChange={(e) => set({ quiet: e.target.checked })} />
                <span>No messages during quiet hours</span>
              </label>
              {form.quiet && (
                <div className="form-grid prefs-quiet-times">
                  <Field label="From" error={fields["quiet_hours.start"]}>
                    {(props) => <input {...props} type="time" value={form.quietStart} onChange={(e) => set({ quietStart: e.target.value })} />}
                  </Field>
                  <Field label="Until" error={fields["quiet_hours.end"]}>
                    {(props) => <input {...props} type="time" value={form.quietEnd} onChange={(e) => set({ quietEnd: e.target.value })} />}
                  </Field>
                </div>
              )}
              {fields.quiet_hours && !fields["quiet_hours.start"] && !fields["quiet_hours.end"] && <p className="field-error">{fields.quiet_hours}</p>}
              <p className="field-hint">
                Times in the factory's time zone, <strong>{timeZone}</strong>. An end earlier than the start runs past midnight.
              </p>
            </fieldset>
            <div className="form-actions">
              <button type="submit" className="btn btn-primary" disabled={saving}>
                {saving ? "Saving…" : "Save preferences"}
              </button>
            </div>
          </form>
        </Card>
      )}
    </>
  );
}
