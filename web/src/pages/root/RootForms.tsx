// Forms of the platform console: create a factory with its first super admin, add another
// super admin to a factory.
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import { formProblems } from "../../api/errors";
import type { PlatformFactory, User } from "../../api/types";
import { Card, Field, Modal, Notice } from "../../components/ui";
import { emailProblem, generatePassword, passwordProblem, slugify } from "../../lib/format";
import { COMMON_TIMEZONES, defaultTimezone } from "./timezones";

type Errors = Record<string, string>;
const OTHER = "__other__";


function PasswordInput({ label, value, onChange, error }: { label: string; value: string; onChange: (v: string) => void; error?: string }) {
  return (
    <Field label={label} error={error} hint="At least 10 characters with a letter and a digit.">
      {(p) => (
        <div className="input-with-button">
          <input {...p} type="text" autoComplete="new-password" spellCheck={false} value={value} onChange={(e) => onChange(e.target.value)} />
          <button type="button" className="btn btn-secondary btn-sm" onClick={() => onChange(generatePassword())}>
            Generate
          </button>
        </div>
      )}
    </Field>
  );
}

export function CreateFactoryForm({ onCreated, onCancel }: { onCreated: (f: PlatformFactory) => void; onCancel: () => void }) {
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [slugEdited, setSlugEdited] = useState(false);
  const [tzChoice, setTzChoice] = useState(defaultTimezone);
  const [tzOther, setTzOther] = useState("");
  const [description, setDescription] = useState("");
  const [adminEmail, setAdminEmail] = useState("");
  const [adminName, setAdminName] = useState("");
  const [adminPassword, setAdminPassword] = useState("");
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const timezone = tzChoice === OTHER ? tzOther.trim() : tzChoice;

  const onName = (value: string) => {
    setName(value);
    if (!slugEdited) setSlug(slugify(value));
  };

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: Errors = {};
    if (!name.trim()) problems.name = "Enter the factory's name.";
    if (!/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(slug)) problems.slug = "Use lower-case letters, digits and dashes, starting and ending with a letter or digit.";
    if (!timezone) problems.timezone = "Choose or type an IANA time zone, e.g. Europe/Berlin.";
    const emailIssue = emailProblem(adminEmail);
    if (emailIssue) problems["super_admin.email"] = emailIssue;
    const pwIssue = passwordProblem(adminPassword, adminEmail);
    if (pwIssue) problems["super_admin.password"] = pwIssue;
    setErrors(problems);
    setFormError(null);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const factory = await call(
        api.POST("/api/v1/platform/factories", {
          body: {
            name: name.trim(),
            slug,
            timezone,
            description: description.trim(),
            super_admin: { email: adminEmail.trim(), full_name: adminName.trim(), password: adminPassword },
          },
        }),
      );
      onCreated(factory);
    } catch (err) {
      const { fields, message } = formProblems(err);
      // The API may name the nested super admin's fields without their "super_admin." prefix.
      for (const key of ["email", "full_name", "password"]) {
        const problem = fields[key];
        if (problem && !fields[`super_admin.${key}`]) fields[`super_admin.${key}`] = problem;
      }
      setErrors(fields);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Create factory" className="form-card">
      <form onSubmit={onSubmit} noValidate aria-label="Create factory">
        {formError && <Notice tone="error">{formError}</Notice>}
        <h3 className="form-section">Factory</h3>
        <div className="form-grid">
          <Field label="Name" error={errors.name}>
            {(p) => <input {...p} name="name" value={name} onChange={(e) => onName(e.target.value)} />}
          </Field>
          <Field label="Slug" error={errors.slug} hint="Used in the sign-in address: /f/slug/login.">
            {(p) => (
              <input
                {...p}
                name="slug"
                value={slug}
                spellCheck={false}
                onChange={(e) => {
                  setSlugEdited(true);
                  setSlug(e.target.value);
                }}
              />
            )}
          </Field>
          <Field label="Time zone" error={errors.timezone}>
            {(p) => (
              <div className="stack">
                <select {...p} name="timezone" value={tzChoice} onChange={(e) => setTzChoice(e.target.value)}>
                  {COMMON_TIMEZONES.map((tz) => (
                    <option key={tz} value={tz}>
                      {tz.replace(/_/g, " ")}
                    </option>
                  ))}
                  <option value={OTHER}>Other (type an IANA name)…</option>
                </select>
                {tzChoice === OTHER && (
                  <input name="timezone_other" aria-label="Time zone name" placeholder="e.g. America/Argentina/Buenos_Aires" value={tzOther} onChange={(e) => setTzOther(e.target.value)} />
                )}
              </div>
            )}
          </Field>
          <Field label="Description" error={errors.description}>
            {(p) => <input {...p} name="description" placeholder="Optional, e.g. Rolling mill, line 2" value={description} onChange={(e) => setDescription(e.target.value)} />}
          </Field>
        </div>
        <h3 className="form-section">Initial super admin</h3>
        <div className="form-grid">
          <Field label="Email" error={errors["super_admin.email"]}>
            {(p) => <input {...p} name="admin_email" type="email" autoComplete="off" value={adminEmail} onChange={(e) => setAdminEmail(e.target.value)} />}
          </Field>
          <Field label="Full name" error={errors["super_admin.full_name"]}>
            {(p) => <input {...p} name="admin_full_name" autoComplete="off" value={adminName} onChange={(e) => setAdminName(e.target.value)} />}
          </Field>
          <PasswordInput label="Initial password" value={adminPassword} onChange={setAdminPassword} error={errors["super_admin.password"]} />
        </div>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Creating…" : "Create factory"}
          </button>
          <button type="button" className="btn btn-secondary" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Card>
  );
}

export function AddSuperAdminModal({ factory, onAdded, onClose }: { factory: PlatformFactory; onAdded: (u: User) => void; onClose: () => void }) {
  const [email, setEmail] = useState("");
  const [fullName, setFullName] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: Errors = {};
    const emailIssue = emailProblem(email);
    if (emailIssue) problems.email = emailIssue;
    const pwIssue = passwordProblem(password, email);
    if (pwIssue) problems.password = pwIssue;
    setErrors(problems);
    setFormError(null);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const user = await call(
        api.POST("/api/v1/platform/factories/{factory_id}/super-admins", {
          params: { path: { factory_id: factory.id } },
          body: { email: email.trim(), full_name: fullName.trim(), password },
        }),
      );
      onAdded(user);
    } catch (err) {
      const { fields, message } = formProblems(err);
      setErrors(fields);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title={`Add a super admin to ${factory.name}`} onClose={onClose}>
      <form onSubmit={onSubmit} noValidate aria-label="Add super admin">
        {formError && <Notice tone="error">{formError}</Notice>}
        <Field label="Email" error={errors.email}>
          {(p) => <input {...p} name="email" type="email" autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />}
        </Field>
        <Field label="Full name" error={errors.full_name}>
          {(p) => <input {...p} name="full_name" autoComplete="off" value={fullName} onChange={(e) => setFullName(e.target.value)} />}
        </Field>
        <PasswordInput label="Initial password" value={password} onChange={setPassword} error={errors.password} />
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Adding…" : "Add super admin"}
          </button>
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}
