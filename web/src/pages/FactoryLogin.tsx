// "/f/:slug/login": one factory's sign-in, then (if required) the first password change.
import { useEffect, useState, type FormEvent } from "react";
import { Link, Navigate, useLocation, useNavigate, useParams } from "react-router-dom";
import { api, call, takeExpiredNotice } from "../api/client";
import { ApiError, describeError } from "../api/errors";
import { loadPublicFactories } from "../api/factories";
import { useAuth } from "../auth/AuthContext";
import { AuthFrame } from "../components/AuthFrame";
import { ChangePasswordForm } from "../components/ChangePasswordForm";
import { Field, Notice, Spinner } from "../components/ui";
import { describeLoginFailure, type LoginFailure } from "../lib/loginErrors";

export function FactoryLogin() {
  const { slug = "" } = useParams();
  const navigate = useNavigate();
  const location = useLocation();
  const { principal, signIn, signOut } = useAuth();
  const [factoryName, setFactoryName] = useState<string | null | undefined>(undefined);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<LoginFailure | null>(null);
  const [expired] = useState(() => takeExpiredNotice());
  const [busy, setBusy] = useState(false);
  const [justSignedIn, setJustSignedIn] = useState<string | undefined>(undefined);

  useEffect(() => {
    loadPublicFactories()
      .then((list) => setFactoryName(list.find((f) => f.slug === slug)?.name ?? null))
      .catch((err: unknown) => setLoadError(describeError(err)));
  }, [slug]);

  const from = (location.state as { from?: string } | null)?.from;
  const target = from && from.startsWith(`/f/${slug}/`) && !from.endsWith("/login") ? from : `/f/${slug}/overview`;
  const hereAsUser = principal?.kind === "factory_user" && principal.factory?.slug === slug;

  if (hereAsUser && !principal.must_change_password) return <Navigate to={target} replace />;

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
      const pair = await call(api.POST("/api/v1/auth/login", { body: { factory: slug, email: email.trim(), password } }));
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

  const footer = (
    <span>
      <Link to="/">← Choose another factory</Link>
    </span>
  );

  if (hereAsUser && principal.must_change_password) {
    return (
      <AuthFrame footer={footer}>
        <ChangePasswordForm
          email={principal.email}
          knownCurrentPassword={justSignedIn}
          onDone={() => navigate(target, { replace: true })}
          onCancel={() => void signOut()}
        />
      </AuthFrame>
    );
  }

  return (
    <AuthFrame footer={footer}>
      {factoryName === undefined && !loadError && <Spinner label="Loading…" />}
      {loadError && <Notice tone="error" title="Could not reach FactoryOps">{loadError}</Notice>}
      {factoryName === null && (
        <Notice tone="error" title="Unknown factory">
          There is no factory “{slug}”. <Link to="/">Choose a factory</Link>.
        </Notice>
      )}
      {factoryName && (
        <form onSubmit={onSubmit} noValidate aria-label="Sign in">
          <p className="auth-kicker">Factory sign-in</p>
          <h1 className="auth-title" data-testid="login-factory-name">{factoryName}</h1>
          <p className="auth-lead">Sign in with the account your factory's super admin gave you.</p>
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
      )}
    </AuthFrame>
  );
}
