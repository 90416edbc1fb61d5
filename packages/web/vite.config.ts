import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The example app. `npm run dev:web` (scripts/dev.ts) starts it next to the API; the browser
// tests start it the same way on free ports.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  clearScreen: false,
  // Nothing to pre-bundle: the only import is @authlith/client, a workspace package served as source.
  optimizeDeps: { noDiscovery: true, include: [] },
  build: { outDir: "dist", target: "es2022" },
});
