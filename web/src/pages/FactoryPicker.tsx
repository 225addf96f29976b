// "/": choose your factory, then sign in to it.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { describeError } from "../api/errors";
import { loadPublicFactories } from "../api/factories";
import type { FactoryBrief } from "../api/types";
import { AuthFrame } from "../components/AuthFrame";
import { Field, Notice, Spinner } from "../components/ui";

export function FactoryPicker() {
  const navigate = useNavigate();
  const [factories, setFactories] = useState<FactoryBrief[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [slug, setSlug] = useState("");
  const [touched, setTouched] = useState(false);

  useEffect(() => {
    loadPublicFactories()
      .then((list) => {
        setFactories(list);
        if (list.length === 1 && list[0]) setSlug(list[0].slug);
      })
      .catch((err: unknown) => setError(describeError(err)));
  }, []);

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (slug) navigate(`/f/${encodeURIComponent(slug)}/login`);
  };

  return (
    <AuthFrame footer={<Link to="/root/login">Platform administration</Link>}>
      <h1 className="auth-title">Sign in to your factory</h1>
      <p className="auth-lead">Choose the factory you work in. Each factory has its own accounts.</p>
      {error && <Notice tone="error" title="Could not load the factories">{error}</Notice>}
      {!factories && !error && <Spinner label="Loading factories…" />}
      {factories && factories.length === 0 && (
        <Notice tone="info" title="No factories yet">
          The platform administrator creates factories in Platform administration.
        </Notice>
      )}
      {factories && factories.length > 0 && (
        <form onSubmit={onSubmit} noValidate>
          <Field label="Factory" error={touched && !slug ? "Choose a factory." : null}>
            {(p) => (
              <select {...p} name="factory" value={slug} onChange={(e) => setSlug(e.target.value)}>
                <option value="">Choose a factory…</option>
                {factories.map((f) => (
                  <option key={f.slug} value={f.slug}>
                    {f.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <button type="submit" className="btn btn-primary btn-block">
            Continue
          </button>
        </form>
      )}
    </AuthFrame>
  );
}
