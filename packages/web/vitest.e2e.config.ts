import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// `npm run test:e2e`: Chromium against the dev server and the example app, and the client's
// published build. Kept out of `npm test` (which needs no browser).
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["packages/web/test/**/*.e2e.ts", "packages/client/test/**/*.e2e.ts"],
    pool: "forks",
    // One browser and one stack at a time: two cores.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
