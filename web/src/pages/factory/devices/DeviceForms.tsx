// Forms of the devices area: register, import from CSV, edit attributes, rotate credentials.
import { useState, type FormEvent } from "react";
import { api, call } from "../../../api/client";
import {
  credentialsCsv,
  downloadText,
  formatSeconds,
  importDevicesCsv,
  parseReportInterval,
  type Device,
  type DeviceCreated,
  type ImportResult,
} from "../../../api/devices";
import { describeError } from "../../../api/errors";
import { CredentialsPanel } from "../../../components/Credentials";
import { FormActions, TextField, useApiForm } from "../../../components/FormFields";
import { Card, Field, Modal, Notice } from "../../../components/ui";

type Errors = Record<string, string>;

const DEVICE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The online window the API applies (devices/models.py online_window), to show while typing. */
function windowHint(text: string): string {
  const { seconds, problem } = parseReportInterval(text);
  if (problem || seconds === null) {
    return "How often the device sends data; leave empty if unknown. Online while it has reported within 5 min, or 3 intervals + 1 min if longer.";
  }
  return `How often the device sends data. Online while it has reported within ${formatSeconds(Math.max(300, 3 * seconds + 60))} (3 intervals + 1 min, at least 5 min).`;
}

/** The report interval field of the add and edit forms. */
function ReportIntervalField({ value, onChange, error }: { value: string; onChange: (v: string) => void; error?: string }) {
  return (
    <TextField
      label="Report interval (seconds)"
      error={error}
      hint={windowHint(value)}
      name="report_interval_seconds"
      inputMode="numeric"
      autoComplete="off"
      placeholder="e.g. 900"
      value={value}
      onChange={onChange}
    />
  );
}

export function AddDeviceForm({ onCreated, onCancel }: { onCreated: (device: DeviceCreated) => void; onCancel: () => void }) {
  const [deviceId, setDeviceId] = useState("");
  const [name, setName] = useState("");
  const [type, setType] = useState("");
  const [location, setLocation] = useState("");
  const [reportEvery, setReportEvery] = useState("");
  const { errors, formError, busy, submit } = useApiForm();

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const id = deviceId.trim();
    const problems: Errors = {};
    if (!DEVICE_ID_RE.test(id)) problems.device_id = "Use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit.";
    const every = parseReportInterval(reportEvery);
    if (every.problem) problems.report_interval_seconds = every.problem;
    void submit(problems, async () => {
      const created = await call(
        api.POST("/api/v1/devices", {
          body: {
            device_id: id,
            name: name.trim(),
            type: type.trim(),
            location: location.trim(),
            report_interval_seconds: every.seconds,
          },
        }),
      );
      onCreated(created);
    });
  };

  return (
    <Card title="Add device" className="form-card">
      <form onSubmit={onSubmit} noValidate aria-label="Add device">
        {formError && <Notice tone="error">{formError}</Notice>}
        <div className="form-grid">
          <TextField
            label="Device ID"
            error={errors.device_id}
            hint="Used in the device's MQTT topic; cannot be changed later."
            name="device_id"
            autoComplete="off"
            spellCheck={false}
            value={deviceId}
            onChange={setDeviceId}
          />
          <TextField label="Name" error={errors.name} hint="Defaults to the device ID." name="name" autoComplete="off" value={name} onChange={setName} />
          <TextField label="Type" error={errors.type} hint="e.g. energy-meter, compressor." name="type" autoComplete="off" value={type} onChange={setType} />
          <TextField label="Location" error={errors.location} name="location" autoComplete="off" value={location} onChange={setLocation} />
          <ReportIntervalField value={reportEvery} onChange={setReportEvery} error={errors.report_interval_seconds} />
        </div>
        <FormActions label="Create device" busyLabel="Creating…" busy={busy} onCancel={onCancel} />
      </form>
    </Card>
  );
}

