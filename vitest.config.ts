import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    // Child processes, not threads: PGlite's WASM heap and the spawned-process suites are isolated.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
