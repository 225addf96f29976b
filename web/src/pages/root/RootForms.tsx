// Forms of the platform console: create a factory with its first super admin, add another
// super admin to a factory.
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import type { PlatformFactory, User } from "../../api/types";
import { FormActions, GeneratedPasswordField, newAccountProblems, TextField, useApiForm } from "../../components/FormFields";
import { Card, Field, Modal, Notice } from "../../components/ui";
import { emailProblem, passwordProblem, slugify } from "../../lib/format";
import { COMMON_TIMEZONES, defaultTimezone } from "./timezones";

type Errors = Record<string, string>;
const OTHER = "__other__";


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
  const { errors, formError, busy, submit } = useApiForm();

  const timezone = tzChoice === OTHER ? tzOther.trim() : tzChoice;

  const onName = (value: string) => {
    setName(value);
    if (!slugEdited) setSlug(slugify(value));
  };

  const onSlug = (value: string) => {
    setSlugEdited(true);
    setSlug(value);
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const problems: Errors = {};
    if (!name.trim()) problems.name = "Enter the factory's name.";
    if (!/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(slug)) problems.slug = "Use lower-case letters, digits and dashes, starting and ending with a letter or digit.";
    if (!timezone) problems.timezone = "Choose or type an IANA time zone, e.g. Europe/Berlin.";
    const emailIssue = emailProblem(adminEmail);
    if (emailIssue) problems["super_admin.email"] = emailIssue;
    const pwIssue = passwordProblem(adminPassword, adminEmail);
    if (pwIssue) problems["super_admin.password"] = pwIssue;
    void submit(
      problems,
      async () => {
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
      },
      (fields) => {
        // The API may name the nested super admin's fields without their "super_admin." prefix.
        for (const key of ["email", "full_name", "password"]) {
          const problem = fields[key];
          if (problem && !fields[`super_admin.${key}`]) fields[`super_admin.${key}`] = problem;
        }
      },
    );
  };

  return (
    <Card title="Create factory" className="form-card">
      <form onSubmit={onSubmit} noValidate aria-label="Create factory">
        {formError && <Notice tone="error">{formError}</Notice>}
        <h3 className="form-section">Factory</h3>
        <div className="form-grid">
          <TextField label="Name" error={errors.name} name="name" value={name} onChange={onName} />
          <TextField label="Slug" error={errors.slug} hint="Used in the sign-in address: /f/slug/login." name="slug" value={slug} spellCheck={false} onChange={onSlug} />
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
          <TextField label="Description" error={errors.description} name="description" placeholder="Optional, e.g. Rolling mill, line 2" value={description} onChange={setDescription} />
        </div>
        <h3 className="form-section">Initial super admin</h3>
        <div className="form-grid">
          <TextField label="Email" error={errors["super_admin.email"]} name="admin_email" type="email" autoComplete="off" value={adminEmail} onChange={setAdminEmail} />
          <TextField label="Full name" error={errors["super_admin.full_name"]} name="admin_full_name" autoComplete="off" value={adminName} onChange={setAdminName} />
          <GeneratedPasswordField label="Initial password" autoComplete="new-password" value={adminPassword} onChange={setAdminPassword} error={errors["super_admin.password"]} />
        </div>
        <FormActions label="Create factory" busyLabel="Creating…" busy={busy} onCancel={onCancel} />
      </form>
    </Card>
  );
}

export function AddSuperAdminModal({ factory, onAdded, onClose }: { factory: PlatformFactory; onAdded: (u: User) => void; onClose: () => void }) {
  const [email, setEmail] = useState("");
  const [fullName, setFullName] = useState("");
  const [password, setPassword] = useState("");
  const { errors, formError, busy, submit } = useApiForm();

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit(newAccountProblems(email, password), async () => {
      const user = await call(
        api.POST("/api/v1/platform/factories/{factory_id}/super-admins", {
          params: { path: { factory_id: factory.id } },
          body: { email: email.trim(), full_name: fullName.trim(), password },
        }),
      );
      onAdded(user);
    });
  };

  return (
    <Modal title={`Add a super admin to ${factory.name}`} onClose={onClose}>
      <form onSubmit={onSubmit} noValidate aria-label="Add super admin">
        {formError && <Notice tone="error">{formError}</Notice>}
        <TextField label="Email" error={errors.email} name="email" type="email" autoComplete="off" value={email} onChange={setEmail} />
        <TextField label="Full name" error={errors.full_name} name="full_name" autoComplete="off" value={fullName} onChange={setFullName} />
        <GeneratedPasswordField label="Initial password" autoComplete="new-password" value={password} onChange={setPassword} error={errors.password} />
        <FormActions label="Add super admin" busyLabel="Adding…" busy={busy} onCancel={onClose} />
      </form>
    </Modal>
  );
}
