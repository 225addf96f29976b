// "/f/:slug/reports/schedules/new" and ".../schedules/:scheduleId": a scheduled report (super
// admin). Recipients are typed one per line or separated by commas and checked before saving;
// the devices, sections and properties are those of the builder.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { ApiError, describeError, formProblems } from "../../../api/errors";
import {
  CADENCES,
  createSchedule,
  listSchedules,
  parseRecipients,
  SECTIONS,
  updateSchedule,
  type Cadence,
  type Format,
  type Schedule,
  type Section,
} from "../../../api/reports";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Card, Field, Notice, PageHeader, Spinner } from "../../../components/ui";
import { DevicePicker } from "../rules/pickers";
import { FormatPicker, PropertiesPicker, SectionsPicker, useBase, useTimeZone } from "./common";

const ALL_SECTIONS = SECTIONS.map((s) => s.value);

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

export function ScheduleForm() {
  const { scheduleId } = useParams();
  const editing = Boolean(scheduleId);
  const navigate = useNavigate();
  const base = useBase();
  const timeZone = useTimeZone();
  const { can } = useAuth();
  const mayChange = can("reports");
  const [loaded, setLoaded] = useState<Schedule | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [cadence, setCadence] = useState<Cadence>("weekly");
  const [format, setFormat] = useState<Format>("pdf");
  const [recipients, setRecipients] = useState("");
  const [devices, setDevices] = useState<string[]>([]);
  const [sections, setSections] = useState<Section[]>([...ALL_SECTIONS]);
  const [properties, setProperties] = useState<string[]>([]);
  const [enabled, setEnabled] = useState(true);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!scheduleId || !mayChange) return;
    listSchedules()
      .then((items) => {
        const found = items.find((s) => s.id === scheduleId);
        if (!found) {
          setLoadError("This schedule does not exist any more.");
          return;
        }
        setLoaded(found);
        setName(found.name);
        setCadence(found.cadence as Cadence);
        setFormat(found.format as Format);
        setRecipients(found.recipients.join("\n"));
        setDevices(strings(found.params.devices));
        const chosen = strings(found.params.sections).filter((s): s is Section => (ALL_SECTIONS as string[]).includes(s));
        setSections(chosen.length ? chosen : [...ALL_SECTIONS]);
        setProperties(strings(found.params.properties));
        setEnabled(found.enabled);
      })
      .catch((err: unknown) => setLoadError(describeError(err)));
  }, [scheduleId, mayChange]);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!name.trim()) problems.name = "Give the schedule a name.";
    const parsed = parseRecipients(recipients);
    if (parsed.invalid.length) problems.recipients = `Not an email address: ${parsed.invalid.join(", ")}.`;
    else if (!parsed.emails.length) problems.recipients = "Add at least one recipient.";
    else if (parsed.emails.length > 50) problems.recipients = "At most 50 recipients.";
    if (!sections.length) problems.sections = "Choose at least one section.";
    setErrors(problems);
    if (Object.keys(problems).length) {
      setFormError("Some fields need attention; see the messages below.");
      return;
    }
    setFormError(null);
    setBusy(true);
    const body = {
      name: name.trim(),
      cadence,
      format,
      recipients: parsed.emails,
      devices: devices.length ? devices : null,
      sections,
      properties: sections.includes("properties") ? properties : [],
      enabled,
    };
    try {
      if (scheduleId) await updateSchedule(scheduleId, body);
      else await createSchedule(body);
      navigate(`${base}/schedules`);
    } catch (err) {
      const { fields, message } = formProblems(err);
      if (err instanceof ApiError && err.code === "unknown_devices" && !fields.devices) fields.devices = err.message;
      setErrors(fields);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  const title = editing ? "Edit schedule" : "New schedule";
  const crumbs = (
    <nav className="breadcrumb" aria-label="Breadcrumb">
      <Link to={`${base}/schedules`}>Schedules</Link> <span aria-hidden="true">/</span> <span>{editing ? loaded?.name ?? "Schedule" : "New schedule"}</span>
    </nav>
  );

  if (!mayChange) {
    return (
      <>
        {crumbs}
        <PageHeader title={title} actions={<Badge tone="neutral">Read only</Badge>} />
        <Notice tone="info" title="Scheduling reports needs the reports permission">
          Ask a super admin of the factory to grant it. <Link to={`${base}/schedules`}>Back to the schedules</Link>
        </Notice>
      </>
    );
  }
  if (loadError) {
    return (
      <>
        {crumbs}
        <PageHeader title={title} />
        <Notice tone="error" title="Could not load the schedule">
          {loadError} <Link to={`${base}/schedules`}>Back to the schedules</Link>
        </Notice>
      </>
    );
  }
  if (editing && !loaded) return <Spinner label="Loading the schedule…" />;

  const period = CADENCES.find((c) => c.value === cadence)?.period ?? "";

  return (
    <>
      {crumbs}
      <PageHeader title={title} subtitle="The report of the period that just ended, generated and emailed with the file attached." />
      <form onSubmit={onSubmit} noValidate aria-label={title} className="report-form">
        {formError && (
          <Notice tone="error" title="The schedule was not saved" onClose={() => setFormError(null)}>
            {formError}
          </Notice>
        )}
        <Card title="Schedule">
          <div className="form-grid">
            <Field label="Name" error={errors.name} hint="Also the report's title and the email's subject.">
              {(p) => <input {...p} name="name" autoComplete="off" maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />}
            </Field>
            <Field label="Cadence" error={errors.cadence} hint={`Covers ${period}; runs an hour after it ends${timeZone ? ` (${timeZone})` : ""}.`}>
              {(p) => (
                <select {...p} name="cadence" value={cadence} onChange={(e) => setCadence(e.target.value as Cadence)}>
                  {CADENCES.map((c) => (
                    <option key={c.value} value={c.value}>
                      {c.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
          <FormatPicker value={format} onChange={setFormat} />
          <Field label="Recipients" error={errors.recipients} hint="Email addresses, one per line or separated by commas.">
            {(p) => (
              <textarea
                {...p}
                name="recipients"
                rows={3}
                placeholder="director@plant.example"
                value={recipients}
                onChange={(e) => setRecipients(e.target.value)}
              />
            )}
          </Field>
          <label className="checkbox report-enabled">
            <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
            <span>Enabled</span>
          </label>
        </Card>
        <Card title="Content">
          <DevicePicker selected={devices} onChange={setDevices} single={false} error={errors.devices} readOnly={false} />
          <p className="field-hint report-devices-hint">{devices.length ? `${devices.length} device(s) chosen.` : "None chosen: every device of the factory."}</p>
          <SectionsPicker selected={sections} onChange={setSections} error={errors.sections} />
          {sections.includes("properties") && <PropertiesPicker selected={properties} onChange={setProperties} error={errors.properties} />}
        </Card>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Saving…" : editing ? "Save schedule" : "Create schedule"}
          </button>
          <Link className="btn btn-secondary" to={`${base}/schedules`}>
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
