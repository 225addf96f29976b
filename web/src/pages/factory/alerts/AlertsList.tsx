// "/f/:slug/alerts": the factory's alerts with counts, filters (kept in the address, so a view can
// be bookmarked), bulk acknowledge / resolve for those with the alerts permission, and a refresh
// every few seconds so that new alerts appear by themselves.
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import {
  SEVERITIES,
  SEVERITY_LABELS,
  STATE_LABELS,
  alertCounts,
  bulkAlerts,
  listAlerts,
  type Alert,
  type AlertCounts,
  type AlertFilters,
  type AlertStateFilter,
  type BulkResult,
  type Severity,
} from "../../../api/alerts";
import { api, call } from "../../../api/client";
import { describeError } from "../../../api/errors";
import { useAuth } from "../../../auth/AuthContext";
import { Badge, Notice, PageHeader, Pagination, Spinner } from "../../../components/ui";
import { fromLocalInput, toLocalInput } from "../../../lib/telemetryFormat";
import { useDebounced } from "../../../lib/usePaged";
import { AlertStateBadge, ResolveModal, SeverityBadge, ValuesList, When } from "./common";
import { usePolled, usePolledPage } from "./live";

/** How often the list and the counts refresh themselves. */
const POLL_MS = 2500;

const STATE_OPTIONS: AlertStateFilter[] = ["unresolved", "open", "acknowledged", "resolved"];
const RANGES: { key: string; label: string; ms: number }[] = [
  { key: "1h", label: "Last hour", ms: 3600_000 },
  { key: "24h", label: "Last 24 hours", ms: 86_400_000 },
  { key: "7d", label: "Last 7 days", ms: 7 * 86_400_000 },
  { key: "30d", label: "Last 30 days", ms: 30 * 86_400_000 },
];

type Flash = { tone: "success" | "error" | "warning"; title: string; body?: ReactNode };

function CountTiles({
  counts,
  state,
  severity,
  onPick,
}: {
  counts: AlertCounts | null;
  state: string;
  severity: string;
  onPick: (state: AlertStateFilter | "", severity: Severity | "") => void;
}) {
  const byState = counts?.by_state ?? {};
  const bySeverity = counts?.open_by_severity ?? {};
  const tiles: { key: string; label: string; value: number | undefined; state: AlertStateFilter | ""; severity: Severity | ""; tone: string }[] = [
    { key: "open", label: "Open", value: counts ? (byState.open ?? 0) : undefined, state: "open", severity: "", tone: "open" },
    { key: "acknowledged", label: "Acknowledged", value: counts ? (byState.acknowledged ?? 0) : undefined, state: "acknowledged", severity: "", tone: "acknowledged" },
    { key: "resolved", label: "Resolved", value: counts ? (byState.resolved ?? 0) : undefined, state: "resolved", severity: "", tone: "resolved" },
    ...SEVERITIES.map((s) => ({
      key: `sev-${s}`,
      label: `${SEVERITY_LABELS[s]} unresolved`,
      value: counts ? (bySeverity[s] ?? 0) : undefined,
      state: "unresolved" as const,
      severity: s,
      tone: s,
    })),
  ];
  return (
    <div className="alert-counts" role="group" aria-label="Alert counts" data-testid="alert-counts">
      {tiles.map((tile) => {
        const active = state === tile.state && severity === tile.severity;
        return (
          <button
            key={tile.key}
            type="button"
            className={`alert-count alert-count-${tile.tone}${active ? " active" : ""}${tile.value ? " nonzero" : ""}`}
            aria-pressed={active}
            data-testid={`count-${tile.key}`}
            onClick={() => (active ? onPick("", "") : onPick(tile.state, tile.severity))}
          >
            <span className="alert-count-label">{tile.label}</span>
            <span className="alert-count-value">{tile.value ?? "–"}</span>
          </button>
        );
      })}
    </div>
  );
}

