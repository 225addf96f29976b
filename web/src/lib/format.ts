// Formatting helpers shared by pages.

/** A date-time in the given IANA zone (the factory's), e.g. "27 Nov 2026, 14:05". */
export function formatDateTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  try {
    return new Intl.DateTimeFormat("en-GB", {
      dateStyle: "medium",
      timeStyle: "short",
      timeZone,
    }).format(date);
  } catch {
    return date.toLocaleString();
  }
}

/** "acme-steel" from "Acme Steel (Plant 2)". */
export function slugify(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64)
    .replace(/-+$/g, "");
}

/** Checks a password against the platform's policy; returns the problem or null. */
export function passwordProblem(password: string, email: string): string | null {
  if (password.length < 10) return "Use at least 10 characters.";
  if (!/[A-Za-z]/.test(password) || !/[0-9]/.test(password)) return "Use at least one letter and one digit.";
  const local = email.split("@")[0]?.trim().toLowerCase() ?? "";
  if (local && password.toLowerCase().includes(local)) return "The password must not contain the email's name part.";
  return null;
}

/** Checks an email's basic shape; returns the problem or null. */
export function emailProblem(email: string): string | null {
  if (!email.trim()) return "Enter an email address.";
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.trim())) return "Enter a valid email address, like name@example.com.";
  return null;
}

/** A random password that meets the policy, for resets and initial accounts. */
export function generatePassword(): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  const bytes = new Uint8Array(14);
  crypto.getRandomValues(bytes);
  const body = Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
  // Guarantee a letter and a digit whatever the draw was.
  return `${body}a7`;
}
