import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The example app (React). `npm run dev:web` (scripts/dev.ts) starts it next to the API, with the
// app's own API at /api; the browser tests start it the same way on free ports.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  clearScreen: false,
  oxc: { jsx: { runtime: "automatic", importSource: "react" } },
  // Pre-bundled once at start (React is CommonJS); @authlith/client is a workspace package served as source.
  optimizeDeps: {
    noDiscovery: true,
    include: ["react", "react/jsx-runtime", "react/jsx-dev-runtime", "react-dom/client", "@tanstack/react-query", "@trpc/client", "@trpc/tanstack-react-query", "@trpc/server/observable", "@simplewebauthn/browser"],
  },
  build: { outDir: "dist", target: "es2022" },
});
