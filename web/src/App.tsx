// The portal's routes. The API serves index.html for every non-/api path, so these are
// real addresses that can be bookmarked and reloaded.
import { Navigate, Route, Routes } from "react-router-dom";
import { FactoryLayout } from "./components/FactoryLayout";
import { RootLayout } from "./components/RootLayout";
import { FactoryLogin } from "./pages/FactoryLogin";
import { FactoryPicker } from "./pages/FactoryPicker";
import { NotFound } from "./pages/NotFound";
import { RootLogin } from "./pages/RootLogin";
import { AREAS } from "./pages/factory/areas";
import { AreaPlaceholder } from "./pages/factory/AreaPlaceholder";
import { AuditLog } from "./pages/factory/AuditLog";
import { AlertPage } from "./pages/factory/alerts/AlertPage";
import { AnalyticsArea } from "./pages/factory/analytics/AnalyticsArea";
import { ReportsArea } from "./pages/factory/reports/ReportsArea";
import { AlertsList } from "./pages/factory/alerts/AlertsList";
import { Deliveries } from "./pages/factory/alerts/Deliveries";
import { DevicePage } from "./pages/factory/devices/DevicePage";
import { DevicesList } from "./pages/factory/devices/DevicesList";
import { Properties } from "./pages/factory/devices/Properties";
import { Rejects } from "./pages/factory/devices/Rejects";
import { RetentionPage } from "./pages/factory/devices/Retention";
import { RuleEditor } from "./pages/factory/rules/RuleEditor";
import { RulesList } from "./pages/factory/rules/RulesList";
import { NotificationPrefs } from "./pages/factory/NotificationPrefs";
import { Overview } from "./pages/factory/Overview";
import { Users } from "./pages/factory/Users";
import { PlatformHealth } from "./pages/root/PlatformHealth";
import { RootConsole } from "./pages/root/RootConsole";

export function App() {
  return (
    <Routes>
      <Route path="/" element={<FactoryPicker />} />
      <Route path="/f/:slug/login" element={<FactoryLogin />} />
      <Route path="/f/:slug" element={<FactoryLayout />}>
        <Route index element={<Navigate to="overview" replace />} />
        <Route path="overview" element={<Overview />} />
        <Route path="devices" element={<DevicesList />} />
        <Route path="devices/:deviceId" element={<DevicePage />} />
        <Route path="properties" element={<Properties />} />
        <Route path="telemetry-rejects" element={<Rejects />} />
        <Route path="retention" element={<RetentionPage />} />
        <Route path="rules" element={<RulesList />} />
        <Route path="rules/new" element={<RuleEditor />} />
        <Route path="rules/:ruleId" element={<RuleEditor />} />
        <Route path="alerts" element={<AlertsList />} />
        <Route path="alerts/:alertId" element={<AlertPage />} />
        <Route path="deliveries" element={<Deliveries />} />
        <Route path="notifications" element={<NotificationPrefs />} />
        <Route path="analytics/*" element={<AnalyticsArea />} />
        <Route path="reports/*" element={<ReportsArea />} />
        {AREAS.filter((area) => !["devices", "rules", "alerts", "analytics", "reports"].includes(area.path)).map((area) => (
          <Route key={area.path} path={area.path} element={<AreaPlaceholder area={area} />} />
        ))}
        <Route path="users" element={<Users />} />
        <Route path="audit" element={<AuditLog />} />
        <Route path="*" element={<Navigate to="overview" replace />} />
      </Route>
      <Route path="/root/login" element={<RootLogin />} />
      <Route path="/root" element={<RootLayout />}>
        <Route index element={<RootConsole />} />
        <Route path="health" element={<PlatformHealth />} />
      </Route>
      <Route path="*" element={<NotFound />} />
    </Routes>
  );
}
