// The permission flags the backend knows (GET /meta/permissions), with the built-in list
// as a fallback while loading or if the call fails.
import { useEffect, useState } from "react";
import { api, call } from "../api/client";
import { PERMISSION_FLAGS } from "../api/types";

let cached: string[] | null = null;

export function usePermissionFlags(): string[] {
  const [flags, setFlags] = useState<string[]>(cached ?? [...PERMISSION_FLAGS]);
  useEffect(() => {
    if (cached) return;
    call(api.GET("/api/v1/meta/permissions"))
      .then((res) => {
        cached = res.permissions;
        setFlags(res.permissions);
      })
      .catch(() => undefined);
  }, []);
  return flags;
}
