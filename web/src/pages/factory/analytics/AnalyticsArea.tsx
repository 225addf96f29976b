// "/f/:slug/analytics/*": the analytics area. Its sections (datasets, runs, model versions) share
// a tab bar and the analytics status: when the object store is unreachable the API says so, the
// banner shows its message, and the buttons that start work are disabled with that reason.
import { useCallback, useEffect, useMemo, useState } from "react";
import { Navigate, NavLink, Route, Routes } from "react-router-dom";
import { analyticsStatus, type AnalyticsStatus } from "../../../api/analytics";
import { useAuth } from "../../../auth/AuthContext";
import { AnalyticsContext, UnavailableBanner, useBase, type AnalyticsAccess } from "./common";
import { DatasetPage } from "./DatasetPage";
import { DatasetsList } from "./DatasetsList";
import { ModelVersions } from "./ModelVersions";
import { NewDataset } from "./NewDataset";
import { NewRun } from "./NewRun";
import { RunCompare } from "./RunCompare";
import { RunPage } from "./RunPage";
import { RunsList } from "./RunsList";

const STATUS_POLL_MS = 30_000;

export function AnalyticsArea() {
  const { can } = useAuth();
  const base = useBase();
  const mayChange = can("analytics");
  const [status, setStatus] = useState<AnalyticsStatus | null>(null);
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    let stopped = false;
    const load = () => {
      if (document.hidden) return;
      analyticsStatus()
        .then((next) => !stopped && setStatus(next))
        .catch(() => undefined); // the pages say what failed; the banner is only for a paused analytics
    };
    load();
    const timer = window.setInterval(load, STATUS_POLL_MS);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [tick]);

  const access = useMemo<AnalyticsAccess>(() => {
    let blocked: string | null = null;
    if (!mayChange) blocked = "Starting exports and runs needs the analytics permission.";
    else if (status && !status.available) blocked = status.message || "Analytics is paused.";
    return { status, mayChange, blocked, refresh };
  }, [status, mayChange, refresh]);

  const tab = ({ isActive }: { isActive: boolean }) => `analytics-tab${isActive ? " active" : ""}`;

  return (
    <AnalyticsContext.Provider value={access}>
      <nav className="analytics-tabs" aria-label="Analytics sections">
        <NavLink to={`${base}/datasets`} className={tab}>
          Datasets
        </NavLink>
        <NavLink to={`${base}/runs`} className={tab}>
          Runs
        </NavLink>
        <NavLink to={`${base}/models`} className={tab}>
          Model versions
        </NavLink>
      </nav>
      <UnavailableBanner />
      <Routes>
        <Route index element={<Navigate to="datasets" replace />} />
        <Route path="datasets" element={<DatasetsList />} />
        <Route path="datasets/new" element={<NewDataset />} />
        <Route path="datasets/:datasetId" element={<DatasetPage />} />
        <Route path="runs" element={<RunsList />} />
        <Route path="runs/new" element={<NewRun />} />
        <Route path="runs/compare" element={<RunCompare />} />
        <Route path="runs/:runId" element={<RunPage />} />
        <Route path="models" element={<ModelVersions />} />
        <Route path="*" element={<Navigate to="datasets" replace />} />
      </Routes>
    </AnalyticsContext.Provider>
  );
}
