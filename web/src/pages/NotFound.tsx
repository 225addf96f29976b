// Any address the portal does not know.
import { Link } from "react-router-dom";
import { AuthFrame } from "../components/AuthFrame";

export function NotFound() {
  return (
    <AuthFrame>
      <h1 className="auth-title">Page not found</h1>
      <p className="auth-lead">There is nothing at this address.</p>
      <Link className="btn btn-primary btn-block" to="/">
        Go to factory sign-in
      </Link>
    </AuthFrame>
  );
}
