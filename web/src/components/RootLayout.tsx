// The platform root console's frame: the operator of the whole installation, not of a factory.
import { Navigate, NavLink, Outlet, useNavigate } from "react-router-dom";
import { useAuth } from "../auth/AuthContext";
import { BrandMark, icons } from "./icons";

export function RootLayout() {
  const navigate = useNavigate();
  const { principal, signOut } = useAuth();

  if (principal?.kind !== "platform_root" || principal.must_change_password) {
    return <Navigate to="/root/login" replace />;
  }

  const onSignOut = async () => {
    await signOut();
    navigate("/root/login", { replace: true });
  };

  return (
    <div className="shell">
      <aside className="sidebar">
        <div className="sidebar-brand">
          <BrandMark />
          <div>
            <div className="brand-name">FactoryOps</div>
            <div className="brand-sub">Platform console</div>
          </div>
        </div>
        <nav className="sidebar-nav" aria-label="Platform navigation">
          <NavLink to="/root" end className={({ isActive }) => `nav-link${isActive ? " active" : ""}`}>
            {icons.factory}
            <span>Factories</span>
          </NavLink>
          <NavLink to="/root/health" className={({ isActive }) => `nav-link${isActive ? " active" : ""}`}>
            {icons.health}
            <span>Platform health</span>
          </NavLink>
        </nav>
        <div className="sidebar-footer">
          <span className="sidebar-factory-label">Scope</span>
          <span className="sidebar-factory">All factories</span>
        </div>
      </aside>
      <div className="main">
        <header className="topbar">
          <div className="topbar-title">
            {icons.lock}
            <span className="topbar-factory">Platform administration</span>
          </div>
          <div className="topbar-user">
            <div className="user-meta">
              <span className="user-email" data-testid="user-email">{principal.email}</span>
              <span className="user-role">Platform root</span>
            </div>
            <button type="button" className="btn btn-ghost" onClick={onSignOut}>
              {icons.signOut}
              <span>Sign out</span>
            </button>
          </div>
        </header>
        <main className="content">
          <Outlet />
        </main>
      </div>
    </div>
  );
}
