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
import { DevicePage } from "./pages/factory/devices/DevicePage";
import { DevicesList } from "./pages/factory/devices/DevicesList";
import { Properties } from "./pages/factory/devices/Properties";
import { Rejects } from "./pages/factory/devices/Rejects";
import { Overview } from "./pages/factory/Overview";
import { Users } from "./pages/factory/Users";
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
        {AREAS.filter((area) => area.path !== "devices").map((area) => (
          <Route key={area.path} path={area.path} element={<AreaPlaceholder area={area} />} />
        ))}
        <Route path="users" element={<Users />} />
        <Route path="audit" element={<AuditLog />} />
        <Route path="*" element={<Navigate to="overview" replace />} />
      </Route>
      <Route path="/root/login" element={<RootLogin />} />
      <Route path="/root" element={<RootLayout />}>
        <Route index element={<RootConsole />} />
      </Route>
      <Route path="*" element={<NotFound />} />
    </Routes>
  );
}
