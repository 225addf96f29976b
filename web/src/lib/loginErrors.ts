// Sign-in failures in words a plant operator understands.
import { ApiError, describeError } from "../api/errors";

export interface LoginFailure {
  title: string;
  detail?: string;
}

export function describeLoginFailure(err: unknown): LoginFailure {
  if (!(err instanceof ApiError)) return { title: "Sign-in failed", detail: describeError(err) };
  switch (err.status) {
    case 401:
      return { title: "Wrong email or password", detail: "Check both and try again. Passwords are case-sensitive." };
    case 423:
      return { title: "Account locked", detail: err.message };
    case 429: {
      const saysWhen = /second|minute/i.test(err.message);
      const wait = err.retryAfter && !saysWhen ? ` Try again in ${err.retryAfter} seconds.` : "";
      return { title: "Too many sign-in attempts", detail: `${err.message}${wait}` };
    }
    case 403:
      return { title: "Sign-in not allowed", detail: err.message };
    case 404:
      return { title: "Unknown factory", detail: err.message };
    case 422:
      return { title: "Check the form", detail: describeError(err) };
    default:
      return { title: "Sign-in failed", detail: describeError(err) };
  }
}
