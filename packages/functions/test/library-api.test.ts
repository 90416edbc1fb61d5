import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The card's libraries are used through their public API only: no import of a library's internal
 * module (tRPC's `unstable-core-do-not-import`, anything under a package's `dist/`), no reading of
 * tRPC's `_def` internals, in any product file. And tRPC is pinned exactly, so an upgrade is a
 * reviewed change that reruns the differential test, never a silent one.
 */
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

const FORBIDDEN: { pattern: RegExp; why: string }[] = [
  { pattern: /unstable-core-do-not-import/, why: "tRPC's internal module" },
  { pattern: /\b_def\b/, why: "tRPC's router/procedure internals" },
  { pattern: /from\s+["'][^"']*\/dist\/[^"']*["']|import\(\s*["'][^"']*\/dist\/[^"']*["']\s*\)/, why: "a package's build output" },
];

/** Every TypeScript file that ships or configures the product: packages' src/, sst.config.ts. */
function productFiles(): string[] {
  const files = [join(ROOT, "sst.config.ts")];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name === "node_modules" || name === "dist") continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|tsx|mts)$/.test(name) && !/\.test\.tsx?$/.test(name)) files.push(path);
    }
  };
  for (const pkg of readdirSync(join(ROOT, "packages"))) {
    const src = join(ROOT, "packages", pkg, "src");
    if (statSync(join(ROOT, "packages", pkg)).isDirectory() && readdirSync(join(ROOT, "packages", pkg)).includes("src")) walk(src);
  }
  return files;
}

function violations(source: string): string[] {
  return FORBIDDEN.filter(({ pattern }) => pattern.test(source)).map(({ why }) => why);
}

describe("library API hygiene", () => {
  it("finds what it looks for", () => {
    expect(violations('import { getProcedureAtPath } from "@trpc/server/unstable-core-do-not-import";')).toEqual(["tRPC's internal module"]);
    expect(violations("const type = procedure._def.type;")).toEqual(["tRPC's router/procedure internals"]);
    expect(violations('type P = AppRouter["_def"]["record"];')).toEqual(["tRPC's router/procedure internals"]);
    expect(violations('import x from "ioredis/built/Command";')).toEqual([]);
    expect(violations('import { x } from "@trpc/server/dist/index.mjs";')).toEqual(["a package's build output"]);
    expect(violations('import { initTRPC } from "@trpc/server";\nconst defaults = 1;')).toEqual([]);
  });

  it("no product file reaches into a library's internals", () => {
    const files = productFiles();
    expect(files.length).toBeGreaterThan(40);
    const found = files.flatMap((file) => violations(readFileSync(file, "utf8")).map((why) => `${relative(ROOT, file)}: ${why}`));
    expect(found).toEqual([]);
  });

  it("pins every @trpc package to one exact version everywhere (one that exists for all of them)", () => {
    const versions = new Map<string, Set<string>>();
    for (const pkg of ["", ...readdirSync(join(ROOT, "packages")).map((name) => join("packages", name))]) {
      let manifest: Record<string, Record<string, string> | undefined>;
      try {
        manifest = JSON.parse(readFileSync(join(ROOT, pkg, "package.json"), "utf8"));
      } catch {
        continue;
      }
      for (const section of ["dependencies", "devDependencies", "peerDependencies"]) {
        for (const [name, range] of Object.entries(manifest[section] ?? {})) {
          if (!name.startsWith("@trpc/")) continue;
          expect(range, `${pkg || "."}/package.json ${name}`).toMatch(/^\d+\.\d+\.\d+$/);
          versions.set(name, (versions.get(name) ?? new Set()).add(range));
        }
      }
    }
    expect([...versions.keys()].sort()).toEqual(["@trpc/client", "@trpc/server", "@trpc/tanstack-react-query"]);
    const all = new Set([...versions.values()].flatMap((set) => [...set]));
    expect(all.size).toBe(1);
    for (const name of versions.keys()) {
      const installed = JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
      expect(all, `${name} as installed`).toContain(installed);
    }
  });
});
