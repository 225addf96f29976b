// "/f/:slug/retention": how long this factory's telemetry is kept - raw points, then the 1-minute
// and 1-hour rollups that long charts and reports read - next to the platform's maximum. The super
// admin can keep each for less time (never longer); everyone else sees it read-only. Shortening
// deletes data for good, so it is confirmed first; the worker deletes within minutes, then hourly.
import { useEffect, useState, type FormEvent } from "react";
import { describeError, formProblems } from "../../../api/errors";
import { TIERS, formatDays, getRetention, putRetention, type Retention, type RetentionUpdate, type TierField } from "../../../api/retention";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Card, Field, Modal, Notice, PageHeader, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";

type Drafts = Record<TierField, string>;

function draftsOf(r: Retention): Drafts {
  const text = (n: number | null | undefined) => (n === null || n === undefined ? "" : String(n));
  return { raw_days: text(r.own_raw_days), rollup_1m_days: text(r.own_rollup_1m_days), rollup_1h_days: text(r.own_rollup_1h_days) };
}

/** "" -> null (the platform's); a whole number of days; anything else -> NaN. */
function parseDays(text: string): number | null {
  const t = text.trim();
  if (!t) return null;
  return /^\d+$/.test(t) ? Number(t) : Number.NaN;
}

/** Days in force for a tier with the factory's own value `own` (null: the platform's). */
function kept(own: number | null, platform: number | null | undefined): number | null {
  if (own === null) return platform ?? null;
  return platform === null || platform === undefined ? own : Math.min(own, platform);
}

/** True when `next` keeps data less long than `now` (null is forever). */
function shorter(next: number | null, now: number | null | undefined): boolean {
  return next !== null && (now === null || now === undefined || next < now);
}

