// Forms of the user management page: create, edit role and permissions, reset password.
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import { formProblems } from "../../api/errors";
import type { FactoryRole, User } from "../../api/types";
import { PermissionPicker } from "../../components/PermissionPicker";
import { Card, Field, Modal, Notice } from "../../components/ui";
import { emailProblem, generatePassword, passwordProblem } from "../../lib/format";
import { usePermissionFlags } from "../../lib/usePermissionFlags";

type Errors = Record<string, string>;

const ROLE_HINTS: Record<FactoryRole, string> = {
  admin: "Sees everything; changes only the areas ticked below.",
  super_admin: "Full control of the factory, including its users.",
};


function RoleSelect({ value, onChange, error, disabled }: { value: FactoryRole; onChange: (r: FactoryRole) => void; error?: string; disabled?: boolean }) {
  return (
    <Field label="Role" error={error} hint={disabled ? "You cannot change your own role." : ROLE_HINTS[value]}>
      {(p) => (
        <select {...p} name="role" value={value} disabled={disabled} onChange={(e) => onChange(e.target.value as FactoryRole)}>
          <option value="admin">Admin</option>
          <option value="super_admin">Super admin</option>
        </select>
      )}
    </Field>
  );
}

export function CreateUserForm({ onCreated, onCancel }: { onCreated: (user: User) => void; onCancel: () => void }) {
  const flags = usePermissionFlags();
  const [email, setEmail] = useState("");
  const [fullName, setFullName] = useState("");
  const [role, setRole] = useState<FactoryRole>("admin");
  const [permissions, setPermissions] = useState<string[]>([]);
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
        api.POST("/api/v1/users", {
          body: { email: email.trim(), full_name: fullName.trim(), role, permissions: role === "super_admin" ? [] : permissions, password },
        }),
      );
      onCreated(user);
    } catch (err) {
      const { fields, message } = formProblems(err);
      setErrors(fields);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Add user" className="form-card">
      <form onSubmit={onSubmit} noValidate aria-label="Add user">
        {formError && <Notice tone="error">{formError}</Notice>}
        <div className="form-grid">
          <Field label="Email" error={errors.email}>
            {(p) => <input {...p} name="email" type="email" autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />}
          </Field>
          <Field label="Full name" error={errors.full_name}>
            {(p) => <input {...p} name="full_name" autoComplete="off" value={fullName} onChange={(e) => setFullName(e.target.value)} />}
          </Field>
          <RoleSelect value={role} onChange={setRole} error={errors.role} />
          <Field label="Initial password" error={errors.password} hint="At least 10 characters with a letter and a digit. Share it with them over a trusted channel.">
            {(p) => (
              <div className="input-with-button">
                <input {...p} name="password" type="text" autoComplete="new-password" spellCheck={false} value={password} onChange={(e) => setPassword(e.target.value)} />
                <button type="button" className="btn btn-secondary btn-sm" onClick={() => setPassword(generatePassword())}>
                  Generate
                </button>
              </div>
            )}
          </Field>
        </div>
        <PermissionPicker flags={flags} value={permissions} onChange={setPermissions} superAdmin={role === "super_admin"} error={errors.permissions} />
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Creating…" : "Create user"}
          </button>
          <button type="button" className="btn btn-secondary" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Card>
  );
}

export function EditUserModal({ user, isSelf, onSaved, onClose }: { user: User; isSelf: boolean; onSaved: (user: User) => void; onClose: () => void }) {
  const flags = usePermissionFlags();
  const [fullName, setFullName] = useState(user.full_name);
  const [role, setRole] = useState<FactoryRole>(user.role === "super_admin" ? "super_admin" : "admin");
  const [permissions, setPermissions] = useState<string[]>(user.permissions);
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setFormError(null);
    try {
      const body = isSelf
        ? { full_name: fullName.trim() }
        : { full_name: fullName.trim(), role, permissions: role === "super_admin" ? [] : permissions };
      const saved = await call(api.PATCH("/api/v1/users/{user_id}", { params: { path: { user_id: user.id } }, body }));
      onSaved(saved);
    } catch (err) {
      const { fields, message } = formProblems(err);
      setErrors(fields);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title={`Edit ${user.email}`} onClose={onClose}>
      <form onSubmit={onSubmit} noValidate aria-label="Edit user">
        {formError && <Notice tone="error">{formError}</Notice>}
        <Field label="Full name" error={errors.full_name}>
          {(p) => <input {...p} name="full_name" value={fullName} onChange={(e) => setFullName(e.target.value)} />}
        </Field>
        <RoleSelect value={role} onChange={setRole} error={errors.role} disabled={isSelf} />
        {!isSelf && (
          <PermissionPicker flags={flags} value={permissions} onChange={setPermissions} superAdmin={role === "super_admin"} error={errors.permissions} />
        )}
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Saving…" : "Save changes"}
          </button>
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function ResetPasswordModal({ user, onClose }: { user: User; onClose: () => void }) {
  const [password, setPassword] = useState(() => generatePassword());
  const [error, setError] = useState<string | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const [done, setDone] = useState<User | null>(null);
  const [busy, setBusy] = useState(false);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const issue = passwordProblem(password, user.email);
    setError(issue);
    setFormError(null);
    if (issue) return;
    setBusy(true);
    try {
      const result = await call(
        api.POST("/api/v1/users/{user_id}/reset-password", { params: { path: { user_id: user.id } }, body: { new_password: password } }),
      );
      setDone(result);
    } catch (err) {
      const { fields, message } = formProblems(err);
      setError(fields.new_password ?? null);
      setFormError(message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title={`Reset password of ${user.email}`} onClose={onClose}>
      {done ? (
        <div>
          <Notice tone="success" title="Password reset">
            {done.email} signs in with this temporary password and must choose a new one right away.
          </Notice>
          <div className="secret" data-testid="temporary-password">
            <code>{password}</code>
            <button type="button" className="btn btn-secondary btn-sm" onClick={() => void navigator.clipboard?.writeText(password)}>
              Copy
            </button>
          </div>
          <p className="muted small">Give it to them in person or over a trusted channel. It is not shown again.</p>
          <div className="form-actions">
            <button type="button" className="btn btn-primary" onClick={onClose}>
              Done
            </button>
          </div>
        </div>
      ) : (
        <form onSubmit={onSubmit} noValidate aria-label="Reset password">
          {formError && <Notice tone="error">{formError}</Notice>}
          <p className="muted">Their current password stops working. They must choose a new one at their next sign-in.</p>
          <Field label="Temporary password" error={error} hint="At least 10 characters with a letter and a digit.">
            {(p) => (
              <div className="input-with-button">
                <input {...p} name="new_password" type="text" spellCheck={false} value={password} onChange={(e) => setPassword(e.target.value)} />
                <button type="button" className="btn btn-secondary btn-sm" onClick={() => setPassword(generatePassword())}>
                  Generate
                </button>
              </div>
            )}
          </Field>
          <div className="form-actions">
            <button type="submit" className="btn btn-danger" disabled={busy}>
              {busy ? "Resetting…" : "Reset password"}
            </button>
            <button type="button" className="btn btn-secondary" onClick={onClose}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </Modal>
  );
}
