// Forms of the user management page: create, edit role and permissions, reset password.
import { useState, type FormEvent } from "react";
import { api, call } from "../../api/client";
import type { FactoryRole, User } from "../../api/types";
import { FormActions, GeneratedPasswordField, newAccountProblems, TextField, useApiForm } from "../../components/FormFields";
import { PermissionPicker } from "../../components/PermissionPicker";
import { Card, Field, Modal, Notice } from "../../components/ui";
import { generatePassword, passwordProblem } from "../../lib/format";
import { usePermissionFlags } from "../../lib/usePermissionFlags";

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
  const { errors, formError, busy, submit } = useApiForm();

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit(newAccountProblems(email, password), async () => {
      const user = await call(
        api.POST("/api/v1/users", {
          body: { email: email.trim(), full_name: fullName.trim(), role, permissions: role === "super_admin" ? [] : permissions, password },
        }),
      );
      onCreated(user);
    });
  };

  return (
    <Card title="Add user" className="form-card">
      <form onSubmit={onSubmit} noValidate aria-label="Add user">
        {formError && <Notice tone="error">{formError}</Notice>}
        <div className="form-grid">
          <TextField label="Email" error={errors.email} name="email" type="email" autoComplete="off" value={email} onChange={setEmail} />
          <TextField label="Full name" error={errors.full_name} name="full_name" autoComplete="off" value={fullName} onChange={setFullName} />
          <RoleSelect value={role} onChange={setRole} error={errors.role} />
          <GeneratedPasswordField
            label="Initial password"
            name="password"
            autoComplete="new-password"
            hint="At least 10 characters with a letter and a digit. Share it with them over a trusted channel."
            value={password}
            onChange={setPassword}
            error={errors.password}
          />
        </div>
        <PermissionPicker flags={flags} value={permissions} onChange={setPermissions} superAdmin={role === "super_admin"} error={errors.permissions} />
        <FormActions label="Create user" busyLabel="Creating…" busy={busy} onCancel={onCancel} />
      </form>
    </Card>
  );
}

export function EditUserModal({ user, isSelf, onSaved, onClose }: { user: User; isSelf: boolean; onSaved: (user: User) => void; onClose: () => void }) {
  const flags = usePermissionFlags();
  const [fullName, setFullName] = useState(user.full_name);
  const [role, setRole] = useState<FactoryRole>(user.role === "super_admin" ? "super_admin" : "admin");
  const [permissions, setPermissions] = useState<string[]>(user.permissions);
  const { errors, formError, busy, submit } = useApiForm();

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit({}, async () => {
      const body = isSelf
        ? { full_name: fullName.trim() }
        : { full_name: fullName.trim(), role, permissions: role === "super_admin" ? [] : permissions };
      const saved = await call(api.PATCH("/api/v1/users/{user_id}", { params: { path: { user_id: user.id } }, body }));
      onSaved(saved);
    });
  };

  return (
    <Modal title={`Edit ${user.email}`} onClose={onClose}>
      <form onSubmit={onSubmit} noValidate aria-label="Edit user">
        {formError && <Notice tone="error">{formError}</Notice>}
        <TextField label="Full name" error={errors.full_name} name="full_name" value={fullName} onChange={setFullName} />
        <RoleSelect value={role} onChange={setRole} error={errors.role} disabled={isSelf} />
        {!isSelf && (
          <PermissionPicker flags={flags} value={permissions} onChange={setPermissions} superAdmin={role === "super_admin"} error={errors.permissions} />
        )}
        <FormActions label="Save changes" busyLabel="Saving…" busy={busy} onCancel={onClose} />
      </form>
    </Modal>
  );
}

export function ResetPasswordModal({ user, onClose }: { user: User; onClose: () => void }) {
  const [password, setPassword] = useState(() => generatePassword());
  const { errors, formError, busy, submit } = useApiForm();
  const [done, setDone] = useState<User | null>(null);

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const issue = passwordProblem(password, user.email);
    void submit(issue ? { new_password: issue } : {}, async () => {
      const result = await call(
        api.POST("/api/v1/users/{user_id}/reset-password", { params: { path: { user_id: user.id } }, body: { new_password: password } }),
      );
      setDone(result);
    });
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
          <GeneratedPasswordField label="Temporary password" name="new_password" value={password} onChange={setPassword} error={errors.new_password} />
          <FormActions label="Reset password" busyLabel="Resetting…" busy={busy} onCancel={onClose} tone="danger" />
        </form>
      )}
    </Modal>
  );
}
