// Changing one's own password; required before anything else when an account has a
// temporary password (new accounts, resets).
import { useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { ApiError, describeError } from "../api/errors";
import { useAuth } from "../auth/AuthContext";
import { passwordProblem } from "../lib/format";
import { Field, Notice } from "./ui";

interface Props {
  email: string;
  /** The password just used to sign in, so that the user need not type it twice. */
  knownCurrentPassword?: string;
  onDone: () => void;
  onCancel: () => void;
}

export function ChangePasswordForm({ email, knownCurrentPassword, onDone, onCancel }: Props) {
  const { reloadPrincipal } = useAuth();
  const [current, setCurrent] = useState(knownCurrentPassword ?? "");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!current) problems.current_password = "Enter your current password.";
    const policy = passwordProblem(next, email);
    if (policy) problems.new_password = policy;
    else if (next === current) problems.new_password = "Choose a password different from the current one.";
    if (next !== confirm) problems.confirm = "The two passwords do not match.";
    setErrors(problems);
    setFormError(null);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      await call(api.POST("/api/v1/auth/change-password", { body: { current_password: current, new_password: next } }));
      await reloadPrincipal();
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.details.length) setErrors(err.fieldErrors());
      setFormError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={onSubmit} noValidate>
      <h1 className="auth-title">Choose a new password</h1>
      <p className="auth-lead">
        Your account <strong>{email}</strong> has a temporary password. Set your own to continue.
      </p>
      {formError && <Notice tone="error">{formError}</Notice>}
      {knownCurrentPassword === undefined && (
        <Field label="Current password" error={errors.current_password}>
          {(p) => <input {...p} type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />}
        </Field>
      )}
      <Field label="New password" error={errors.new_password} hint="At least 10 characters, with a letter and a digit.">
        {(p) => <input {...p} type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} />}
      </Field>
      <Field label="Repeat new password" error={errors.confirm}>
        {(p) => <input {...p} type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} />}
      </Field>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? "Saving…" : "Set password and continue"}
        </button>
        <button type="button" className="btn btn-link" onClick={onCancel}>
          Sign out
        </button>
      </div>
    </form>
  );
}
