// "/root": the platform root's list of factories, with creation and super admin assignment.
import { useState, type ReactNode } from "react";
import { api, call } from "../../api/client";
import type { PlatformFactory } from "../../api/types";
import { numeric, PagedTable } from "../../components/DataTable";
import { Notice, PageHeader } from "../../components/ui";
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
        <PagedTable
          paged={factories}
          label="Factories"
          columns={["Factory", "Slug", "Time zone", numeric("Users"), "Created", { label: "Actions", className: "col-actions" }]}
          empty="No factories yet. Create the first one."
          noun="factories"
          loadError="Could not load factories"
          loading="Loading factories…"
          row={(f) => (
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
          )}
        />
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
