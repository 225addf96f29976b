// "/f/:slug/properties": the factory's property vocabulary, learnt from what devices publish.
// A super admin sets display name, unit and kind in place; inferred values are marked.
import { useState, type FormEvent } from "react";
import { api, call } from "../../../api/client";
import type { Property, PropertyKind } from "../../../api/devices";
import { formProblems } from "../../../api/errors";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Notice, PageHeader, Pagination, Spinner } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { formatAgo } from "../../../lib/telemetryFormat";
import { useDebounced, usePaged } from "../../../lib/usePaged";

const KIND_LABELS: Record<PropertyKind, string> = { gauge: "Gauge", counter: "Counter (cumulative)" };

function Inferred({ on, what }: { on: boolean; what: string }) {
  if (!on) return null;
  return (
    <span className="inferred" title={`The ${what} was guessed from the property's name and values; a super admin can set it.`}>
      inferred
    </span>
  );
}

export function Properties() {
  const { isSuperAdmin, principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const [search, setSearch] = useState("");
  const q = useDebounced(search.trim(), 300);
  const [editing, setEditing] = useState<string | null>(null);
  const [flash, setFlash] = useState<string | null>(null);

  const props = usePaged<Property>(
    (limit, offset) => call(api.GET("/api/v1/properties", { params: { query: { limit, offset, q: q || undefined } } })),
    [q],
    50,
  );

  return (
    <>
      <PageHeader
        title="Properties"
        subtitle="Every metric the factory's devices have reported, learnt automatically. Units and kinds are inferred from names and values until set."
        actions={<Badge tone={isSuperAdmin ? "good" : "neutral"}>{isSuperAdmin ? "You can edit" : "Super admins edit"}</Badge>}
      />
      {flash && <Notice tone="success" title={flash} onClose={() => setFlash(null)} />}
      <section className="card">
        <div className="table-toolbar">
          <input
            type="search"
            className="search"
            placeholder="Search by name or display name…"
            aria-label="Search properties"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
          <span className="toolbar-spacer" />
          {props.loading && props.page && <span className="muted small">Updating…</span>}
          <button type="button" className="btn btn-secondary btn-sm" onClick={props.reload}>
            Refresh
          </button>
        </div>
        {props.error && <Notice tone="error" title="Could not load properties">{props.error}</Notice>}
        {!props.page && props.loading && <Spinner label="Loading properties…" />}
        {props.page && (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="Properties">
                <thead>
                  <tr>
                    <th>Property</th>
                    <th>Display name</th>
                    <th>Unit</th>
                    <th>Kind</th>
                    <th>First seen</th>
                    <th>Last seen</th>
                    {isSuperAdmin && <th className="col-actions">Actions</th>}
                  </tr>
                </thead>
                <tbody>
                  {props.page.items.length === 0 && (
                    <tr>
                      <td colSpan={isSuperAdmin ? 7 : 6} className="table-empty">
                        {q ? `No properties match “${q}”.` : "No properties yet. They appear when devices publish values."}
                      </td>
                    </tr>
                  )}
                  {props.page.items.map((p) =>
                    editing === p.name ? (
                      <EditRow
                        key={p.name}
                        property={p}
                        onCancel={() => setEditing(null)}
                        onSaved={(saved) => {
                          setEditing(null);
                          setFlash(`Saved ${saved.name}`);
                          props.reload();
                        }}
                      />
                    ) : (
                      <tr key={p.name} data-property={p.name}>
                        <td className="mono cell-primary">{p.name}</td>
                        <td>{p.display_name || <span className="muted">—</span>}</td>
                        <td data-testid={`unit-${p.name}`}>
                          {p.unit ? <span className="unit">{p.unit}</span> : <span className="muted">none</span>}
                          <Inferred on={p.unit_inferred} what="unit" />
                        </td>
                        <td>
                          <Badge tone={p.kind === "counter" ? "accent" : "neutral"}>{p.kind === "counter" ? "Counter" : "Gauge"}</Badge>
                          <Inferred on={p.kind_inferred} what="kind" />
                        </td>
                        <td className="nowrap">{formatDateTime(p.first_seen, timeZone)}</td>
                        <td className="nowrap" title={formatDateTime(p.last_seen, timeZone)}>
                          {formatAgo(p.last_seen)}
                        </td>
                        {isSuperAdmin && (
                          <td className="col-actions">
                            <button type="button" className="btn btn-secondary btn-sm" aria-label={`Edit ${p.name}`} onClick={() => setEditing(p.name)}>
                              Edit
                            </button>
                          </td>
                        )}
                      </tr>
                    ),
                  )}
                </tbody>
              </table>
            </div>
            <Pagination total={props.page.total} limit={props.limit} offset={props.offset} onChange={props.setOffset} noun="properties" />
          </>
        )}
      </section>
    </>
  );
}

function EditRow({ property, onSaved, onCancel }: { property: Property; onSaved: (p: Property) => void; onCancel: () => void }) {
  const { principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const [displayName, setDisplayName] = useState(property.display_name);
  const [unit, setUnit] = useState(property.unit);
  const [kind, setKind] = useState<PropertyKind>(property.kind);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const onSubmit = async (e?: FormEvent) => {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: { display_name?: string; unit?: string; kind?: PropertyKind } = {};
      if (displayName.trim() !== property.display_name) body.display_name = displayName.trim();
      // Saving an inferred unit or kind unchanged confirms it.
      if (unit.trim() !== property.unit || property.unit_inferred) body.unit = unit.trim();
      if (kind !== property.kind || property.kind_inferred) body.kind = kind;
      const saved = await call(api.PATCH("/api/v1/properties/{property_name}", { params: { path: { property_name: property.name } }, body }));
      onSaved(saved);
    } catch (err) {
      setError(formProblems(err).message);
    } finally {
      setBusy(false);
    }
  };

  const onKey = (e: React.KeyboardEvent) => {
    if (e.key === "Enter") void onSubmit();
    if (e.key === "Escape") onCancel();
  };

  return (
    <tr className="row-editing" data-property={property.name}>
      <td className="mono cell-primary">{property.name}</td>
      <td>
        <input aria-label={`Display name of ${property.name}`} value={displayName} placeholder={property.name} onChange={(e) => setDisplayName(e.target.value)} onKeyDown={onKey} />
      </td>
      <td>
        <input aria-label={`Unit of ${property.name}`} className="input-unit" value={unit} maxLength={32} onChange={(e) => setUnit(e.target.value)} onKeyDown={onKey} />
      </td>
      <td>
        <select aria-label={`Kind of ${property.name}`} value={kind} onChange={(e) => setKind(e.target.value as PropertyKind)}>
          {(Object.keys(KIND_LABELS) as PropertyKind[]).map((k) => (
            <option key={k} value={k}>
              {KIND_LABELS[k]}
            </option>
          ))}
        </select>
      </td>
      <td colSpan={2}>
        {error ? <span className="field-error" role="alert">{error}</span> : <span className="muted small">Last seen {formatDateTime(property.last_seen, timeZone)}</span>}
      </td>
      <td className="col-actions">
        <div className="row-actions">
          <button type="button" className="btn btn-primary btn-sm" disabled={busy} onClick={() => void onSubmit()}>
            {busy ? "Saving…" : "Save"}
          </button>
          <button type="button" className="btn btn-secondary btn-sm" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </td>
    </tr>
  );
}
