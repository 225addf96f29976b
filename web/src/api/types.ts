// Shapes the UI works with, taken from the generated OpenAPI types by endpoint rather than
// by schema name, so that renaming a Pydantic model on the backend does not break the UI.
import type { paths } from "./schema";

type JsonBody<R> = R extends { content: { "application/json": infer T } } ? T : never;
type Ok<Op> = Op extends { responses: infer R }
  ? 200 extends keyof R
    ? JsonBody<R[200]>
    : 201 extends keyof R
      ? JsonBody<R[201]>
      : never
  : never;
type Body<Op> = Op extends { requestBody?: infer B } ? JsonBody<NonNullable<B>> : never;

export type TokenPair = Ok<paths["/api/v1/auth/login"]["post"]>;
export type Principal = Ok<paths["/api/v1/auth/me"]["get"]>;
export type Role = Principal["role"];
export type FactoryRole = Exclude<Role, "platform_root">;
export type FactoryBrief = Ok<paths["/api/v1/public/factories"]["get"]>["items"][number];
export type Factory = Ok<paths["/api/v1/factory"]["get"]>;
export type PlatformFactory = Ok<paths["/api/v1/platform/factories"]["get"]>["items"][number];
export type User = Ok<paths["/api/v1/users"]["get"]>["items"][number];
export type AuditEvent = Ok<paths["/api/v1/audit-events"]["get"]>["items"][number];

export type UserCreate = Body<paths["/api/v1/users"]["post"]>;
export type UserUpdate = Body<paths["/api/v1/users/{user_id}"]["patch"]>;
export type FactoryCreate = Body<paths["/api/v1/platform/factories"]["post"]>;
export type NewSuperAdmin = Body<paths["/api/v1/platform/factories/{factory_id}/super-admins"]["post"]>;

/** A page of any list endpoint. */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** Write areas a factory admin may be granted; the order is the order shown in forms. */
export const PERMISSION_FLAGS = ["devices", "rules", "alerts", "analytics", "reports"] as const;
export type PermissionFlag = (typeof PERMISSION_FLAGS)[number];

export const PERMISSION_LABELS: Record<string, string> = {
  devices: "Devices",
  rules: "Rules",
  alerts: "Alerts (acknowledge / resolve)",
  analytics: "Analytics",
  reports: "Reports",
};

export const ROLE_LABELS: Record<string, string> = {
  super_admin: "Super admin",
  admin: "Admin",
  platform_root: "Platform root",
};
