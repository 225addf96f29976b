// "/root/login": the platform root's sign-in.
import { Link, Navigate, useNavigate } from "react-router-dom";
import { api, call } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { AuthFrame } from "../components/AuthFrame";
import { ChangePasswordForm } from "../components/ChangePasswordForm";
import { SignInForm, useSignIn } from "../components/SignInForm";

export function RootLogin() {
  const navigate = useNavigate();
  const { principal, signOut } = useAuth();
  const form = useSignIn((email, password) => call(api.POST("/api/v1/auth/root/login", { body: { email, password } })), "/root");

  const isRoot = principal?.kind === "platform_root";
  if (isRoot && !principal.must_change_password) return <Navigate to="/root" replace />;

  const footer = <Link to="/">← Factory sign-in</Link>;

  if (isRoot && principal.must_change_password) {
    return (
      <AuthFrame footer={footer}>
        <ChangePasswordForm
          email={principal.email}
          knownCurrentPassword={form.justSignedIn}
          onDone={() => navigate("/root", { replace: true })}
          onCancel={() => void signOut()}
        />
      </AuthFrame>
    );
  }

  return (
    <AuthFrame footer={footer}>
      <SignInForm
        form={form}
        kicker="Platform administration"
        title="Root console"
        lead="Create factories and assign their super admins. Factory data is not visible here."
      />
    </AuthFrame>
  );
}
