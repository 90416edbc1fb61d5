import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";

// postgres.js 3.4.9 throws from a setImmediate when a connection closes with a small write still
// waiting (porsager/postgres#1154, #1208): an uncaught TypeError that ends the process. The fault
// suite (npm run test:faults, every connection terminated under load) found it; patches/ carries
// the guard and `npm install` applies it (postinstall: patch-package). This checks the installed
// driver is the patched one, in each build a bundler or Node may load.
// The package's CommonJS entry is <dir>/cjs/src/index.js (its exports do not include package.json).
const packageDir = dirname(dirname(dirname(createRequire(import.meta.url).resolve("postgres"))));

describe("the installed postgres.js", () => {
  it.each(["src", "cjs/src"])("%s/connection.js guards the deferred write and clears its timer on close", async (build) => {
    const source = await readFile(join(packageDir, build, "connection.js"), "utf8");
    const nextWrite = /function nextWrite\(fn\) \{([\s\S]*?)\n  \}/.exec(source)?.[1] ?? "";
    expect(nextWrite.indexOf("if (socket === null)")).toBeGreaterThanOrEqual(0);
    expect(nextWrite.indexOf("if (socket === null)")).toBeLessThan(nextWrite.indexOf("socket.write("));
    // …and fails the queries whose bytes it drops, instead of leaving them waiting.
    expect(nextWrite).toMatch(/if \(socket === null\) \{[\s\S]*error\(Errors\.connection\('CONNECTION_CLOSED'/);
    for (const teardown of ["function terminate()", "async function closed(hadError)"]) {
      const body = source.slice(source.indexOf(teardown), source.indexOf(teardown) + 400);
      expect(body).toMatch(/clearImmediate\(nextWriteTimer\)\n\s*chunk = nextWriteTimer = null/);
    }
  });
});
