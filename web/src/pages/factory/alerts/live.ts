// Polling that keeps alert pages live: it pauses while the browser tab is hidden, catches up
// at once when the tab comes back, and never stacks requests behind a slow server.
import { useCallback, useEffect, useRef, useState } from "react";
import { describeError } from "../../../api/errors";
import type { Page } from "../../../api/types";
import type { Paged } from "../../../lib/usePaged";

/** Calls `callback` every `ms` while the tab is visible (and once when it becomes visible again). */
export function useVisibleInterval(callback: () => void, ms: number, enabled = true): void {
  const ref = useRef(callback);
  ref.current = callback;
  useEffect(() => {
    if (!enabled) return;
    let timer: number | undefined;
    const stop = () => {
      if (timer !== undefined) window.clearInterval(timer);
      timer = undefined;
    };
    const start = () => {
      stop();
      timer = window.setInterval(() => ref.current(), ms);
    };
    const onVisibility = () => {
      if (document.hidden) {
        stop();
      } else {
        ref.current();
        start();
      }
    };
    document.addEventListener("visibilitychange", onVisibility);
    if (!document.hidden) start();
    return () => {
      stop();
      document.removeEventListener("visibilitychange", onVisibility);
    };
  }, [ms, enabled]);
}

/**
 * Like usePaged, refreshed every `intervalMs` while the tab is visible. A poll is skipped while
 * the previous request is still out, and only the newest answer is shown; `loading` is true only
 * for loads the user caused (filters, paging, reload), not for the quiet polls.
 */
export function usePolledPage<T>(
  load: (limit: number, offset: number) => Promise<Page<T>>,
  deps: unknown[],
  intervalMs: number,
  limit = 25,
): Paged<T> & { updatedAt: number | null } {
  const [page, setPage] = useState<Page<T> | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [offset, setOffset] = useState(0);
  const [updatedAt, setUpdatedAt] = useState<number | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const seq = useRef(0);
  const inFlight = useRef(false);
  const currentOffset = useRef(0);
  const depKey = JSON.stringify(deps);
  const lastDepKey = useRef(depKey);

  const fetchPage = useCallback(
    (quiet: boolean) => {
      if (quiet && inFlight.current) return;
      const id = ++seq.current;
      inFlight.current = true;
      if (!quiet) setLoading(true);
      loadRef
        .current(limit, currentOffset.current)
        .then((next) => {
          if (id !== seq.current) return;
          setPage(next);
          setError(null);
          setUpdatedAt(Date.now());
          // The page emptied under us (e.g. its alerts were resolved): show the last one that has rows.
          if (next.items.length === 0 && next.total > 0 && currentOffset.current > 0) {
            setOffset(Math.max(0, Math.floor((next.total - 1) / limit) * limit));
          }
        })
        .catch((err: unknown) => {
          if (id === seq.current) setError(describeError(err));
        })
        .finally(() => {
          if (id !== seq.current) return;
          inFlight.current = false;
          setLoading(false);
        });
    },
    [limit],
  );

  useEffect(() => {
    let effective = offset;
    if (lastDepKey.current !== depKey) {
      lastDepKey.current = depKey;
      if (offset !== 0) {
        setOffset(0);
        return;
      }
      effective = 0;
    }
    currentOffset.current = effective;
    fetchPage(false);
  }, [depKey, offset, fetchPage]);

  useVisibleInterval(() => fetchPage(true), intervalMs);

  const reload = useCallback(() => fetchPage(false), [fetchPage]);
  return { page, loading, error, offset, limit, setOffset, reload, updatedAt };
}

/** A value loaded by `load`, refreshed every `intervalMs` while the tab is visible. */
export function usePolled<T>(
  load: () => Promise<T>,
  deps: unknown[],
  intervalMs: number,
): { data: T | null; error: unknown; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const seq = useRef(0);
  const inFlight = useRef(false);
  const depKey = JSON.stringify(deps);

  const fetchNow = useCallback((quiet: boolean) => {
    if (quiet && inFlight.current) return;
    const id = ++seq.current;
    inFlight.current = true;
    loadRef
      .current()
      .then((next) => {
        if (id !== seq.current) return;
        setData(next);
        setError(null);
      })
      .catch((err: unknown) => {
        if (id === seq.current) setError(err);
      })
      .finally(() => {
        if (id === seq.current) inFlight.current = false;
      });
  }, []);

  useEffect(() => {
    setData(null);
    fetchNow(false);
  }, [depKey, fetchNow]);

  useVisibleInterval(() => fetchNow(true), intervalMs);
  const reload = useCallback(() => fetchNow(false), [fetchNow]);
  return { data, error, reload };
}
