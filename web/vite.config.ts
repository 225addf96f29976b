// Vite build for the FactoryOps portal. The built assets go straight into the Python
// package (src/factoryops/webui), which the API process serves on the same port.
import { defineConfig, loadEnv } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig(({ mode }) => {
  // During `npm run dev` the API runs separately (factoryops up, port 8000 by default);
  // FACTORYOPS_API_URL points the dev server's proxy elsewhere.
  const env = loadEnv(mode, ".", "FACTORYOPS_");
  const apiTarget = env.FACTORYOPS_API_URL ?? "http://127.0.0.1:8000";
  return {
    plugins: [react()],
    build: {
      outDir: "../src/factoryops/webui",
      emptyOutDir: true,
      chunkSizeWarningLimit: 800,
    },
    server: {
      proxy: {
        "/api": apiTarget,
        "/healthz": apiTarget,
        "/readyz": apiTarget,
      },
    },
  };
});
