// Pickers of the rule builder: devices found by searching the registry, a device type, and the
// factory's users to notify.
import { useEffect, useId, useState } from "react";
import { api, call } from "../../../api/client";
import type { Device } from "../../../api/devices";
import { ApiError } from "../../../api/errors";
import type { User } from "../../../api/types";
import { useAuth } from "../../../auth/AuthContext";
import { useDebounced } from "../../../lib/usePaged";

/** Devices chosen by searching GET /devices; `single` keeps at most one. */
export function DevicePicker({
  selected,
  onChange,
  single,
  error,
  readOnly,
}: {
  selected: string[];
  onChange: (ids: string[]) => void;
  single: boolean;
  error?: string;
  readOnly: boolean;
}) {
  const id = useId();
  const [search, setSearch] = useState("");
  const q = useDebounced(search.trim(), 250);
  const [results, setResults] = useState<Device[] | null>(null);
  const [total, setTotal] = useState(0);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    if (readOnly) return;
    let cancelled = false;
    call(api.GET("/api/v1/devices", { params: { query: { q: q || undefined, limit: 8 } } }))
      .then((page) => {
        if (cancelled) return;
        setResults(page.items);
        setTotal(page.total);
        setProblem(null);
      })
      .catch((err: unknown) => !cancelled && setProblem(err instanceof ApiError ? err.message : "Could not search devices."));
    return () => {
      cancelled = true;
    };
  }, [q, readOnly]);

  const pick = (deviceId: string) => onChange(single ? [deviceId] : Array.from(new Set([...selected, deviceId])));

  return (
    <div className={`field${error ? " field-invalid" : ""}`} data-testid="device-picker">
      <label htmlFor={id}>{single ? "Device" : "Devices"}</label>
      {selected.length > 0 ? (
        <ul className="chips rule-chips" aria-label="Chosen devices">
          {selected.map((d) => (
            <li key={d} className="rule-chip mono">
              <span>{d}</span>
              {!readOnly && (
                <button type="button" aria-label={`Remove ${d}`} onClick={() => onChange(selected.filter((x) => x !== d))}>
                  ×
                </button>
              )}
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted small">{single ? "No device chosen yet." : "No devices chosen yet."}</p>
      )}
      {!readOnly && (
        <>
          <input
            id={id}
            type="search"
            placeholder="Search devices by id, name, type or location…"
            aria-label="Search devices"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
          {problem && <p className="field-error">{problem}</p>}
          {results && (
            <ul className="rule-device-results" aria-label="Matching devices">
              {results.length === 0 && <li className="muted small">No device matches.</li>}
              {results.map((d) => {
                const chosen = selected.includes(d.device_id);
                return (
                  <li key={d.device_id}>
                    <span>
                      <strong>{d.name}</strong> <span className="mono muted">{d.device_id}</span>
                      {d.type && <span className="muted"> · {d.type}</span>}
                    </span>
                    <button
                      type="button"
                      className="btn btn-secondary btn-sm"
                      disabled={chosen}
                      aria-label={`${single ? "Choose" : "Add"} ${d.device_id}`}
                      onClick={() => pick(d.device_id)}
                    >
                      {chosen ? "Chosen" : single ? "Choose" : "Add"}
                    </button>
                  </li>
                );
              })}
              {total > results.length && <li className="muted small">{total - results.length} more: refine the search.</li>}
            </ul>
          )}
        </>
      )}
      {error && <p className="field-error">{error}</p>}
    </div>
  );
}

/** The device types in use (from the first 200 devices), for a type input's suggestions. */
export function useDeviceTypes(enabled: boolean): string[] {
  const [types, setTypes] = useState<string[]>([]);
  useEffect(() => {
    if (!enabled) return;
    call(api.GET("/api/v1/devices", { params: { query: { limit: 200 } } }))
      .then((page) => setTypes(Array.from(new Set(page.items.map((d) => d.type).filter(Boolean))).sort()))
      .catch(() => undefined);
  }, [enabled]);
  return types;
}

/**
 * The factory's users to notify. Listing users is for super admins; others can add themselves
 * and keep the users already on the rule.
 */
export function UserPicker({
  selected,
  onChange,
  error,
  readOnly,
}: {
  selected: string[];
  onChange: (ids: string[]) => void;
  error?: string;
  readOnly: boolean;
}) {
  const id = useId();
  const { principal } = useAuth();
  const [users, setUsers] = useState<User[] | null>(null);
  const [forbidden, setForbidden] = useState(false);
  const [choice, setChoice] = useState("");

  useEffect(() => {
    call(api.GET("/api/v1/users", { params: { query: { limit: 200 } } }))
      .then((page) => setUsers(page.items))
      .catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 403) setForbidden(true);
      });
  }, []);

  const nameOf = (userId: string) => {
    if (userId === principal?.user_id) return `${principal.full_name || principal.email} (you)`;
    const user = users?.find((u) => u.id === userId);
    return user ? `${user.full_name || user.email} <${user.email}>` : userId;
  };
  const add = (userId: string) => userId && onChange(Array.from(new Set([...selected, userId])));
  const available = (users ?? []).filter((u) => !selected.includes(u.id));

  return (
    <div className={`field${error ? " field-invalid" : ""}`}>
      <label htmlFor={id}>Users of this factory</label>
      {selected.length > 0 && (
        <ul className="chips rule-chips" aria-label="Users to notify">
          {selected.map((u) => (
            <li key={u} className="rule-chip">
              <span>{nameOf(u)}</span>
              {!readOnly && (
                <button type="button" aria-label={`Remove ${nameOf(u)}`} onClick={() => onChange(selected.filter((x) => x !== u))}>
                  ×
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {!readOnly &&
        (users ? (
          <div className="input-with-button">
            <select id={id} value={choice} onChange={(e) => setChoice(e.target.value)}>
              <option value="">Choose a user…</option>
              {available.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.full_name ? `${u.full_name} <${u.email}>` : u.email}
                </option>
              ))}
            </select>
            <button
              type="button"
              className="btn btn-secondary"
              disabled={!choice}
              onClick={() => {
                add(choice);
                setChoice("");
              }}
            >
              Add
            </button>
          </div>
        ) : (
          <div className="input-with-button">
            <span className="muted small" id={id}>
              {forbidden ? "Only super admins can list the factory's users." : "Loading users…"}
            </span>
            {principal?.user_id && !selected.includes(principal.user_id) && (
              <button type="button" className="btn btn-secondary btn-sm" onClick={() => add(principal.user_id)}>
                Add me
              </button>
            )}
          </div>
        ))}
      {error ? (
        <p className="field-error">{error}</p>
      ) : (
        <p className="field-hint">Each user is told through the channels of their own notification preferences.</p>
      )}
    </div>
  );
}
