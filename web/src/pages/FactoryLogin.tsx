// "/f/:slug/login": one factory's sign-in, then (if required) the first password change.
import { useEffect, useState } from "react";
import { Link, Navigate, useLocation, useNavigate, useParams } from "react-router-dom";
import { api, call } from "../api/client";
import { describeError } from "../api/errors";
import { loadPublicFactories } from "../api/factories";
import { useAuth } from "../auth/AuthContext";
import { AuthFrame } from "../components/AuthFrame";
import { ChangePasswordForm } from "../components/ChangePasswordForm";
import { SignInForm, useSignIn } from "../components/SignInForm";
import { Notice, Spinner } from "../components/ui";

export function FactoryLogin() {
  const { slug = "" } = useParams();
  const navigate = useNavigate();
  const location = useLocation();
  const { principal, signOut } = useAuth();
  const [factoryName, setFactoryName] = useState<string | null | undefined>(undefined);
  const [loadError, setLoadError] = useState<string | null>(null);
  const from = (location.state as { from?: string } | null)?.from;
  const target = from && from.startsWith(`/f/${slug}/`) && !from.endsWith("/login") ? from : `/f/${slug}/overview`;
  const form = useSignIn((email, password) => call(api.POST("/api/v1/auth/login", { body: { factory: slug, email, password } })), target);

  useEffect(() => {
    loadPublicFactories()
      .then((list) => setFactoryName(list.find((f) => f.slug === slug)?.name ?? null))
      .catch((err: unknown) => setLoadError(describeError(err)));
  }, [slug]);

  const hereAsUser = principal?.kind === "factory_user" && principal.factory?.slug === slug;

  if (hereAsUser && !principal.must_change_password) return <Navigate to={target} replace />;

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
          knownCurrentPassword={form.justSignedIn}
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
        <SignInForm
          form={form}
          kicker="Factory sign-in"
          title={factoryName}
          titleTestId="login-factory-name"
          lead="Sign in with the account your factory's super admin gave you."
        />
      )}
    </AuthFrame>
  );
}
