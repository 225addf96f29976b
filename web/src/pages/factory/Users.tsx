// "/f/:slug/users": the super admin's user management.
import { useState, type ReactNode } from "react";
import { api, call } from "../../api/client";
import { describeError } from "../../api/errors";
import { PERMISSION_LABELS, ROLE_LABELS, type User } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { PagedTable } from "../../components/DataTable";
import { Badge, Notice, PageHeader } from "../../components/ui";
import { formatDateTime } from "../../lib/format";
import { useDebounced, usePaged } from "../../lib/usePaged";
import { NoAccess } from "./NoAccess";
import { CreateUserForm, EditUserModal, ResetPasswordModal } from "./UserForms";

type Flash = { tone: "success" | "error"; title: string; body?: ReactNode };

export function Users() {
  const { isSuperAdmin } = useAuth();
  if (!isSuperAdmin) return <NoAccess what="user management" />;
  return <UserManagement />;
}

function UserManagement() {
  const { principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const [search, setSearch] = useState("");
  const q = useDebounced(search.trim(), 300);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<User | null>(null);
  const [resetting, setResetting] = useState<User | null>(null);
  const [flash, setFlash] = useState<Flash | null>(null);
  const [busyId, setBusyId] = useState<string | null>(null);

  const users = usePaged<User>(
    (limit, offset) => call(api.GET("/api/v1/users", { params: { query: { limit, offset, q: q || undefined } } })),
    [q],
  );

  const setActive = async (user: User, active: boolean) => {
    setBusyId(user.id);
    try {
      await call(api.PATCH("/api/v1/users/{user_id}", { params: { path: { user_id: user.id } }, body: { is_active: active } }));
      setFlash({ tone: "success", title: active ? `${user.email} is enabled` : `${user.email} is disabled`, body: active ? "They can sign in again." : "They can no longer sign in; their open sessions end." });
      users.reload();
    } catch (err) {
      setFlash({ tone: "error", title: `Could not update ${user.email}`, body: describeError(err) });
    } finally {
      setBusyId(null);
    }
  };

  return (
    <>
      <PageHeader
        title="Users"
        subtitle="People who can sign in to this factory, their role and what they may change."
        actions={
          !creating && (
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              + Add user
            </button>
          )
        }
      />
      {flash && (
        <Notice tone={flash.tone} title={flash.title} onClose={() => setFlash(null)}>
          {flash.body}
        </Notice>
      )}
      {creating && (
        <CreateUserForm
          onCancel={() => setCreating(false)}
          onCreated={(user) => {
            setCreating(false);
            setFlash({ tone: "success", title: `User ${user.email} created`, body: "They sign in with the initial password you set." });
            users.reload();
          }}
        />
      )}
      <section className="card">
        <div className="table-toolbar">
          <input
            type="search"
            className="search"
            placeholder="Search by email or name…"
            aria-label="Search users"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
          {users.loading && users.page && <span className="muted small">Updating…</span>}
        </div>
        <PagedTable
          paged={users}
          label="Users"
          columns={["User", "Role", "Write access", "Status", "Last sign-in", { label: "Actions", className: "col-actions" }]}
          empty={q ? `No users match “${q}”.` : "No users yet."}
          noun="users"
          loadError="Could not load users"
          loading="Loading users…"
          row={(user) => {
            const self = user.id === principal?.user_id;
            return (
              <tr key={user.id} data-email={user.email} className={user.is_active ? undefined : "row-muted"}>
                <td>
                  <div className="cell-primary">{user.full_name || "—"}{self && <span className="you"> (you)</span>}</div>
                  <div className="cell-secondary">{user.email}</div>
                </td>
                <td>
                  <Badge tone={user.role === "super_admin" ? "accent" : "neutral"}>{ROLE_LABELS[user.role] ?? user.role}</Badge>
                </td>
                <td>
                  {user.role === "super_admin" ? (
                    <span className="muted">All areas</span>
                  ) : user.permissions.length === 0 ? (
                    <span className="muted">Read only</span>
                  ) : (
                    <div className="chips">
                      {user.permissions.map((p) => (
                        <Badge key={p}>{PERMISSION_LABELS[p]?.split(" ")[0] ?? p}</Badge>
                      ))}
                    </div>
                  )}
                </td>
                <td>
                  <div className="chips">
                    {user.is_active ? <Badge tone="good">Active</Badge> : <Badge tone="bad">Disabled</Badge>}
                    {user.is_locked && <Badge tone="bad">Locked</Badge>}
                    {user.must_change_password && <Badge tone="warn">Must change password</Badge>}
                  </div>
                </td>
                <td className="nowrap">{user.last_login_at ? formatDateTime(user.last_login_at, timeZone) : <span className="muted">Never</span>}</td>
                <td className="col-actions">
                  <div className="row-actions">
                    <button type="button" className="btn btn-secondary btn-sm" onClick={() => setEditing(user)}>
                      Edit
                    </button>
                    <button type="button" className="btn btn-secondary btn-sm" onClick={() => setResetting(user)}>
                      Reset password
                    </button>
                    {!self && (
                      <button
                        type="button"
                        className={`btn btn-sm ${user.is_active ? "btn-danger-outline" : "btn-secondary"}`}
                        disabled={busyId === user.id}
                        onClick={() => void setActive(user, !user.is_active)}
                      >
                        {user.is_active ? "Disable" : "Enable"}
                      </button>
                    )}
                  </div>
                </td>
              </tr>
            );
          }}
        />
      </section>
      {editing && (
        <EditUserModal
          user={editing}
          isSelf={editing.id === principal?.user_id}
          onClose={() => setEditing(null)}
          onSaved={(user) => {
            setEditing(null);
            setFlash({ tone: "success", title: `Saved ${user.email}` });
            users.reload();
          }}
        />
      )}
      {resetting && (
        <ResetPasswordModal
          user={resetting}
          onClose={() => {
            setResetting(null);
            users.reload();
          }}
        />
      )}
    </>
  );
}
