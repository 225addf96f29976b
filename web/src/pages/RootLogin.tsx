// "/root/login": the platform root's sign-in.
import { useState, type FormEvent } from "react";
import { Link, Navigate, useNavigate } from "react-router-dom";
import { api, call, takeExpiredNotice } from "../api/client";
import { ApiError } from "../api/errors";
import { useAuth } from "../auth/AuthContext";
import { AuthFrame } from "../components/AuthFrame";
import { ChangePasswordForm } from "../components/ChangePasswordForm";
import { Field, Notice } from "../components/ui";
import { describeLoginFailure, type LoginFailure } from "../lib/loginErrors";

export function RootLogin() {
  const navigate = useNavigate();
  const { principal, signIn, signOut } = useAuth();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<LoginFailure | null>(null);
  const [expired] = useState(() => takeExpiredNotice());
  const [busy, setBusy] = useState(false);
  const [justSignedIn, setJustSignedIn] = useState<string | undefined>(undefined);

  const isRoot = principal?.kind === "platform_root";
  if (isRoot && !principal.must_change_password) return <Navigate to="/root" replace />;

  const footer = <Link to="/">← Factory sign-in</Link>;

  if (isRoot && principal.must_change_password) {
    return (
      <AuthFrame footer={footer}>
        <ChangePasswordForm
          email={principal.email}
          knownCurrentPassword={justSignedIn}
          onDone={() => navigate("/root", { replace: true })}
          onCancel={() => void signOut()}
        />
      </AuthFrame>
    );
  }

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
      const pair = await call(api.POST("/api/v1/auth/root/login", { body: { email: email.trim(), password } }));
      setJustSignedIn(password);
      signIn(pair);
      if (!pair.principal.must_change_password) navigate("/root", { replace: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) setErrors(err.fieldErrors());
      setFailure(describeLoginFailure(err));
      setPassword("");
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthFrame footer={footer}>
      <form onSubmit={onSubmit} noValidate aria-label="Sign in">
        <p className="auth-kicker">Platform administration</p>
        <h1 className="auth-title">Root console</h1>
        <p className="auth-lead">Create factories and assign their super admins. Factory data is not visible here.</p>
        {expired && !failure && <Notice tone="warning">{expired}</Notice>}
        {failure && (
          <Notice tone="error" title={failure.title}>
            {failure.detail}
          </Notice>
        )}
        <Field label="Email" error={errors.email}>
          {(p) => <input {...p} name="email" type="email" autoComplete="username" autoFocus value={email} onChange={(e) => setEmail(e.target.value)} />}
        </Field>
        <Field label="Password" error={errors.password}>
          {(p) => <input {...p} name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />}
        </Field>
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </AuthFrame>
  );
}
