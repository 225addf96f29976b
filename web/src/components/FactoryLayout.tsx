// The signed-in frame of one factory: sidebar navigation, header, and the routed page.
import { useRef } from "react";
import { Navigate, NavLink, Outlet, useLocation, useNavigate, useParams } from "react-router-dom";
import { useAuth } from "../auth/AuthContext";
import { ROLE_LABELS } from "../api/types";
import { BrandMark, icons } from "./icons";
import { SystemAlertsBanner } from "./SystemAlertsBanner";

interface NavItem {
  to: string;
  label: string;
  icon: keyof typeof icons;
  superAdminOnly?: boolean;
  /** Shown indented under the entry before it. */
  sub?: boolean;
}

export const FACTORY_NAV: NavItem[] = [
  { to: "overview", label: "Overview", icon: "overview" },
  { to: "devices", label: "Devices", icon: "devices" },
  { to: "properties", label: "Properties", icon: "properties", sub: true },
  { to: "telemetry-rejects", label: "Telemetry rejects", icon: "rejects", sub: true, superAdminOnly: true },
  { to: "retention", label: "Data retention", icon: "retention", sub: true },
  { to: "rules", label: "Rules", icon: "rules" },
  { to: "alerts", label: "Alerts", icon: "alerts" },
  { to: "deliveries", label: "Delivery log", icon: "audit", sub: true },
  { to: "analytics", label: "Analytics", icon: "analytics" },
  { to: "reports", label: "Reports", icon: "reports" },
  { to: "users", label: "Users", icon: "users", superAdminOnly: true },
  { to: "audit", label: "Audit log", icon: "audit", superAdminOnly: true },
];

export function FactoryLayout() {
  const { slug = "" } = useParams();
  const location = useLocation();
  const navigate = useNavigate();
  const { principal, isSuperAdmin, signOut } = useAuth();
  // After a deliberate sign-out the next person must not land on this user's last page.
  const signingOut = useRef(false);

  const signedInHere =
    principal?.kind === "factory_user" && principal.factory?.slug === slug && !principal.must_change_password;
  if (!signedInHere || !principal.factory) {
    const state = signingOut.current ? null : { from: location.pathname };
    return <Navigate to={`/f/${slug}/login`} replace state={state} />;
  }
  const factory = principal.factory;
  const items = FACTORY_NAV.filter((item) => !item.superAdminOnly || isSuperAdmin);

  const onSignOut = async () => {
    signingOut.current = true;
    await signOut();
    navigate(`/f/${slug}/login`, { replace: true });
  };

  return (
    <div className="shell">
      <aside className="sidebar">
        <div className="sidebar-brand">
          <BrandMark />
          <div>
            <div className="brand-name">FactoryOps</div>
            <div className="brand-sub">Energy intelligence</div>
          </div>
        </div>
        <nav className="sidebar-nav" aria-label="Factory navigation">
          {items.map((item) => (
            <NavLink key={item.to} to={`/f/${slug}/${item.to}`} className={({ isActive }) => `nav-link${item.sub ? " nav-sub" : ""}${isActive ? " active" : ""}`}>
              {icons[item.icon]}
              <span>{item.label}</span>
            </NavLink>
          ))}
        </nav>
        <div className="sidebar-footer">
          <span className="sidebar-factory-label">Factory</span>
          <span className="sidebar-factory">{factory.name}</span>
          <span className="sidebar-tz">{factory.timezone}</span>
        </div>
      </aside>
      <div className="main">
        <header className="topbar">
          <div className="topbar-title">
            {icons.factory}
            <span className="topbar-factory" data-testid="factory-name">{factory.name}</span>
            <span className="topbar-slug">{factory.slug}</span>
          </div>
          <div className="topbar-user">
            <div className="user-meta">
              <span className="user-email" data-testid="user-email">{principal.email}</span>
              <span className="user-role" data-testid="user-role">{ROLE_LABELS[principal.role] ?? principal.role}</span>
            </div>
            <NavLink to={`/f/${slug}/notifications`} className="btn btn-ghost" title="How alerts reach you">
              {icons.alerts}
              <span>Notifications</span>
            </NavLink>
            <button type="button" className="btn btn-ghost" onClick={onSignOut}>
              {icons.signOut}
              <span>Sign out</span>
            </button>
          </div>
        </header>
        <main className="content">
          <SystemAlertsBanner timeZone={factory.timezone} />
          <Outlet />
        </main>
      </div>
    </div>
  );
}
