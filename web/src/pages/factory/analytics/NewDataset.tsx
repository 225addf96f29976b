// "/f/:slug/analytics/datasets/new": export telemetry into a dataset. Devices are found by
// searching the registry; the properties offered are those the chosen devices have reported
// (none ticked = all of them). Times are entered in the factory's time zone.
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { AGGREGATES, createDataset, RESOLUTIONS, type Aggregate, type Resolution } from "../../../api/analytics";
import { api, call } from "../../../api/client";
import { ApiError, formProblems } from "../../../api/errors";
import { Badge, Card, Field, Notice, PageHeader } from "../../../components/ui";
import { fromLocalInput, toLocalInput } from "../../../lib/telemetryFormat";
import { DevicePicker } from "../rules/pickers";
import { useAnalytics, useBase, useTimeZone } from "./common";

/** Where the API's refusals (by code) belong in the form. */
const CODE_FIELDS: Record<string, string> = {
  invalid_range: "end",
  range_too_long: "start",
  no_devices: "device_ids",
  unknown_devices: "device_ids",
  no_properties: "properties",
  unknown_properties: "properties",
  too_many_series: "properties",
  invalid_resolution: "resolution",
};

export function NewDataset() {
  const navigate = useNavigate();
  const base = useBase();
  const timeZone = useTimeZone();
  const { mayChange, blocked, refresh } = useAnalytics();
  const [name, setName] = useState("");
  const [deviceIds, setDeviceIds] = useState<string[]>([]);
  const [properties, setProperties] = useState<string[]>([]);
  const [offered, setOffered] = useState<Map<string, string[]>>(new Map());
  const [start, setStart] = useState(() => toLocalInput(Date.now() - 7 * 86_400_000, timeZone).slice(0, 16));
  const [end, setEnd] = useState(() => toLocalInput(Date.now(), timeZone).slice(0, 16));
  const [resolution, setResolution] = useState<Resolution>("15m");
  const [aggregate, setAggregate] = useState<Aggregate>("mean");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // The properties each chosen device has reported (asked once per device).
  useEffect(() => {
    const missing = deviceIds.filter((d) => !offered.has(d));
    if (!missing.length) return;
    let cancelled = false;
    Promise.all(
      missing.map((d) =>
        call(api.GET("/api/v1/devices/{device_id}/properties", { params: { path: { device_id: d } } }))
          .then((props) => [d, props.map((p) => p.property_name)] as const)
          .catch(() => [d, [] as string[]] as const),
      ),
    ).then((found) => {
      if (cancelled) return;
      setOffered((prev) => {
        const next = new Map(prev);
        for (const [d, props] of found) next.set(d, props);
        return next;
      });
    });
    return () => {
      cancelled = true;
    };
  }, [deviceIds, offered]);

  const available = useMemo(() => {
    const names = new Set<string>();
    for (const d of deviceIds) for (const p of offered.get(d) ?? []) names.add(p);
    return [...names].sort();
  }, [deviceIds, offered]);
  const loadingProps = deviceIds.some((d) => !offered.has(d));

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!name.trim()) problems.name = "Give the dataset a name.";
    if (!deviceIds.length) problems.device_ids = "Choose at least one device.";
    const startMs = fromLocalInput(start, timeZone);
    const endMs = fromLocalInput(end, timeZone);
    if (Number.isNaN(startMs)) problems.start = "Enter the start of the range.";
    if (Number.isNaN(endMs)) problems.end = "Enter the end of the range.";
    else if (!Number.isNaN(startMs) && endMs <= startMs) problems.end = "The end must be after the start.";
    setErrors(problems);
    if (Object.keys(problems).length) {
      setFormError("Some fields need attention; see the messages below.");
      return;
    }
    setFormError(null);
    setBusy(true);
    try {
      const chosen = properties.filter((p) => available.includes(p));
      const res = await createDataset({
        name: name.trim(),
        device_ids: deviceIds,
        properties: chosen.length ? chosen : null,
        start: new Date(startMs).toISOString(),
        end: new Date(endMs).toISOString(),
        resolution,
        aggregate,
      });
      navigate(`${base}/datasets/${encodeURIComponent(res.dataset.id)}`, { state: { reused: res.reused, requested: true } });
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
        <PageHeader title="New dataset" actions={<Badge tone="neutral">Read only</Badge>} />
        <Notice tone="info" title="Exporting datasets needs the analytics permission">
          Ask a super admin of the factory to grant it. <Link to={`${base}/datasets`}>Back to the datasets</Link>
        </Notice>
      </>
    );
  }

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to={`${base}/datasets`}>Datasets</Link> <span aria-hidden="true">/</span> <span>New dataset</span>
      </nav>
      <PageHeader title="New dataset" subtitle="An immutable snapshot of the chosen telemetry; the same request again reuses the snapshot." />
      <form onSubmit={onSubmit} noValidate aria-label="New dataset" className="analytics-form">
        {formError && (
          <Notice tone="error" title="The dataset was not exported" onClose={() => setFormError(null)}>
            {formError}
          </Notice>
        )}
        <Card title="What to export">
          <Field label="Name" error={errors.name} hint="e.g. Main meter, March, 15 min.">
            {(p) => <input {...p} name="name" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
          <DevicePicker selected={deviceIds} onChange={setDeviceIds} single={false} error={errors.device_ids} readOnly={false} />
          <fieldset className={`analytics-props field${errors.properties ? " field-invalid" : ""}`} aria-label="Properties">
            <legend>Properties</legend>
            {!deviceIds.length && <p className="muted small">Choose devices first; their reported properties appear here.</p>}
            {deviceIds.length > 0 && loadingProps && <p className="muted small">Loading the devices' properties…</p>}
            {deviceIds.length > 0 && !loadingProps && !available.length && <p className="muted small">These devices have not reported any property yet.</p>}
            {available.length > 0 && (
              <div className="checkbox-grid">
                {available.map((p) => (
                  <label key={p} className="checkbox">
                    <input
                      type="checkbox"
                      checked={properties.includes(p)}
                      onChange={(e) => setProperties((cur) => (e.target.checked ? [...cur, p] : cur.filter((x) => x !== p)))}
                    />
                    <span className="mono">{p}</span>
                  </label>
                ))}
              </div>
            )}
            {errors.properties ? (
              <p className="field-error">{errors.properties}</p>
            ) : (
              <p className="field-hint">None ticked: every property the chosen devices report.</p>
            )}
          </fieldset>
        </Card>
        <Card title="Range and resolution">
          <div className="form-grid">
            <Field label="Start" error={errors.start} hint={timeZone ? `In ${timeZone}.` : undefined}>
              {(p) => <input {...p} type="datetime-local" name="start" value={start} onChange={(e) => setStart(e.target.value)} />}
            </Field>
            <Field label="End" error={errors.end} hint={timeZone ? `In ${timeZone}.` : undefined}>
              {(p) => <input {...p} type="datetime-local" name="end" value={end} onChange={(e) => setEnd(e.target.value)} />}
            </Field>
            <Field label="Resolution" error={errors.resolution}>
              {(p) => (
                <select {...p} name="resolution" value={resolution} onChange={(e) => setResolution(e.target.value as Resolution)}>
                  {RESOLUTIONS.map((r) => (
                    <option key={r.value} value={r.value}>
                      {r.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Aggregate" error={errors.aggregate} hint={resolution === "raw" ? "Raw points are not combined." : "How the values in each interval are combined."}>
              {(p) => (
                <select {...p} name="aggregate" value={aggregate} disabled={resolution === "raw"} onChange={(e) => setAggregate(e.target.value as Aggregate)}>
                  {AGGREGATES.map((a) => (
                    <option key={a.value} value={a.value}>
                      {a.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
        </Card>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy || Boolean(blocked)} title={blocked ?? undefined}>
            {busy ? "Starting the export…" : "Export dataset"}
          </button>
          <Link className="btn btn-secondary" to={`${base}/datasets`}>
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
