// The typed API client: openapi-fetch over the generated `paths`, with a fetch wrapper that
// adds the Bearer token and renews the session once when the API answers 401.
import createClient from "openapi-fetch";
import type { paths } from "./schema";
import type { TokenPair } from "./types";
import { ApiError, toApiError } from "./errors";
import { loadSession, saveSession, sessionFromTokens, type Session } from "./session";

const REFRESH_PATH = "/api/v1/auth/refresh";
/** Endpoints that must never carry a stale token nor trigger a refresh. */
const NO_REFRESH = ["/api/v1/auth/login", "/api/v1/auth/root/login", REFRESH_PATH, "/api/v1/auth/logout"];

/** Why the last session ended without the user asking; shown on the sign-in page. */
let expiredNotice: string | null = null;
export function takeExpiredNotice(): string | null {
  const notice = expiredNotice;
  expiredNotice = null;
  return notice;
}

let refreshing: Promise<Session | null> | null = null;

/** Renews the session with its refresh token; concurrent callers share one request. */
function refreshSession(current: Session): Promise<Session | null> {
  refreshing ??= (async () => {
    try {
      const res = await fetch(REFRESH_PATH, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: current.refreshToken }),
      });
      if (!res.ok) return null;
      const next = sessionFromTokens((await res.json()) as TokenPair);
      saveSession(next);
      return next;
    } catch {
      return null;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function withToken(request: Request, token: string | undefined): Request {
  if (token && !request.headers.has("Authorization")) {
    request.headers.set("Authorization", `Bearer ${token}`);
  }
  return request;
}

async function authFetch(input: Request): Promise<Response> {
  const session = loadSession();
  const path = new URL(input.url, window.location.origin).pathname;
  const skipRefresh = NO_REFRESH.includes(path);
  // Keep an unread copy for the single retry after a refresh.
  const spare = session && !skipRefresh ? input.clone() : null;
  const response = await fetch(withToken(input, session?.accessToken));
  if (response.status !== 401 || !session || !spare) return response;

  const renewed = await refreshSession(session);
  if (!renewed) {
    // Only end the session if nobody replaced it meanwhile (e.g. a new sign-in in this tab).
    if (loadSession()?.refreshToken === session.refreshToken) {
      expiredNotice = "Your session has expired. Please sign in again.";
      saveSession(null);
    }
    return response;
  }
  return fetch(withToken(spare, renewed.accessToken));
}

/**
 * fetch() with the session's Bearer token and one renewal on 401, for responses that the typed
 * client cannot read (e.g. the Server-Sent Events stream of a device's live values).
 */
export function fetchWithAuth(url: string, init: RequestInit = {}): Promise<Response> {
  return authFetch(new Request(new URL(url, window.location.origin), init));
}

export const api = createClient<paths>({
  baseUrl: "",
  fetch: authFetch,
});

type Result = { data?: unknown; error?: unknown; response: Response };
type DataOf<R> = R extends { data: infer D } ? (unknown extends D ? never : D) : never;

/**
 * Awaits an openapi-fetch call and returns its data, or throws an ApiError that carries
 * the API's human message, its code and any field details.
 */
export async function call<R extends Result>(request: Promise<R>): Promise<DataOf<R>> {
  let result: R;
  try {
    result = await request;
  } catch (err) {
    throw new ApiError(0, "network_error", "Cannot reach the FactoryOps server. Check your connection.", [], err);
  }
  if (result.response.ok) return result.data as DataOf<R>;
  const error = toApiError(result.response.status, result.error);
  const retryAfter = Number(result.response.headers.get("Retry-After"));
  if (Number.isFinite(retryAfter) && retryAfter > 0) error.retryAfter = retryAfter;
  throw error;
}
