// Loads one page of a list endpoint and keeps limit/offset/search state for a table.
import { useCallback, useEffect, useRef, useState } from "react";
import { describeError } from "../api/errors";
import type { Page } from "../api/types";

export interface Paged<T> {
  page: Page<T> | null;
  loading: boolean;
  error: string | null;
  offset: number;
  limit: number;
  setOffset: (offset: number) => void;
  reload: () => void;
}

/**
 * `load(limit, offset)` fetches a page; it is re-run whenever `deps` change (offset goes back
 * to 0 then), when the offset changes, and on `reload()`.
 */
export function usePaged<T>(
  load: (limit: number, offset: number) => Promise<Page<T>>,
  deps: unknown[],
  limit = 25,
): Paged<T> {
  const [page, setPage] = useState<Page<T> | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [offset, setOffset] = useState(0);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const depKey = JSON.stringify(deps);
  const lastDepKey = useRef(depKey);

  useEffect(() => {
    let effectiveOffset = offset;
    if (lastDepKey.current !== depKey) {
      lastDepKey.current = depKey;
      if (offset !== 0) {
        setOffset(0);
        return;
      }
      effectiveOffset = 0;
    }
    let cancelled = false;
    setLoading(true);
    loadRef
      .current(limit, effectiveOffset)
      .then((next) => {
        if (cancelled) return;
        setPage(next);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!cancelled) setError(describeError(err));
      })
      .finally(() => {
        if (!cancelled) setLoading(false);
      });
    return () => {
      cancelled = true;
    };
  }, [depKey, offset, limit, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { page, loading, error, offset, limit, setOffset, reload };
}

/** A value that follows `value` after it has stopped changing for `ms`. */
export function useDebounced<T>(value: T, ms = 300): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setDebounced(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}
