// Turns the API's error body {"error": {code, message, details}} into something the UI can show.

export interface FieldProblem {
  /** Dotted path as the API gives it, e.g. "body.email". */
  field: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: FieldProblem[];
  /** Seconds to wait before trying again, from a Retry-After header (429). */
  retryAfter?: number;

  constructor(status: number, code: string, message: string, details: FieldProblem[] = [], cause?: unknown) {
    super(message, { cause });
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** Problems keyed by field path without its location ("body.super_admin.email" -> "super_admin.email"). */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const d of this.details) {
      const key = d.field.replace(/^(body|query|path)\./, "");
      if (!key) continue;
      // "permissions.0" is also filed under "permissions", so a form can show it by its field.
      for (const k of [key, key.split(".")[0] ?? key]) if (!(k in out)) out[k] = d.message;
    }
    return out;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request was not accepted.",
  401: "Your session has ended. Please sign in again.",
  403: "Your role may not do this.",
  404: "Not found.",
  409: "This conflicts with existing data.",
  422: "Some fields are not valid.",
  423: "This account is locked.",
  429: "Too many attempts. Please wait and try again.",
  500: "The server hit an unexpected error.",
  502: "The server is not reachable.",
  503: "The service is temporarily unavailable.",
};

/** Drops Pydantic's "Value error, " prefix and capitalises the first letter. */
function cleanMessage(message: string): string {
  const text = message.replace(/^(Value|Assertion) error,\s*/, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function asDetails(raw: unknown): FieldProblem[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((d): d is Record<string, unknown> => typeof d === "object" && d !== null)
    .map((d) => ({
      field: typeof d.field === "string" ? d.field : Array.isArray(d.loc) ? d.loc.join(".") : "",
      message: cleanMessage(typeof d.message === "string" ? d.message : typeof d.msg === "string" ? d.msg : String(d.message ?? "")),
    }));
}

/** Builds an ApiError from a failed response's parsed body (any shape, even plain text). */
export function toApiError(status: number, body: unknown): ApiError {
  const fallback = STATUS_TEXT[status] ?? `Request failed (HTTP ${status}).`;
  if (body && typeof body === "object" && "error" in body) {
    const err = (body as { error: unknown }).error;
    if (err && typeof err === "object") {
      const e = err as Record<string, unknown>;
      const message = typeof e.message === "string" && e.message ? e.message.replace(/: Value error, /, ": ") : fallback;
      const code = typeof e.code === "string" ? e.code : `http_${status}`;
      return new ApiError(status, code, message, asDetails(e.details));
    }
  }
  if (body && typeof body === "object" && "detail" in body) {
    // FastAPI's default shape, in case a route slips past the error handler.
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return new ApiError(status, `http_${status}`, detail);
    return new ApiError(status, `http_${status}`, fallback, asDetails(detail));
  }
  return new ApiError(status, `http_${status}`, fallback);
}

/** A readable message for anything thrown while talking to the API. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.details.length && err.status === 422) {
      const parts = err.details.map((d) => {
        const field = d.field.replace(/^(body|query|path)\./, "");
        return field ? `${field}: ${d.message}` : d.message;
      });
      return `${err.message} ${parts.join("; ")}`.trim();
    }
    return err.message;
  }
  if (err instanceof TypeError) return "Cannot reach the FactoryOps server. Check your connection.";
  if (err instanceof Error) return err.message;
  return "Something went wrong.";
}

/**
 * Splits a failed form submission into messages per field (422 details, or a conflict such as
 * a taken email that names its field) and one message for the top of the form.
 */
export function formProblems(err: unknown): { fields: Record<string, string>; message: string } {
  if (!(err instanceof ApiError)) return { fields: {}, message: describeError(err) };
  const fields = err.fieldErrors();
  if (err.status === 422 && Object.keys(fields).length) {
    return { fields, message: "Some fields need attention; see the messages below." };
  }
  return { fields, message: err.message };
}