export function RetentionPage() {
  const { isSuperAdmin, principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const [loaded, setLoaded] = useState<Retention | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [drafts, setDrafts] = useState<Drafts>({ raw_days: "", rollup_1m_days: "", rollup_1h_days: "" });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState<{ body: RetentionUpdate; losses: string[] } | null>(null);

  const fill = (r: Retention) => {
    setLoaded(r);
    setDrafts(draftsOf(r));
  };

  useEffect(() => {
    getRetention()
      .then(fill)
      .catch((err: unknown) => setLoadError(describeError(err)));
  }, []);

  const save = async (body: RetentionUpdate, message: string) => {
    setConfirming(null);
    setBusy(true);
    setSaved(null);
    try {
      fill(await putRetention(body));
      setErrors({});
      setFormError(null);
      setSaved(message);
    } catch (err) {
      const { fields, message: problem } = formProblems(err);
      setErrors(fields);
      setFormError(problem);
    } finally {
      setBusy(false);
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (!loaded) return;
    setSaved(null);
    const problems: Record<string, string> = {};
    const values = {} as Record<TierField, number | null>;
    for (const tier of TIERS) {
      const days = parseDays(drafts[tier.field]);
      const max = loaded[tier.platform];
      if (days !== null && (Number.isNaN(days) || days < 1)) problems[tier.field] = "Enter a whole number of days (1 or more), or leave it empty.";
      else if (days !== null && max !== null && max !== undefined && days > max)
        problems[tier.field] = `At most ${formatDays(max)}, the platform's maximum. Leave it empty to keep them that long.`;
      values[tier.field] = days;
    }
    if (!Object.keys(problems).length) {
      // Each resolution is kept at least as long as the finer one (the API says the same).
      const inForce = TIERS.map((t) => kept(values[t.field], loaded[t.platform]));
      for (let i = 0; i + 1 < TIERS.length; i++) {
        const [finer, coarser] = [TIERS[i]!, TIERS[i + 1]!];
        const [a, b] = [inForce[i] ?? null, inForce[i + 1] ?? null];
        if (b !== null && (a === null || a > b)) {
          const blamed = values[finer.field] !== null ? finer : coarser;
          problems[blamed.field] =
            `${finer.label} would be kept ${formatDays(a)} but ${coarser.label.toLowerCase()} only ${formatDays(b)}; ` +
            `keep ${finer.label.toLowerCase()} ${formatDays(b)} or less, or ${coarser.label.toLowerCase()} longer.`;
        }
      }
    }
    setErrors(problems);
    if (Object.keys(problems).length) {
      setFormError("Some fields need attention; see the messages below.");
      return;
    }
    setFormError(null);
    const body: RetentionUpdate = { ...values, reset: false };
    const losses = TIERS.filter((t) => shorter(kept(values[t.field], loaded[t.platform]), loaded[t.field])).map(
      (t) => `${t.label} older than ${formatDays(kept(values[t.field], loaded[t.platform]))} (kept ${formatDays(loaded[t.field])} until now)`,
    );
    if (losses.length) setConfirming({ body, losses });
    else void save(body, "Saved. Nothing is deleted: data is kept at least as long as before.");
  };

  if (loadError && !loaded) {
    return (
      <>
        <PageHeader title="Data retention" />
        <Notice tone="error" title="Could not load the retention">
          {loadError}
        </Notice>
      </>
    );
  }
  if (!loaded) return <Spinner label="Loading the retention…" />;

  const ro = !isSuperAdmin;

  return (
    <>
      <PageHeader
        title="Data retention"
        subtitle="How long this factory's telemetry is kept. Charts and reports over long periods read the 1-minute and 1-hour rollups, which are kept longer than the raw points."
        actions={<Badge tone={ro ? "neutral" : "good"}>{ro ? "Read only: super admin" : "You can make changes"}</Badge>}
      />
      <Card title="Kept now">
        <div className="table-wrap">
          <table className="table" aria-label="Retention">
            <thead>
              <tr>
                <th>Resolution</th>
                <th>This factory</th>
                <th>Platform maximum</th>
                <th>Used for</th>
              </tr>
            </thead>
            <tbody>
              {TIERS.map((t) => (
                <tr key={t.field}>
                  <td className="nowrap">{t.label}</td>
                  <td className="nowrap">
                    {formatDays(loaded[t.field])}{" "}
                    {loaded[t.own] !== null && loaded[t.own] !== undefined && <Badge tone="accent">own</Badge>}
                  </td>
                  <td className="nowrap">{formatDays(loaded[t.platform])}</td>
                  <td className="muted">{t.usedFor}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <p className="field-hint">
          {loaded.updated_by ? `Last changed by ${loaded.updated_by}, ${formatDateTime(loaded.updated_at, timeZone)}. ` : "Never changed: the platform's retention. "}
          {loaded.swept_at
            ? `Older data last deleted ${formatDateTime(loaded.swept_at, timeZone)}; the worker checks every hour.`
            : loaded.own
              ? "Older data is deleted by the worker within a few minutes, then every hour."
              : ""}
        </p>
      </Card>
      <form onSubmit={onSubmit} noValidate aria-label="Data retention" className="report-form report-settings">
        {formError && (
          <Notice tone="error" title="The retention was not saved" onClose={() => setFormError(null)}>
            {formError}
          </Notice>
        )}
        {saved && (
          <Notice tone="success" onClose={() => setSaved(null)}>
            {saved}
          </Notice>
        )}
        <fieldset disabled={ro || busy} className="report-settings-fields">
          <Card title="Keep this factory's data less long">
            <p className="field-hint">
              Days for each resolution; empty keeps it as long as the platform does. Each must be kept at least as long as the one above it
              (raw points ≤ 1-minute ≤ 1-hour rollups).
            </p>
            <div className="form-grid">
              {TIERS.map((t) => (
                <Field key={t.field} label={`${t.label} (days)`} error={errors[t.field]} hint={`Empty: ${formatDays(loaded[t.platform])}, the platform's.`}>
                  {(p) => (
                    <input
                      {...p}
                      name={t.field}
                      inputMode="numeric"
                      placeholder={loaded[t.platform] === null || loaded[t.platform] === undefined ? "forever" : String(loaded[t.platform])}
                      value={drafts[t.field]}
                      onChange={(e) => setDrafts((cur) => ({ ...cur, [t.field]: e.target.value }))}
                    />
                  )}
                </Field>
              ))}
            </div>
          </Card>
        </fieldset>
        {!ro && (
          <div className="form-actions">
            <button type="submit" className="btn btn-primary" disabled={busy}>
              {busy ? "Saving…" : "Save retention"}
            </button>
            {TIERS.some((t) => loaded[t.own] !== null && loaded[t.own] !== undefined) && (
              <button
                type="button"
                className="btn btn-secondary"
                disabled={busy}
                onClick={() => void save({ reset: true }, "Saved. The factory keeps its data as long as the platform does.")}
              >
                Follow the platform
              </button>
            )}
          </div>
        )}
      </form>
      {confirming && (
        <Modal title="Delete older telemetry?" onClose={() => setConfirming(null)}>
          <p>Within a few minutes the worker deletes, for good:</p>
          <ul>
            {confirming.losses.map((l) => (
              <li key={l}>{l}</li>
            ))}
          </ul>
          <p className="field-hint">Charts and reports of those periods then have less detail, or nothing once the 1-hour rollups are gone.</p>
          <div className="form-actions">
            <button type="button" className="btn btn-danger" onClick={() => void save(confirming.body, "Saved. Older data is deleted within a few minutes.")}>
              Delete and save
            </button>
            <button type="button" className="btn btn-secondary" onClick={() => setConfirming(null)}>
              Cancel
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}
