// The API's warnings about a rule (e.g. it notifies nobody), in the builder before saving and on
// the rules list after: shown, never blocking the save.
import type { RuleWarning } from "../../../api/rules";
import { Notice } from "../../../components/ui";

/** The warnings that mean nobody hears of the rule's alerts (no recipient, or only disabled users). */
export const NOBODY = ["no_recipients", "no_active_recipients"];

/** The API's warnings about a rule (saved or about to be): shown, never blocking the save. */
export function RuleWarnings({ warnings, title }: { warnings: RuleWarning[]; title?: string }) {
  if (!warnings.length) return null;
  return (
    <div className="rule-warnings" data-testid="rule-warnings">
      <Notice tone="warning" title={title ?? (warnings.some((w) => NOBODY.includes(w.code)) ? "Nobody will be notified" : "Worth a look")}>
        {warnings.length === 1 ? (
          <span data-warning={warnings[0]!.code}>{warnings[0]!.message}</span>
        ) : (
          <ul>
            {warnings.map((w) => (
              <li key={w.code} data-warning={w.code}>
                {w.message}
              </li>
            ))}
          </ul>
        )}
      </Notice>
    </div>
  );
}