/** The one-time display of new credentials. */
export function CredentialsModal({
  device,
  title,
  onClose,
  onOpen,
}: {
  device: DeviceCreated;
  title: string;
  onClose: () => void;
  onOpen?: () => void;
}) {
  return (
    <Modal title={title} onClose={onClose}>
      <p className="cred-device">
        <strong>{device.name}</strong> <code>{device.device_id}</code>
      </p>
      <CredentialsPanel mqtt={device.mqtt} />
      <div className="form-actions">
        <button type="button" className="btn btn-primary" onClick={onClose}>
          I have stored them
        </button>
        <button
          type="button"
          className="btn btn-secondary"
          onClick={() => downloadText(`${device.device_id}-mqtt-credentials.csv`, credentialsCsv([device]))}
        >
          Download as CSV
        </button>
        {onOpen && (
          <button type="button" className="btn btn-link" onClick={onOpen}>
            Open device page
          </button>
        )}
      </div>
    </Modal>
  );
}

/** "Value error, a device id is ..." (Pydantic's wording) -> "A device id is ...". */
function readableProblem(message: string): string {
  const text = message.replace(/(^|;\s*)(Value|Assertion) error,\s*/g, "$1");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const CSV_TEMPLATE =
  "device_id,name,type,location,report_interval_seconds\npress-07,Press 7,hydraulic-press,Hall B,\nmeter-12,Meter 12,energy-meter,Hall B,900\n";

export function ImportCsvModal({ onClose, onImported }: { onClose: () => void; onImported: () => void }) {
  const [text, setText] = useState("");
  const [fileName, setFileName] = useState<string | null>(null);
  const [result, setResult] = useState<ImportResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const onFile = async (file: File | undefined) => {
    if (!file) return;
    setFileName(file.name);
    setText(await file.text());
  };

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    if (!text.trim()) {
      setError("Choose a CSV file or paste its lines.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const res = await importDevicesCsv(text);
      setResult(res);
      onImported();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-");

  return (
    <Modal title="Import devices from CSV" onClose={onClose}>
      {result ? (
        <div className="import-result" data-testid="import-result">
          <div className="import-counts">
            <div className="stat stat-good">
              <span className="stat-value">{result.created.length}</span>
              <span className="stat-label">created</span>
            </div>
            <div className="stat">
              <span className="stat-value">{result.updated}</span>
              <span className="stat-label">updated</span>
            </div>
            <div className={`stat${result.errors.length ? " stat-bad" : ""}`}>
              <span className="stat-value">{result.errors.length}</span>
              <span className="stat-label">{result.errors.length === 1 ? "line refused" : "lines refused"}</span>
            </div>
          </div>
          {result.errors.length > 0 && (
            <div className="table-wrap import-errors">
              <table className="table" aria-label="Import errors">
                <thead>
                  <tr>
                    <th className="num">Line</th>
                    <th>Device ID</th>
                    <th>Problem</th>
                  </tr>
                </thead>
                <tbody>
                  {result.errors.map((err) => (
                    <tr key={`${err.line}-${err.device_id}`}>
                      <td className="num mono">{err.line}</td>
                      <td className="mono">{err.device_id || "—"}</td>
                      <td>{readableProblem(err.message)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {result.created.length > 0 && (
            <div className="notice notice-warning" role="status">
              <div className="notice-body">
                <strong className="notice-title">Download the new devices' MQTT credentials now</strong>
                <div>They are shown only once; FactoryOps keeps only a hash of each password.</div>
              </div>
            </div>
          )}
          <div className="form-actions">
            {result.created.length > 0 && (
              <button
                type="button"
                className="btn btn-primary"
                onClick={() => downloadText(`factoryops-device-credentials-${stamp}.csv`, credentialsCsv(result.created))}
              >
                Download credentials (CSV)
              </button>
            )}
            <button type="button" className="btn btn-secondary" onClick={onClose}>
              Done
            </button>
          </div>
        </div>
      ) : (
        <form onSubmit={onSubmit} noValidate aria-label="Import devices">
          {error && <Notice tone="error" title="The file was not imported">{error}</Notice>}
          <p className="muted small">
            One device per line with the header <code>device_id,name,type,location</code> and, if you know it, the column{" "}
            <code>report_interval_seconds</code> (how often the device sends data). New ids are created with their own MQTT
            credentials; known ids get the non-empty values of their line.
          </p>
          <Field label="CSV file">
            {(p) => (
              <input
                {...p}
                type="file"
                name="csv_file"
                accept=".csv,text/csv,text/plain"
                className="file-input"
                onChange={(e) => void onFile(e.target.files?.[0])}
              />
            )}
          </Field>
          <Field label="Or paste the lines" hint={fileName ? `Loaded from ${fileName}; you can edit it here.` : undefined}>
            {(p) => (
              <textarea
                {...p}
                name="csv_text"
                rows={7}
                className="mono"
                spellCheck={false}
                placeholder={CSV_TEMPLATE}
                value={text}
                onChange={(e) => setText(e.target.value)}
              />
            )}
          </Field>
          <FormActions label="Import" busyLabel="Importing…" busy={busy} onCancel={onClose}>
            <button type="button" className="btn btn-link" onClick={() => downloadText("devices-template.csv", CSV_TEMPLATE)}>
              Download a template
            </button>
          </FormActions>
        </form>
      )}
    </Modal>
  );
}

export function EditDeviceModal({ device, onSaved, onClose }: { device: Device; onSaved: (d: Device) => void; onClose: () => void }) {
  const [name, setName] = useState(device.name);
  const [type, setType] = useState(device.type);
  const [location, setLocation] = useState(device.location);
  const [enabled, setEnabled] = useState(device.enabled);
  const [reportEvery, setReportEvery] = useState(device.report_interval_seconds == null ? "" : String(device.report_interval_seconds));
  const { errors, formError, busy, submit } = useApiForm();

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const every = parseReportInterval(reportEvery);
    const problems: Errors = every.problem ? { report_interval_seconds: every.problem } : {};
    void submit(problems, async () => {
      const saved = await call(
        api.PATCH("/api/v1/devices/{device_id}", {
          params: { path: { device_id: device.device_id } },
          body: {
            name: name.trim(),
            type: type.trim(),
            location: location.trim(),
            enabled,
            report_interval_seconds: every.seconds,
          },
        }),
      );
      onSaved(saved);
    });
  };

  return (
    <Modal title={`Edit ${device.device_id}`} onClose={onClose}>
      <form onSubmit={onSubmit} noValidate aria-label="Edit device">
        {formError && <Notice tone="error">{formError}</Notice>}
        <TextField label="Name" error={errors.name} name="name" value={name} onChange={setName} />
        <TextField label="Type" error={errors.type} name="type" value={type} onChange={setType} />
        <TextField label="Location" error={errors.location} name="location" value={location} onChange={setLocation} />
        <ReportIntervalField value={reportEvery} onChange={setReportEvery} error={errors.report_interval_seconds} />
        <label className="checkbox">
          <input type="checkbox" name="enabled" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
          <span>Enabled</span>
        </label>
        <p className="field-hint">A disabled device's messages are refused by the platform; its history is kept.</p>
        <FormActions label="Save" busyLabel="Saving…" busy={busy} onCancel={onClose} />
      </form>
    </Modal>
  );
}

export function RotateCredentialsModal({ device, onClose }: { device: Device; onClose: () => void }) {
  const [rotated, setRotated] = useState<DeviceCreated | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const rotate = async () => {
    setBusy(true);
    setError(null);
    try {
      setRotated(
        await call(api.POST("/api/v1/devices/{device_id}/rotate-credentials", { params: { path: { device_id: device.device_id } } })),
      );
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  if (rotated) return <CredentialsModal device={rotated} title={`New MQTT credentials for ${device.device_id}`} onClose={onClose} />;
  return (
    <Modal title={`Rotate credentials of ${device.device_id}`} onClose={onClose}>
      {error && <Notice tone="error">{error}</Notice>}
      <p>
        A new MQTT password is issued and the current one stops working at once. The device cannot publish until it is
        configured with the new password.
      </p>
      <div className="form-actions">
        <button type="button" className="btn btn-danger" disabled={busy} onClick={() => void rotate()}>
          {busy ? "Rotating…" : "Rotate credentials"}
        </button>
        <button type="button" className="btn btn-secondary" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Modal>
  );
}
