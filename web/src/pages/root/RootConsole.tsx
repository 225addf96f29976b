// "/root": the platform root's list of factories, with creation and super admin assignment.
import { useState, type ReactNode } from "react";
import { api, call } from "../../api/client";
import type { PlatformFactory } from "../../api/types";
import { Notice, PageHeader, Pagination, Spinner } from "../../components/ui";
import { formatDateTime } from "../../lib/format";
import { usePaged } from "../../lib/usePaged";
import { RootSystemAlerts } from "../../components/SystemAlertsBanner";
import { AddSuperAdminModal, CreateFactoryForm } from "./RootForms";

type Flash = { tone: "success" | "error"; title: string; body?: ReactNode };

export function RootConsole() {
  const [creating, setCreating] = useState(false);
  const [addingTo, setAddingTo] = useState<PlatformFactory | null>(null);
  const [flash, setFlash] = useState<Flash | null>(null);
  const [highlight, setHighlight] = useState<string | null>(null);
  const factories = usePaged<PlatformFactory>(
    (limit, offset) => call(api.GET("/api/v1/platform/factories", { params: { query: { limit, offset } } })),
    [],
  );

  return (
    <>
      <PageHeader
        title="Factories"
        subtitle="Each factory is sealed off: its users, devices and data are visible only to its own accounts."
        actions={
          !creating && (
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              + Create factory
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
        <CreateFactoryForm
          onCancel={() => setCreating(false)}
          onCreated={(factory) => {
            setCreating(false);
            setHighlight(factory.id);
            setFlash({
              tone: "success",
              title: `Factory ${factory.name} created`,
              body: (
                <>
                  Its super admin signs in at <code>/f/{factory.slug}/login</code>.
                </>
              ),
            });
            factories.reload();
          }}
        />
      )}
      <section className="card">
        {factories.error && <Notice tone="error" title="Could not load factories">{factories.error}</Notice>}
        {!factories.page && factories.loading && <Spinner label="Loading factories…" />}
        {factories.page && (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Factories">
                <thead>
                  <tr>
                    <th>Factory</th>
                    <th>Slug</th>
                    <th>Time zone</th>
                    <th className="num">Users</th>
                    <th>Created</th>
                    <th className="col-actions">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {factories.page.items.length === 0 && (
                    <tr>
                      <td colSpan={6} className="table-empty">
                        No factories yet. Create the first one.
                      </td>
                    </tr>
                  )}
                  {factories.page.items.map((f) => (
                    <tr key={f.id} data-slug={f.slug} className={f.id === highlight ? "row-new" : undefined}>
                      <td>
                        <div className="cell-primary">{f.name}</div>
                        {f.description && <div className="cell-secondary">{f.description}</div>}
                      </td>
                      <td>
                        <code>{f.slug}</code>
                      </td>
                      <td>{f.timezone}</td>
                      <td className="num">{f.user_count}</td>
                      <td className="nowrap">{formatDateTime(f.created_at)}</td>
                      <td className="col-actions">
                        <button type="button" className="btn btn-secondary btn-sm" onClick={() => setAddingTo(f)}>
                          Add super admin
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination total={factories.page.total} limit={factories.limit} offset={factories.offset} onChange={factories.setOffset} noun="factories" />
          </>
        )}
      </section>
      <RootSystemAlerts />
      {addingTo && (
        <AddSuperAdminModal
          factory={addingTo}
          onClose={() => setAddingTo(null)}
          onAdded={(user) => {
            setAddingTo(null);
            setFlash({ tone: "success", title: `${user.email} is now a super admin of ${addingTo.name}` });
            factories.reload();
          }}
        />
      )}
    </>
  );
}
