// The email and password sign-in of the factory and the root login pages. The page keeps the
// state (useSignIn), so that what was typed is still there after a password change is cancelled.
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { takeExpiredNotice } from "../api/client";
import { ApiError } from "../api/errors";
import type { TokenPair } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { describeLoginFailure, type LoginFailure } from "../lib/loginErrors";
import { TextField } from "./FormFields";
import { Notice } from "./ui";

/** Signs in with `login`, then goes to `target` unless the account must change its password first. */
export function useSignIn(login: (email: string, password: string) => Promise<TokenPair>, target: string) {
  const navigate = useNavigate();
  const { signIn } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<LoginFailure | null>(null);
  const [expired] = useState(() => takeExpiredNotice());
  const [busy, setBusy] = useState(false);
  /** The password of the sign-in that just succeeded, for the password change that may follow. */
  const [justSignedIn, setJustSignedIn] = useState<string | undefined>(undefined);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!email.trim()) problems.email = "Enter your email address.";
    if (!password) problems.password = "Enter your password.";
    setErrors(problems);
    setFailure(null);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const pair = await login(email.trim(), password);
      setJustSignedIn(password);
      signIn(pair);
      if (!pair.principal.must_change_password) navigate(target, { replace: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) setErrors(err.fieldErrors());
      setFailure(describeLoginFailure(err));
      setPassword("");
    } finally {
      setBusy(false);
    }
  };

  return { email, setEmail, password, setPassword, errors, failure, expired, busy, justSignedIn, onSubmit };
}

export function SignInForm({
  form,
  kicker,
  title,
  titleTestId,
  lead,
}: {
  form: ReturnType<typeof useSignIn>;
  kicker: string;
  title: string;
  titleTestId?: string;
  lead: string;
}) {
  const { errors, failure, expired, busy } = form;
  return (
    <form onSubmit={form.onSubmit} noValidate aria-label="Sign in">
      <p className="auth-kicker">{kicker}</p>
      <h1 className="auth-title" data-testid={titleTestId}>
        {title}
      </h1>
      <p className="auth-lead">{lead}</p>
      {expired && !failure && <Notice tone="warning">{expired}</Notice>}
      {failure && (
        <Notice tone="error" title={failure.title}>
          {failure.detail}
        </Notice>
      )}
      <TextField label="Email" error={errors.email} name="email" type="email" autoComplete="username" autoFocus value={form.email} onChange={form.setEmail} />
      <TextField label="Password" error={errors.password} name="password" type="password" autoComplete="current-password" value={form.password} onChange={form.setPassword} />
      <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}
