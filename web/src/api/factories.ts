// The public factory list behind the sign-in dropdown (names and slugs only).
import { api, call } from "./client";
import type { FactoryBrief } from "./types";

const PAGE = 200;
const MAX = 2000;

/** Every factory, in the order the API gives them, fetched page by page. */
export async function loadPublicFactories(): Promise<FactoryBrief[]> {
  const all: FactoryBrief[] = [];
  for (let offset = 0; offset < MAX; offset += PAGE) {
    const page = await call(api.GET("/api/v1/public/factories", { params: { query: { limit: PAGE, offset } } }));
    all.push(...page.items);
    if (offset + page.items.length >= page.total || page.items.length === 0) break;
  }
  return all;
}
