// Who is signed in, and what they may do. The backend enforces every rule again; this only
// decides what the UI shows.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, call } from "../api/client";
import { loadSession, onSessionChange, saveSession, sessionFromTokens, type Session } from "../api/session";
import type { Principal, TokenPair } from "../api/types";

export interface Auth {
  session: Session | null;
  principal: Principal | null;
  /** Stores the tokens of a successful sign-in. */
  signIn: (pair: TokenPair) => void;
  /** Ends the session on the server (best effort) and in this tab. */
  signOut: () => Promise<void>;
  /** Reloads the principal (e.g. after a password change). */
  reloadPrincipal: () => Promise<Principal | null>;
  /** True when the signed-in user may write in the given area (devices, rules, ...). */
  can: (flag: string) => boolean;
  isSuperAdmin: boolean;
}

const AuthContext = createContext<Auth | null>(null);

/** Whether a principal may write in an area: super admins always, admins by flag. */
export function principalCan(principal: Principal | null, flag: string): boolean {
  if (!principal || principal.kind !== "factory_user") return false;
  if (principal.role === "super_admin") return true;
  return principal.permissions.includes(flag);
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(() => loadSession());

  useEffect(() => onSessionChange(setSession), []);

  const signIn = useCallback((pair: TokenPair) => saveSession(sessionFromTokens(pair)), []);

  const signOut = useCallback(async () => {
    const current = loadSession();
    if (current) {
      try {
        await call(api.POST("/api/v1/auth/logout", { body: { refresh_token: current.refreshToken } }));
      } catch {
        // The session ends locally whatever the server says.
      }
    }
    saveSession(null);
  }, []);

  const reloadPrincipal = useCallback(async () => {
    const current = loadSession();
    if (!current) return null;
    const principal = await call(api.GET("/api/v1/auth/me"));
    const latest = loadSession() ?? current;
    saveSession({ ...latest, principal });
    return principal;
  }, []);

  const value = useMemo<Auth>(() => {
    const principal = session?.principal ?? null;
    return {
      session,
      principal,
      signIn,
      signOut,
      reloadPrincipal,
      can: (flag: string) => principalCan(principal, flag),
      isSuperAdmin: principal?.kind === "factory_user" && principal.role === "super_admin",
    };
  }, [session, signIn, signOut, reloadPrincipal]);

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth must be used inside <AuthProvider>");
  return auth;
}
