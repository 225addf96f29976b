// "/f/:slug/overview": the factory's landing page, with the open alerts kept live.
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, call } from "../../api/client";
import { describeError } from "../../api/errors";
import { PERMISSION_FLAGS, PERMISSION_LABELS, ROLE_LABELS, type Factory } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { icons } from "../../components/icons";
import { Badge, Card, Notice, PageHeader, Spinner } from "../../components/ui";
import { formatDateTime } from "../../lib/format";
import { AREAS } from "./areas";
import { OpenAlertsPanel } from "./alerts/OpenAlertsPanel";

export function Overview() {
  const { slug = "" } = useParams();
  const { principal, can, isSuperAdmin } = useAuth();
  const [factory, setFactory] = useState<Factory | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/factory"))
      .then(setFactory)
      .catch((err: unknown) => setError(describeError(err)));
  }, []);

  const firstName = principal?.full_name?.split(" ")[0] || principal?.email;

  return (
    <>
      <PageHeader title="Overview" subtitle={`Welcome, ${firstName}.`} />
      {error && <Notice tone="error" title="Could not load the factory">{error}</Notice>}
      <OpenAlertsPanel slug={slug} timeZone={factory?.timezone ?? principal?.factory?.timezone} />
      <div className="grid-2">
        <Card title="Factory">
          {!factory && !error && <Spinner />}
          {factory && (
            <dl className="facts">
              <dt>Name</dt>
              <dd>{factory.name}</dd>
              <dt>Slug</dt>
              <dd><code>{factory.slug}</code></dd>
              <dt>Time zone</dt>
              <dd>{factory.timezone}</dd>
              <dt>Description</dt>
              <dd>{factory.description || <span className="muted">No description</span>}</dd>
              <dt>Created</dt>
              <dd>{formatDateTime(factory.created_at, factory.timezone)}</dd>
            </dl>
          )}
        </Card>
        <Card title="Your access">
          <dl className="facts">
            <dt>Account</dt>
            <dd>{principal?.email}</dd>
            <dt>Role</dt>
            <dd><Badge tone="accent">{ROLE_LABELS[principal?.role ?? ""] ?? principal?.role}</Badge></dd>
            <dt>May change</dt>
            <dd>
              <div className="chips">
                {PERMISSION_FLAGS.map((flag) => (
                  <Badge key={flag} tone={can(flag) ? "good" : "neutral"}>
                    {can(flag) ? "✓" : "–"} {PERMISSION_LABELS[flag]}
                  </Badge>
                ))}
              </div>
            </dd>
          </dl>
          <p className="muted small">
            {isSuperAdmin
              ? "As super admin you can change everything in this factory and manage its users."
              : "You can see everything in this factory; you can change only the areas marked ✓."}
          </p>
        </Card>
      </div>
      <h2 className="section-title">Areas</h2>
      <div className="area-grid">
        {AREAS.map((area) => (
          <Link key={area.path} to={`/f/${slug}/${area.path}`} className="area-tile">
            <span className="area-icon">{icons[area.icon]}</span>
            <span className="area-name">{area.title}</span>
            <span className="area-text">{area.summary}</span>
          </Link>
        ))}
      </div>
    </>
  );
}
