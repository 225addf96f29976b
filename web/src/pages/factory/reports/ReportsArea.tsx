// "/f/:slug/reports/*": the reports area. Its sections (history, the builder, schedules, the
// report settings) share a tab bar. Everyone of the factory reads the history, downloads and
// reads schedules and settings; requesting reports, schedules and settings need the reports permission.
import { Navigate, NavLink, Route, Routes } from "react-router-dom";
import { useAuth } from "../../../auth/AuthContext";
import { useBase } from "./common";
import { ReportBuilder } from "./ReportBuilder";
import { ReportPage } from "./ReportPage";
import { ReportSettingsPage } from "./ReportSettings";
import { ReportsList } from "./ReportsList";
import { ScheduleForm } from "./ScheduleForm";
import { SchedulesList } from "./SchedulesList";

export function ReportsArea() {
  const base = useBase();
  const { can } = useAuth();
  const tab = ({ isActive }: { isActive: boolean }) => `analytics-tab${isActive ? " active" : ""}`;
  return (
    <>
      <nav className="analytics-tabs report-tabs" aria-label="Reports sections">
        <NavLink to={`${base}/history`} className={tab}>
          History
        </NavLink>
        {can("reports") && (
          <NavLink to={`${base}/new`} className={tab}>
            New report
          </NavLink>
        )}
        <NavLink to={`${base}/schedules`} className={tab}>
          Schedules
        </NavLink>
        <NavLink to={`${base}/settings`} className={tab}>
          Settings
        </NavLink>
      </nav>
      <Routes>
        <Route index element={<Navigate to="history" replace />} />
        <Route path="history" element={<ReportsList />} />
        <Route path="new" element={<ReportBuilder />} />
        <Route path="schedules" element={<SchedulesList />} />
        <Route path="schedules/new" element={<ScheduleForm />} />
        <Route path="schedules/:scheduleId" element={<ScheduleForm />} />
        <Route path="settings" element={<ReportSettingsPage />} />
        <Route path=":reportId" element={<ReportPage />} />
        <Route path="*" element={<Navigate to="history" replace />} />
      </Routes>
    </>
  );
}
