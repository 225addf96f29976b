// The platform root's health page: dependencies, processes, job queue and telemetry figures.
import { api, call } from "./client";
import type { paths } from "./schema";

type Ok<Op> = Op extends { responses: { 200: { content: { "application/json": infer T } } } } ? T : never;

export type PlatformHealth = Ok<paths["/api/v1/root/health"]["get"]>;
export type PlatformService = PlatformHealth["services"][number];
export type Dependency = PlatformHealth["dependencies"][number];
export type TrendPoint = PlatformHealth["trend"][number];

export function loadPlatformHealth(): Promise<PlatformHealth> {
  return call(api.GET("/api/v1/root/health"));
}
