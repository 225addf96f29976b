// A routed page for an area whose feature has not arrived yet.
import type { Area } from "./areas";
import { useAuth } from "../../auth/AuthContext";
import { icons } from "../../components/icons";
import { Badge, PageHeader } from "../../components/ui";

export function AreaPlaceholder({ area }: { area: Area }) {
  const { can } = useAuth();
  return (
    <>
      <PageHeader
        title={area.title}
        subtitle={area.summary}
        actions={<Badge tone={can(area.flag) ? "good" : "neutral"}>{can(area.flag) ? "You can make changes" : "Read only"}</Badge>}
      />
      <div className="empty-state">
        <span className="empty-icon">{icons[area.icon]}</span>
        <h2>The {area.title} area arrives with its feature</h2>
        <p>This page is part of the portal's shell. The {area.title.toLowerCase()} feature fills it in a later release.</p>
      </div>
    </>
  );
}
