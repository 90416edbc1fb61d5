import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// `npm run test:infra`: needs SST's platform in .sst/ (scripts/sst-install.mjs puts it there).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["tests/**/*.test.ts", "test/**/*.test.ts", "src/**/*.test.ts"],
    // Child processes, not threads: the suites spawn Node processes and change directories.
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
