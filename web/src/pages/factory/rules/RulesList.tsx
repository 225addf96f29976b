// "/f/:slug/rules": the factory's rules in words, with search, an enabled filter, pages, and an
// enabled switch for people with the rules permission.
import { useEffect, useState } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router-dom";
import { api, call } from "../../../api/client";
import { describeError } from "../../../api/errors";
import { describeNode, describeSchedule, describeScope, SEVERITIES, setRuleEnabled, type Rule, type RuleWarning, type Severity } from "../../../api/rules";
import { useAuth } from "../../../auth/AuthContext";
import { numeric, PagedTable } from "../../../components/DataTable";
import { Badge, Notice, PageHeader } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { useDebounced, usePaged } from "../../../lib/usePaged";
import { NOBODY, RuleWarnings } from "./RuleWarnings";

export function SeverityBadge({ severity }: { severity: Severity }) {
  const s = SEVERITIES.find((x) => x.value === severity);
  return (
    <span className={`rule-severity rule-severity-${severity}`} data-severity={severity}>
      <Badge tone={s?.tone ?? "neutral"}>{s?.label ?? severity}</Badge>
    </span>
  );
}

export function RulesList() {
  const { slug = "" } = useParams();
  const navigate = useNavigate();
  const location = useLocation();
  const { can, principal } = useAuth();
  const timeZone = principal?.factory?.timezone;
  const mayChange = can("rules");
  const [search, setSearch] = useState("");
  const [enabledFilter, setEnabledFilter] = useState<"" | "true" | "false">("");
  const q = useDebounced(search.trim(), 300);
  // A save answers the rule's warnings (e.g. it notifies nobody): they come along with the flash.
  const [flash, setFlash] = useState<{ tone: "success" | "error"; text: string; warnings?: RuleWarning[] } | null>(() => {
    const state = location.state as { flash?: string; warnings?: RuleWarning[] } | null;
    return state?.flash ? { tone: "success", text: state.flash, warnings: state.warnings } : null;
  });
  // The flash came with the navigation; a reload must not show it again.
  useEffect(() => {
    if (location.state) navigate(location.pathname, { replace: true, state: null });
  }, [location.pathname, location.state, navigate]);
  const [switching, setSwitching] = useState<Set<string>>(new Set());
  const [overrides, setOverrides] = useState<Record<string, Rule>>({});

  const rules = usePaged<Rule>(
    (limit, offset) =>
      call(
        api.GET("/api/v1/rules", {
          params: { query: { limit, offset, q: q || undefined, enabled: enabledFilter === "" ? undefined : enabledFilter === "true" } },
        }),
      ).then((page) => {
        setOverrides({});
        return page;
      }),
    [q, enabledFilter],
  );

  const toggle = async (rule: Rule, enabled: boolean) => {
    setSwitching((s) => new Set(s).add(rule.id));
    try {
      const saved = await setRuleEnabled(rule.id, enabled);
      setOverrides((o) => ({ ...o, [saved.id]: saved }));
      setFlash({
        tone: "success",
        text: `Rule “${saved.name}” ${saved.enabled ? "enabled" : "disabled"}.`,
        warnings: saved.enabled ? saved.warnings : undefined,
      });
    } catch (err) {
      setFlash({ tone: "error", text: `Could not change “${rule.name}”: ${describeError(err)}` });
    } finally {
      setSwitching((s) => {
        const next = new Set(s);
        next.delete(rule.id);
        return next;
      });
    }
  };

  const filtered = Boolean(q || enabledFilter);

  return (
    <>
      <PageHeader
        title="Rules"
        subtitle="Conditions on live telemetry that open alerts, with schedules, cooldowns and who to notify."
        actions={
          <>
            <Badge tone={mayChange ? "good" : "neutral"}>{mayChange ? "You can make changes" : "Read only"}</Badge>
            {mayChange && (
              <Link className="btn btn-primary" to={`/f/${slug}/rules/new`}>
                + New rule
              </Link>
            )}
          </>
        }
      />
      {flash && (
        <Notice tone={flash.tone} onClose={() => setFlash(null)}>
          {flash.text}
        </Notice>
      )}
      {flash?.warnings && <RuleWarnings warnings={flash.warnings} />}
      <section className="card">
        <div className="table-toolbar">
          <input
            type="search"
            className="search"
            placeholder="Search rules by name…"
            aria-label="Search rules"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
          <select
            aria-label="Filter by enabled"
            className="toolbar-select"
            value={enabledFilter}
            onChange={(e) => setEnabledFilter(e.target.value as "" | "true" | "false")}
          >
            <option value="">Enabled and disabled</option>
            <option value="true">Enabled only</option>
            <option value="false">Disabled only</option>
          </select>
          {filtered && (
            <button
              type="button"
              className="btn btn-link btn-sm"
              onClick={() => {
                setSearch("");
                setEnabledFilter("");
              }}
            >
              Clear filters
            </button>
          )}
          <span className="toolbar-spacer" />
          {rules.loading && rules.page && <span className="muted small">Updating…</span>}
          <button type="button" className="btn btn-secondary btn-sm" onClick={rules.reload}>
            Refresh
          </button>
        </div>
        <PagedTable
          paged={rules}
          label="Rules"
          columns={["Rule", "Applies to", "Condition", "Severity", "Enabled", numeric("Version"), "Updated"]}
          empty={filtered ? "No rules match these filters." : mayChange ? "No rules yet. Create the first one." : "No rules yet."}
          noun="rules"
          loadError="Could not load rules"
          loading="Loading rules…"
          row={(item) => {
            const r = overrides[item.id] ?? item;
            const href = `/f/${slug}/rules/${encodeURIComponent(r.id)}`;
            return (
              <tr
                key={r.id}
                data-rule={r.name}
                className={`row-link${r.enabled ? "" : " row-muted"}`}
                onClick={(e) => {
                  if ((e.target as HTMLElement).closest("a, button, input, label")) return;
                  navigate(href);
                }}
              >
                <td>
                  <Link className="cell-primary" to={href}>
                    {r.name}
                  </Link>
                  {r.description && <div className="cell-secondary">{r.description}</div>}
                  {r.warnings.length > 0 && (
                    <div className="cell-secondary" title={r.warnings.map((w) => w.message).join(" ")} data-testid="rule-warning-badge">
                      <Badge tone="warn">{r.warnings.some((w) => NOBODY.includes(w.code)) ? "Notifies nobody" : "Warning"}</Badge>
                    </div>
                  )}
                </td>
                <td>{describeScope(r.definition.scope)}</td>
                <td className="rule-condition-cell">
                  <span data-testid="rule-condition">{describeNode(r.definition.condition)}</span>
                  {r.definition.schedule && <div className="cell-secondary">{describeSchedule(r.definition.schedule)}</div>}
                </td>
                <td>
                  <SeverityBadge severity={r.definition.severity} />
                </td>
                <td>
                  {mayChange ? (
                    <label className="rule-switch">
                      <input
                        type="checkbox"
                        role="switch"
                        aria-label={`Enabled: ${r.name}`}
                        checked={r.enabled}
                        disabled={switching.has(r.id)}
                        onChange={(e) => void toggle(r, e.target.checked)}
                      />
                      <span className="rule-switch-track" aria-hidden="true" />
                      <span className="rule-switch-text">{r.enabled ? "On" : "Off"}</span>
                    </label>
                  ) : (
                    <Badge tone={r.enabled ? "good" : "neutral"}>{r.enabled ? "Enabled" : "Disabled"}</Badge>
                  )}
                </td>
                <td className="num">{r.version}</td>
                <td className="nowrap">{formatDateTime(r.updated_at, timeZone)}</td>
              </tr>
            );
          }}
        />
      </section>
    </>
  );
}
