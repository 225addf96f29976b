// Shown instead of a page the signed-in role may not use.
import { Link, useParams } from "react-router-dom";
import { icons } from "../../components/icons";

export function NoAccess({ what }: { what: string }) {
  const { slug = "" } = useParams();
  return (
    <div className="empty-state no-access" role="alert">
      <span className="empty-icon">{icons.lock}</span>
      <h2>You don't have access to {what}</h2>
      <p>Only the factory's super admins can open this page. Ask one of them if you need a change.</p>
      <Link className="btn btn-secondary" to={`/f/${slug}/overview`}>Back to overview</Link>
    </div>
  );
}
