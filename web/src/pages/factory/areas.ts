// The factory areas that later features fill in; the shell routes to each already.
import type { icons } from "../../components/icons";

export interface Area {
  path: string;
  title: string;
  icon: keyof typeof icons;
  /** The permission flag that lets an admin change things in this area. */
  flag: string;
  summary: string;
}

export const AREAS: Area[] = [
  { path: "devices", title: "Devices", icon: "devices", flag: "devices", summary: "Meters and machines, their MQTT credentials and discovered properties." },
  { path: "rules", title: "Rules", icon: "rules", flag: "rules", summary: "Conditions on live telemetry, with schedules and cooldowns." },
  { path: "alerts", title: "Alerts", icon: "alerts", flag: "alerts", summary: "Open and resolved alerts, acknowledgement and notifications." },
  { path: "analytics", title: "Analytics", icon: "analytics", flag: "analytics", summary: "Datasets, models and runs on the factory's history." },
  { path: "reports", title: "Reports", icon: "reports", flag: "reports", summary: "Energy reports as PDF, Excel or JSON." },
];
