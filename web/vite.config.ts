// Vite build for the FactoryOps portal. The built assets go straight into the Python
// package (src/factoryops/webui), which the API process serves on the same port.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// During `npm run dev` the API runs separately (factoryops up, port 8000 by default).
const apiTarget = process.env.FACTORYOPS_API_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/factoryops/webui",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: {
      "/api": apiTarget,
      "/healthz": apiTarget,
      "/readyz": apiTarget,
    },
  },
});