export function AlertsList() {
  const { slug = "" } = useParams();
  const navigate = useNavigate();
  const { can, principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const mayAct = can("alerts");
  const [params, setParams] = useSearchParams();

  const state = (params.get("state") ?? "") as AlertStateFilter | "";
  const severity = (params.get("severity") ?? "") as Severity | "";
  const ruleId = params.get("rule") ?? "";
  const range = params.get("range") ?? "";
  const since = params.get("since") ?? "";
  const until = params.get("until") ?? "";
  const [deviceText, setDeviceText] = useState(params.get("device") ?? "");
  const device = useDebounced(deviceText.trim(), 300);
  const [customStart, setCustomStart] = useState(() => (since ? toLocalInput(Date.parse(since), timeZone) : toLocalInput(Date.now() - 86_400_000, timeZone)));
  const [customEnd, setCustomEnd] = useState(() => (until ? toLocalInput(Date.parse(until), timeZone) : toLocalInput(Date.now(), timeZone)));
  const [rangeError, setRangeError] = useState<string | null>(null);

  const setFilters = useCallback(
    (next: Record<string, string>) => {
      setParams(
        (prev) => {
          const out = new URLSearchParams(prev);
          for (const [k, v] of Object.entries(next)) {
            if (v) out.set(k, v);
            else out.delete(k);
          }
          return out;
        },
        { replace: true },
      );
    },
    [setParams],
  );

  // The device box writes to the address once typing pauses; the address is what filters.
  const deviceFilter = params.get("device") ?? "";
  const lastDevice = useRef(device);
  useEffect(() => {
    if (lastDevice.current === device) return;
    lastDevice.current = device;
    setFilters({ device });
  }, [device, setFilters]);

  const filters = useMemo<AlertFilters>(() => {
    const f: AlertFilters = {};
    if (state) f.state = state;
    if (severity) f.severity = severity;
    if (deviceFilter) f.device_id = deviceFilter;
    if (ruleId) f.rule_id = ruleId;
    if (range === "custom") {
      if (since) f.since = since;
      if (until) f.until = until;
    }
    return f;
  }, [state, severity, deviceFilter, ruleId, range, since, until]);

  const rangeMs = RANGES.find((r) => r.key === range)?.ms;
  const alerts = usePolledPage<Alert>(
    (limit, offset) => {
      // A relative range slides with the clock on every refresh.
      const query = rangeMs ? { ...filters, since: new Date(Date.now() - rangeMs).toISOString() } : filters;
      return listAlerts(query, limit, offset);
    },
    [filters, rangeMs],
    POLL_MS,
  );
  const counts = usePolled<AlertCounts>(alertCounts, [], POLL_MS);

  const [rules, setRules] = useState<{ id: string; name: string }[]>([]);
  useEffect(() => {
    call(api.GET("/api/v1/rules", { params: { query: { limit: 200 } } }))
      .then((page) => setRules(page.items.map((r) => ({ id: r.id, name: r.name })).sort((a, b) => a.name.localeCompare(b.name))))
      .catch(() => undefined);
  }, []);

  // Selection for bulk actions, kept across refreshes; alerts that resolve drop out of it.
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const items = alerts.page?.items;
  useEffect(() => {
    if (!items) return;
    setSelected((prev) => {
      const resolved = new Set(items.filter((a) => a.state === "resolved").map((a) => a.id));
      const next = new Set([...prev].filter((id) => !resolved.has(id)));
      return next.size === prev.size ? prev : next;
    });
  }, [items]);
  const filterKey = JSON.stringify(filters) + range;
  useEffect(() => setSelected(new Set()), [filterKey]);

  const [busy, setBusy] = useState(false);
  const [resolving, setResolving] = useState(false);
  const [resolveError, setResolveError] = useState<string | null>(null);
  const [flash, setFlash] = useState<Flash | null>(null);

  const actionable = (items ?? []).filter((a) => a.state !== "resolved");
  const allOnPage = actionable.length > 0 && actionable.every((a) => selected.has(a.id));
  const toggleAll = () =>
    setSelected((prev) => {
      const next = new Set(prev);
      if (allOnPage) for (const a of actionable) next.delete(a.id);
      else for (const a of actionable) next.add(a.id);
      return next;
    });
  const toggle = (id: string) =>
    setSelected((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const report = (action: string, result: BulkResult) => {
    const changed = result.changed.length;
    const skipped = result.unchanged;
    setFlash({
      tone: skipped.length ? "warning" : "success",
      title: `${changed} alert${changed === 1 ? "" : "s"} ${action}`,
      body: skipped.length ? (
        <ul className="plain-list">
          {skipped.map((u) => (
            <li key={u.id}>
              <code>{(u.id ?? "").slice(0, 8)}</code>: {u.reason}
            </li>
          ))}
        </ul>
      ) : undefined,
    });
  };

  const refresh = () => {
    alerts.reload();
    counts.reload();
  };

  const acknowledgeSelected = async () => {
    setBusy(true);
    try {
      const result = await bulkAlerts([...selected], "acknowledge");
      report("acknowledged", result);
      setSelected(new Set());
      refresh();
    } catch (err) {
      setFlash({ tone: "error", title: "Could not acknowledge", body: describeError(err) });
    } finally {
      setBusy(false);
    }
  };

  const resolveSelected = async (note: string) => {
    setBusy(true);
    setResolveError(null);
    try {
      const result = await bulkAlerts([...selected], "resolve", note);
      report("resolved", result);
      setSelected(new Set());
      setResolving(false);
      refresh();
    } catch (err) {
      setResolveError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  const applyCustom = () => {
    const start = fromLocalInput(customStart, timeZone);
    const end = fromLocalInput(customEnd, timeZone);
    if (Number.isNaN(start) || Number.isNaN(end)) {
      setRangeError("Enter both the start and the end.");
      return;
    }
    if (end <= start) {
      setRangeError("The end must be after the start.");
      return;
    }
    setRangeError(null);
    setFilters({ range: "custom", since: new Date(start).toISOString(), until: new Date(end).toISOString() });
  };

  const filtered = Boolean(state || severity || deviceFilter || ruleId || range);
  const columns = mayAct ? 7 : 6;

  return (
    <>
      <PageHeader
        title="Alerts"
        subtitle="Alerts raised by the factory's rules: acknowledge them while you work on them, resolve them with a note."
        actions={
          <>
            <Badge tone={mayAct ? "good" : "neutral"}>{mayAct ? "You can acknowledge and resolve" : "Read only"}</Badge>
            <Link to={`/f/${slug}/deliveries`} className="btn btn-secondary">
              Delivery log
            </Link>
          </>
        }
      />
      {flash && (
        <Notice tone={flash.tone} title={flash.title} onClose={() => setFlash(null)}>
          {flash.body}
        </Notice>
      )}
      <CountTiles
        counts={counts.data}
        state={state}
        severity={severity}
        onPick={(s, sev) => setFilters({ state: s, severity: sev })}
      />
      <section className="card">
        <div className="table-toolbar">
          <select aria-label="Filter by state" className="toolbar-select" value={state} onChange={(e) => setFilters({ state: e.target.value })}>
            <option value="">Any state</option>
            {STATE_OPTIONS.map((s) => (
              <option key={s} value={s}>
                {STATE_LABELS[s]}
              </option>
            ))}
          </select>
          <select aria-label="Filter by severity" className="toolbar-select" value={severity} onChange={(e) => setFilters({ severity: e.target.value })}>
            <option value="">Any severity</option>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {SEVERITY_LABELS[s]}
              </option>
            ))}
          </select>
          <input
            className="toolbar-input"
            placeholder="Device ID"
            aria-label="Filter by device"
            value={deviceText}
            onChange={(e) => setDeviceText(e.target.value)}
          />
          <select aria-label="Filter by rule" className="toolbar-select" value={ruleId} onChange={(e) => setFilters({ rule: e.target.value })}>
            <option value="">Any rule</option>
            {ruleId && !rules.some((r) => r.id === ruleId) && <option value={ruleId}>Rule {ruleId.slice(0, 8)}</option>}
            {rules.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name}
              </option>
            ))}
          </select>
          <select
            aria-label="Opened within"
            className="toolbar-select"
            value={range}
            onChange={(e) => setFilters(e.target.value === "custom" ? { range: "custom" } : { range: e.target.value, since: "", until: "" })}
          >
            <option value="">Any time</option>
            {RANGES.map((r) => (
              <option key={r.key} value={r.key}>
                {r.label}
              </option>
            ))}
            <option value="custom">Custom range…</option>
          </select>
          {filtered && (
            <button
              type="button"
              className="btn btn-link btn-sm"
              onClick={() => {
                setDeviceText("");
                setParams(new URLSearchParams(), { replace: true });
              }}
            >
              Clear filters
            </button>
          )}
          <span className="toolbar-spacer" />
          <span className="live-indicator live-open" title="Refreshes every few seconds" data-testid="alerts-live">
            <span className="live-dot" aria-hidden="true" />
            Live
          </span>
          <button type="button" className="btn btn-secondary btn-sm" onClick={refresh}>
            Refresh
          </button>
        </div>
        {range === "custom" && (
          <div className="custom-range alert-range" role="group" aria-label="Custom time range">
            <label>
              From
              <input type="datetime-local" step={1} value={customStart} onChange={(e) => setCustomStart(e.target.value)} aria-label="Opened from" />
            </label>
            <label>
              To
              <input type="datetime-local" step={1} value={customEnd} onChange={(e) => setCustomEnd(e.target.value)} aria-label="Opened until" />
            </label>
            <button type="button" className="btn btn-secondary btn-sm" onClick={applyCustom}>
              Apply
            </button>
            <span className="muted small">Times in {timeZone ?? "your time zone"}.</span>
            {rangeError && <span className="field-error">{rangeError}</span>}
          </div>
        )}
        {mayAct && (
          <div className={`bulk-bar${selected.size ? " active" : ""}`} role="group" aria-label="Bulk actions">
            <span className="bulk-count" data-testid="selected-count">
              {selected.size ? `${selected.size} selected` : "Select alerts to act on several at once"}
            </span>
            <button type="button" className="btn btn-secondary btn-sm" disabled={!selected.size || busy} onClick={acknowledgeSelected}>
              Acknowledge selected
            </button>
            <button
              type="button"
              className="btn btn-secondary btn-sm"
              disabled={!selected.size || busy}
              onClick={() => {
                setResolveError(null);
                setResolving(true);
              }}
            >
              Resolve selected…
            </button>
          </div>
        )}
        {alerts.error && <Notice tone="error" title="Could not load alerts">{alerts.error}</Notice>}
        {!alerts.page && alerts.loading && <Spinner label="Loading alerts…" />}
        {alerts.page && (
          <>
            <div className="table-wrap">
              <table className="table alerts-table" aria-label="Alerts">
                <thead>
                  <tr>
                    {mayAct && (
                      <th className="col-check">
                        <input type="checkbox" aria-label="Select all on this page" checked={allOnPage} disabled={!actionable.length} onChange={toggleAll} />
                      </th>
                    )}
                    <th>Severity</th>
                    <th>Rule</th>
                    <th>Device</th>
                    <th>Opened</th>
                    <th>State</th>
                    <th>Triggering values</th>
                  </tr>
                </thead>
                <tbody>
                  {alerts.page.items.length === 0 && (
                    <tr>
                      <td colSpan={columns} className="table-empty">
                        {filtered ? "No alerts match these filters." : "No alerts yet. They appear here as soon as a rule fires."}
                      </td>
                    </tr>
                  )}
                  {alerts.page.items.map((a) => (
                    <tr
                      key={a.id}
                      data-alert={a.id}
                      data-rule={a.rule_name}
                      data-device={a.device_id}
                      data-state={a.state}
                      className={`row-link alert-row-${a.state}${selected.has(a.id) ? " row-selected" : ""}`}
                      onClick={(e) => {
                        if ((e.target as HTMLElement).closest("a, input, button, label, .col-check")) return;
                        navigate(`/f/${slug}/alerts/${encodeURIComponent(a.id)}`);
                      }}
                    >
                      {mayAct && (
                        <td className="col-check">
                          <input
                            type="checkbox"
                            aria-label={`Select alert ${a.rule_name} on ${a.device_id}`}
                            checked={selected.has(a.id)}
                            disabled={a.state === "resolved"}
                            onChange={() => toggle(a.id)}
                          />
                        </td>
                      )}
                      <td>
                        <SeverityBadge severity={a.severity} />
                      </td>
                      <td>
                        <Link className="cell-primary" to={`/f/${slug}/alerts/${encodeURIComponent(a.id)}`}>
                          {a.rule_name || "(unnamed rule)"}
                        </Link>
                      </td>
                      <td>
                        <Link to={`/f/${slug}/devices/${encodeURIComponent(a.device_id)}`} className="mono">
                          {a.device_id}
                        </Link>
                      </td>
                      <td>
                        <When iso={a.opened_at} timeZone={timeZone} />
                      </td>
                      <td>
                        <AlertStateBadge state={a.state} />
                      </td>
                      <td>
                        <ValuesList values={a.trigger_values} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination total={alerts.page.total} limit={alerts.limit} offset={alerts.offset} onChange={alerts.setOffset} noun="alerts" />
          </>
        )}
      </section>
      {resolving && (
        <ResolveModal count={selected.size} busy={busy} error={resolveError} onCancel={() => setResolving(false)} onResolve={resolveSelected} />
      )}
    </>
  );
}
