// "/f/:slug/reports/new": the report builder. A period preset (resolved by the server in the
// factory's time zone) or a custom period, optional devices (none = every device), the sections,
// the properties of the properties section, and the format. Submitting starts a job and opens the
// report's page, which follows its progress.
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { ApiError, formProblems } from "../../../api/errors";
import { createReport, PRESETS, type Format, type Preset, type Section } from "../../../api/reports";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Card, Field, Notice, PageHeader } from "../../../components/ui";
import { fromLocalInput, toLocalInput } from "../../../lib/telemetryFormat";
import { DevicePicker } from "../rules/pickers";
import { FormatPicker, PropertiesPicker, SectionsPicker, useBase, useTimeZone } from "./common";

/** Where the API's refusals (by code) belong in the form. */
const CODE_FIELDS: Record<string, string> = {
  period_required: "start",
  invalid_period: "end",
  period_too_long: "start",
  unknown_devices: "devices",
  no_sections: "sections",
};

const DAY_MS = 86_400_000;

export function ReportBuilder() {
  const navigate = useNavigate();
  const base = useBase();
  const timeZone = useTimeZone();
  const { can } = useAuth();
  const [title, setTitle] = useState("Energy report");
  const [preset, setPreset] = useState<Preset>("last_7_days");
  const [start, setStart] = useState(() => toLocalInput(Date.now() - 7 * DAY_MS, timeZone).slice(0, 11) + "00:00");
  const [end, setEnd] = useState(() => toLocalInput(Date.now(), timeZone).slice(0, 11) + "00:00");
  const [devices, setDevices] = useState<string[]>([]);
  const [sections, setSections] = useState<Section[]>(["energy", "properties", "alerts", "analytics"]);
  const [properties, setProperties] = useState<string[]>([]);
  const [format, setFormat] = useState<Format>("pdf");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!title.trim()) problems.title = "Give the report a title.";
    if (!sections.length) problems.sections = "Choose at least one section.";
    if (sections.includes("properties") && properties.length > 50) problems.properties = "Choose at most 50 properties.";
    let startMs = Number.NaN;
    let endMs = Number.NaN;
    if (preset === "custom") {
      startMs = fromLocalInput(start, timeZone);
      endMs = fromLocalInput(end, timeZone);
      if (Number.isNaN(startMs)) problems.start = "Enter the start of the period.";
      if (Number.isNaN(endMs)) problems.end = "Enter the end of the period.";
      else if (!Number.isNaN(startMs) && endMs <= startMs) problems.end = "The end must be after the start.";
      else if (!Number.isNaN(startMs) && endMs - startMs > 366 * DAY_MS) problems.start = "A report covers at most 366 days.";
    }
    setErrors(problems);
    if (Object.keys(problems).length) {
      setFormError("Some fields need attention; see the messages below.");
      return;
    }
    setFormError(null);
    setBusy(true);
    try {
      const report = await createReport({
        title: title.trim(),
        format,
        preset,
        start: preset === "custom" ? new Date(startMs).toISOString() : null,
        end: preset === "custom" ? new Date(endMs).toISOString() : null,
        devices: devices.length ? devices : null,
        sections,
        properties: sections.includes("properties") ? properties : [],
      });
      navigate(`${base}/${encodeURIComponent(report.id)}`, { state: { requested: true } });
    } catch (err) {
      const { fields, message } = formProblems(err);
      if (err instanceof ApiError) {
        const field = CODE_FIELDS[err.code];
        if (field && !fields[field]) fields[field] = err.message;
      }
      setErrors(fields);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  if (!can("reports")) {
    return (
      <>
        <PageHeader title="New report" actions={<Badge tone="neutral">Read only</Badge>} />
        <Notice tone="info" title="Requesting reports needs the reports permission">
          Ask a super admin of the factory to grant it. <Link to={`${base}/history`}>Back to the history</Link>
        </Notice>
      </>
    );
  }

  return (
    <>
      <PageHeader
        title="New report"
        subtitle="Energy, properties, alerts and analytics of a period, as a PDF to hand over, an Excel workbook or JSON."
      />
      <form onSubmit={onSubmit} noValidate aria-label="New report" className="report-form">
        {formError && (
          <Notice tone="error" title="The report was not requested" onClose={() => setFormError(null)}>
            {formError}
          </Notice>
        )}
        <Card title="Report">
          <div className="form-grid">
            <Field label="Title" error={errors.title} hint="Printed on the cover and used in the file name.">
              {(p) => <input {...p} name="title" autoComplete="off" maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} />}
            </Field>
            <Field label="Period" error={errors.preset} hint={timeZone ? `Whole days in the factory's time zone (${timeZone}).` : undefined}>
              {(p) => (
                <select {...p} name="preset" value={preset} onChange={(e) => setPreset(e.target.value as Preset)}>
                  {PRESETS.map((x) => (
                    <option key={x.value} value={x.value}>
                      {x.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
          {preset === "custom" && (
            <div className="form-grid report-custom-period">
              <Field label="Start" error={errors.start} hint={timeZone ? `In ${timeZone}.` : undefined}>
                {(p) => <input {...p} type="datetime-local" name="start" value={start} onChange={(e) => setStart(e.target.value)} />}
              </Field>
              <Field label="End" error={errors.end} hint={timeZone ? `In ${timeZone}.` : undefined}>
                {(p) => <input {...p} type="datetime-local" name="end" value={end} onChange={(e) => setEnd(e.target.value)} />}
              </Field>
            </div>
          )}
          <FormatPicker value={format} onChange={setFormat} />
        </Card>
        <Card title="Content">
          <DevicePicker selected={devices} onChange={setDevices} single={false} error={errors.devices} readOnly={false} />
          <p className="field-hint report-devices-hint">{devices.length ? `${devices.length} device(s) chosen.` : "None chosen: every device of the factory."}</p>
          <SectionsPicker selected={sections} onChange={setSections} error={errors.sections} />
          {sections.includes("properties") && <PropertiesPicker selected={properties} onChange={setProperties} error={errors.properties} />}
        </Card>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Requesting…" : "Generate report"}
          </button>
          <Link className="btn btn-secondary" to={`${base}/history`}>
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
