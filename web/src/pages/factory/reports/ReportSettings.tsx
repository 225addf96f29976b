// "/f/:slug/reports/settings": what reports price and count energy with. The currency, the tariff
// (none, one flat price, or time-of-use bands by weekday and local time with a default price for
// the hours outside every band), the CO2 emission factor and the shifts. An admin with the reports permission saves;
// everyone else sees the values read-only. The API's refusals are shown at their fields.
import { useEffect, useState, type FormEvent } from "react";
import { describeError, formProblems } from "../../../api/errors";
import { DAY_NAMES, getReportSettings, putReportSettings, type ReportSettings, type Tariff } from "../../../api/reports";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Card, Field, Notice, PageHeader, Spinner } from "../../../components/ui";
import { useTimeZone } from "./common";

type TariffKind = Tariff["kind"];

interface BandDraft {
  name: string;
  price: string;
  days: number[];
  start: string;
  end: string;
}

interface ShiftDraft {
  name: string;
  start: string;
  end: string;
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const DEFAULT_SHIFTS = "06:00–14:00, 14:00–22:00 and 22:00–06:00";

function numText(value: number | null | undefined): string {
  return value === null || value === undefined ? "" : String(value);
}

/** "" -> null; "0,25" is read as 0.25; anything else not a number -> NaN. */
function parseNumber(text: string): number | null {
  const t = text.trim().replace(",", ".");
  if (!t) return null;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : Number.NaN;
}

export function ReportSettingsPage() {
  const { can } = useAuth();
  const mayChange = can("reports");
  const timeZone = useTimeZone();
  const [loaded, setLoaded] = useState<ReportSettings | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [currency, setCurrency] = useState("EUR");
  const [kind, setKind] = useState<TariffKind>("none");
  const [flatPrice, setFlatPrice] = useState("");
  const [defaultPrice, setDefaultPrice] = useState("");
  const [bands, setBands] = useState<BandDraft[]>([]);
  const [factor, setFactor] = useState("");
  const [shifts, setShifts] = useState<ShiftDraft[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  const fill = (s: ReportSettings) => {
    setLoaded(s);
    setCurrency(s.currency);
    const t = s.tariff ?? { kind: "none" };
    setKind(t.kind);
    setFlatPrice(numText(t.flat_price));
    setDefaultPrice(numText(t.default_price));
    setBands(
      (t.bands ?? []).map((b) => ({ name: b.name, price: String(b.price), days: b.days ?? [0, 1, 2, 3, 4, 5, 6], start: b.start, end: b.end })),
    );
    setFactor(numText(s.emission_factor_kg_per_kwh));
    setShifts((s.shifts ?? []).map((x) => ({ ...x })));
  };

  useEffect(() => {
    getReportSettings()
      .then(fill)
      .catch((err: unknown) => setLoadError(describeError(err)));
  }, []);

  const setBand = (i: number, patch: Partial<BandDraft>) => setBands((cur) => cur.map((b, j) => (j === i ? { ...b, ...patch } : b)));
  const setShift = (i: number, patch: Partial<ShiftDraft>) => setShifts((cur) => cur.map((s, j) => (j === i ? { ...s, ...patch } : s)));

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    const problems: Record<string, string> = {};
    const code = currency.trim().toUpperCase();
    if (!/^[A-Z]{3}$/.test(code)) problems.currency = "Use a three-letter currency code, like EUR or USD.";
    const flat = parseNumber(flatPrice);
    const fallback = parseNumber(defaultPrice);
    const ef = parseNumber(factor);
    if (kind === "flat" && (flat === null || Number.isNaN(flat) || flat < 0)) problems["tariff.flat_price"] = "Enter the price per kWh (0 or more).";
    if (kind === "time_of_use") {
      if (fallback === null || Number.isNaN(fallback) || fallback < 0) problems["tariff.default_price"] = "Enter the price outside every band (0 or more).";
      if (!bands.length) problems.tariff = "Add at least one band, or choose another tariff.";
      bands.forEach((b, i) => {
        if (!b.name.trim()) problems[`tariff.bands.${i}.name`] = "Name the band.";
        const price = parseNumber(b.price);
        if (price === null || Number.isNaN(price) || price < 0) problems[`tariff.bands.${i}.price`] = "Enter a price (0 or more).";
        if (!b.days.length) problems[`tariff.bands.${i}.days`] = "Tick at least one day.";
        if (!HHMM.test(b.start)) problems[`tariff.bands.${i}.start`] = "Use HH:MM.";
        if (!HHMM.test(b.end)) problems[`tariff.bands.${i}.end`] = "Use HH:MM.";
      });
    }
    if (ef !== null && (Number.isNaN(ef) || ef < 0 || ef > 5)) problems.emission_factor_kg_per_kwh = "Enter kg CO2 per kWh between 0 and 5, or leave it empty.";
    shifts.forEach((s, i) => {
      if (!s.name.trim()) problems[`shifts.${i}.name`] = "Name the shift.";
      if (!HHMM.test(s.start)) problems[`shifts.${i}.start`] = "Use HH:MM.";
      if (!HHMM.test(s.end)) problems[`shifts.${i}.end`] = "Use HH:MM.";
    });
    setErrors(problems);
    if (Object.keys(problems).length) {
      setFormError("Some fields need attention; see the messages below.");
      return;
    }
    setFormError(null);
    setBusy(true);
    const body: ReportSettings = {
      currency: code,
      tariff: {
        kind,
        flat_price: kind === "flat" ? flat : null,
        default_price: kind === "time_of_use" ? fallback : null,
        bands:
          kind === "time_of_use"
            ? bands.map((b) => ({ name: b.name.trim(), price: parseNumber(b.price) ?? 0, days: [...b.days].sort((x, y) => x - y), start: b.start, end: b.end }))
            : [],
      },
      emission_factor_kg_per_kwh: ef,
      shifts: shifts.map((s) => ({ name: s.name.trim(), start: s.start, end: s.end })),
    };
    try {
      fill(await putReportSettings(body));
      setSaved(true);
    } catch (err) {
      const { fields, message } = formProblems(err);
      // A refusal of the tariff as a whole (e.g. "a flat tariff needs flat_price") belongs at the tariff.
      if (!Object.keys(fields).length && /tariff/i.test(message)) fields.tariff = message;
      setErrors(fields);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  if (loadError && !loaded) {
    return (
      <>
        <PageHeader title="Report settings" />
        <Notice tone="error" title="Could not load the report settings">
          {loadError}
        </Notice>
      </>
    );
  }
  if (!loaded) return <Spinner label="Loading the report settings…" />;

  const ro = !mayChange;

  return (
    <>
      <PageHeader
        title="Report settings"
        subtitle="The tariff, CO2 factor and shifts that every report of this factory uses for cost, emissions and shift totals."
        actions={<Badge tone={ro ? "neutral" : "good"}>{ro ? "Read only: needs the reports permission" : "You can make changes"}</Badge>}
      />
      <form onSubmit={onSubmit} noValidate aria-label="Report settings" className="report-form report-settings">
        {formError && (
          <Notice tone="error" title="The settings were not saved" onClose={() => setFormError(null)}>
            {formError}
          </Notice>
        )}
        {saved && (
          <Notice tone="success" onClose={() => setSaved(false)}>
            Settings saved. New reports use them.
          </Notice>
        )}
        <fieldset disabled={ro} className="report-settings-fields">
          <Card title="Tariff">
            <div className="form-grid">
              <Field label="Currency" error={errors.currency} hint="ISO code, e.g. EUR.">
                {(p) => <input {...p} name="currency" maxLength={3} value={currency} onChange={(e) => setCurrency(e.target.value.toUpperCase())} />}
              </Field>
              <Field label="Tariff" error={errors.tariff}>
                {(p) => (
                  <select {...p} name="tariff" value={kind} onChange={(e) => setKind(e.target.value as TariffKind)}>
                    <option value="none">None (no cost in reports)</option>
                    <option value="flat">Flat price</option>
                    <option value="time_of_use">Time of use</option>
                  </select>
                )}
              </Field>
              {kind === "flat" && (
                <Field label="Price per kWh" error={errors["tariff.flat_price"]} hint={`In ${currency || "the currency"}.`}>
                  {(p) => <input {...p} name="flat_price" inputMode="decimal" value={flatPrice} onChange={(e) => setFlatPrice(e.target.value)} />}
                </Field>
              )}
              {kind === "time_of_use" && (
                <Field label="Default price per kWh" error={errors["tariff.default_price"]} hint="For the hours outside every band.">
                  {(p) => <input {...p} name="default_price" inputMode="decimal" value={defaultPrice} onChange={(e) => setDefaultPrice(e.target.value)} />}
                </Field>
              )}
            </div>
            {kind === "time_of_use" && (
              <div className="report-bands">
                <p className="field-hint">
                  Bands in local time{timeZone ? ` (${timeZone})` : ""}; an end before the start runs past midnight. The first band that matches an hour sets
                  its price.
                </p>
                {bands.map((b, i) => (
                  <fieldset key={i} className="report-band" aria-label={`Band ${i + 1}`}>
                    <legend>Band {i + 1}</legend>
                    <div className="form-grid">
                      <Field label="Name" error={errors[`tariff.bands.${i}.name`]}>
                        {(p) => <input {...p} value={b.name} onChange={(e) => setBand(i, { name: e.target.value })} placeholder="Peak" />}
                      </Field>
                      <Field label="Price per kWh" error={errors[`tariff.bands.${i}.price`]}>
                        {(p) => <input {...p} inputMode="decimal" value={b.price} onChange={(e) => setBand(i, { price: e.target.value })} />}
                      </Field>
                      <Field label="Start" error={errors[`tariff.bands.${i}.start`]}>
                        {(p) => <input {...p} type="time" value={b.start} onChange={(e) => setBand(i, { start: e.target.value })} />}
                      </Field>
                      <Field label="End" error={errors[`tariff.bands.${i}.end`]}>
                        {(p) => <input {...p} type="time" value={b.end} onChange={(e) => setBand(i, { end: e.target.value })} />}
                      </Field>
                    </div>
                    <div className="checkbox-grid" role="group" aria-label="Days">
                      {DAY_NAMES.map((d, day) => (
                        <label key={d} className="checkbox">
                          <input
                            type="checkbox"
                            checked={b.days.includes(day)}
                            onChange={(e) => setBand(i, { days: e.target.checked ? [...b.days, day] : b.days.filter((x) => x !== day) })}
                          />
                          <span>{d}</span>
                        </label>
                      ))}
                    </div>
                    {errors[`tariff.bands.${i}.days`] && <p className="field-error">{errors[`tariff.bands.${i}.days`]}</p>}
                    {!ro && (
                      <button type="button" className="btn btn-link btn-sm" onClick={() => setBands((cur) => cur.filter((_, j) => j !== i))}>
                        Remove band {i + 1}
                      </button>
                    )}
                  </fieldset>
                ))}
                {!ro && (
                  <button
                    type="button"
                    className="btn btn-secondary btn-sm"
                    onClick={() => setBands((cur) => [...cur, { name: "", price: "", days: [0, 1, 2, 3, 4], start: "08:00", end: "20:00" }])}
                  >
                    + Band
                  </button>
                )}
              </div>
            )}
          </Card>
          <Card title="Emissions">
            <Field
              label="CO2 emission factor (kg/kWh)"
              error={errors.emission_factor_kg_per_kwh}
              hint="From your electricity supplier's disclosure; empty: reports show no CO2."
            >
              {(p) => <input {...p} name="emission_factor" inputMode="decimal" value={factor} onChange={(e) => setFactor(e.target.value)} />}
            </Field>
          </Card>
          <Card title="Shifts">
            <p className="field-hint">
              Consumption by shift, in local time; an end before the start runs past midnight.{" "}
              {shifts.length ? "" : `None set: the default shifts ${DEFAULT_SHIFTS}.`}
            </p>
            {errors.shifts && <p className="field-error">{errors.shifts}</p>}
            {shifts.map((s, i) => (
              <fieldset key={i} className="report-shift" aria-label={`Shift ${i + 1}`}>
                <div className="form-grid">
                  <Field label="Name" error={errors[`shifts.${i}.name`]}>
                    {(p) => <input {...p} value={s.name} onChange={(e) => setShift(i, { name: e.target.value })} placeholder="Morning" />}
                  </Field>
                  <Field label="Start" error={errors[`shifts.${i}.start`]}>
                    {(p) => <input {...p} type="time" value={s.start} onChange={(e) => setShift(i, { start: e.target.value })} />}
                  </Field>
                  <Field label="End" error={errors[`shifts.${i}.end`]}>
                    {(p) => <input {...p} type="time" value={s.end} onChange={(e) => setShift(i, { end: e.target.value })} />}
                  </Field>
                </div>
                {!ro && (
                  <button type="button" className="btn btn-link btn-sm" onClick={() => setShifts((cur) => cur.filter((_, j) => j !== i))}>
                    Remove shift {i + 1}
                  </button>
                )}
              </fieldset>
            ))}
            {!ro && shifts.length < 6 && (
              <button type="button" className="btn btn-secondary btn-sm" onClick={() => setShifts((cur) => [...cur, { name: "", start: "06:00", end: "14:00" }])}>
                + Shift
              </button>
            )}
          </Card>
        </fieldset>
        {!ro && (
          <div className="form-actions">
            <button type="submit" className="btn btn-primary" disabled={busy}>
              {busy ? "Saving…" : "Save settings"}
            </button>
          </div>
        )}
      </form>
    </>
  );
}
