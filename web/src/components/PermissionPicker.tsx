// Checkboxes for an admin's write areas; super admins have all of them implicitly.
import { PERMISSION_LABELS } from "../api/types";

interface Props {
  flags: string[];
  value: string[];
  onChange: (value: string[]) => void;
  superAdmin: boolean;
  error?: string | null;
}

export function PermissionPicker({ flags, value, onChange, superAdmin, error }: Props) {
  const toggle = (flag: string, on: boolean) =>
    onChange(on ? [...value.filter((f) => f !== flag), flag] : value.filter((f) => f !== flag));
  return (
    <fieldset className={`field permission-picker${error ? " field-invalid" : ""}`}>
      <legend>Write access</legend>
      {superAdmin ? (
        <p className="field-hint">Super admins can change every area and manage users.</p>
      ) : (
        <>
          <div className="checkbox-grid">
            {flags.map((flag) => (
              <label key={flag} className="checkbox">
                <input type="checkbox" name={`permission-${flag}`} checked={value.includes(flag)} onChange={(e) => toggle(flag, e.target.checked)} />
                <span>{PERMISSION_LABELS[flag] ?? flag}</span>
              </label>
            ))}
          </div>
          <p className="field-hint">Admins can see every area; tick the areas they may also change.</p>
        </>
      )}
      {error && <p className="field-error">{error}</p>}
    </fieldset>
  );
}
