import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HANDLERS, NATIVE_PACKAGES, RUNTIME_PROVIDED } from "../src/settings";
import { bundleFunction, packageOf, type Bundle } from "../tests/support/bundle";
import { ROOT } from "../tests/support/graph";

/**
 * SST bundles each function and installs only `nodejs.install` into its node_modules, at the
 * version the handler's package.json declares (or whatever is newest, when it declares none). A
 * runtime dependency missing from either list deploys fine and fails on the first request that
 * needs it. Fast, and needs no `sst install`: it runs with `npm test` too.
 */
interface Manifest {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  version?: string;
}
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;
const functionsPackage = readJson<Manifest>(join(ROOT, "packages/functions/package.json"));
const lock = readJson<{ packages: Record<string, Manifest & { cpu?: string[]; os?: string[]; libc?: string[] }> }>(join(ROOT, "package-lock.json"));

/** Bare specifiers loaded with `require`/`createRequire(...)(...)`: esbuild cannot see those. */
function runtimeRequires(bundle: Bundle): string[] {
  const found = new Set<string>();
  for (const input of Object.keys(bundle.metafile.inputs)) {
    if (input.includes("node_modules/") || !input.startsWith("packages/")) continue; // workspace sources only
    const source = readFileSync(join(ROOT, input), "utf8");
    for (const match of source.matchAll(/(?:\brequire|createRequire\([^()]*\))\(\s*["'`]([^"'`]+)["'`]\s*\)/g)) {
      const name = packageOf(match[1]!);
      if (name) found.add(name);
    }
  }
  return [...found].sort();
}

let work: string;
const bundles: Bundle[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "authlith-deps-"));
  for (const [id, handler] of Object.entries(HANDLERS)) {
    bundles.push(await bundleFunction({ handler, out: join(work, id), install: id === "api" ? NATIVE_PACKAGES : [], external: id === "api" ? RUNTIME_PROVIDED : [] }));
  }
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("what SST must install for the functions", () => {
  it("is listed, with a version, in the handler package's dependencies", () => {
    for (const name of NATIVE_PACKAGES) {
      expect(functionsPackage.dependencies?.[name], `packages/functions/package.json dependencies["${name}"]`).toMatch(/^[\^~]?\d+\.\d+\.\d+/);
    }
  });

  it("covers every package a bundle leaves to the runtime, imported or required", () => {
    for (const bundle of bundles) {
      const left = [...bundle.externals.map(packageOf), ...runtimeRequires(bundle)].filter((name): name is string => name !== null);
      for (const name of new Set(left)) {
        expect([...NATIVE_PACKAGES, ...RUNTIME_PROVIDED] as string[], `${bundle.file} needs ${name} at run time`).toContain(name);
      }
    }
    // The API bundle does need the addon (so listing it is not dead weight).
    const api = bundles.find((b) => b.file.endsWith("handler.mjs"))!;
    expect([...api.externals, ...runtimeRequires(api)].map(packageOf)).toContain("@node-rs/argon2");
  });

  it("is locked at a version the package range accepts, with a Linux arm64 build to install on Lambda", () => {
    for (const name of NATIVE_PACKAGES) {
      const locked = lock.packages[`node_modules/${name}`];
      expect(locked?.version, `package-lock.json: ${name}`).toBeDefined();
      const range = functionsPackage.dependencies![name]!;
      const [major] = range.replace(/^[\^~]/, "").split(".");
      expect(locked!.version!.split(".")[0], `${name} ${locked!.version} within ${range}`).toBe(major);
      const platformBuilds = Object.keys(locked!.optionalDependencies ?? {});
      if (platformBuilds.length > 0) {
        const arm64 = platformBuilds.find((dep) => {
          const entry = lock.packages[`node_modules/${dep}`];
          return entry?.os?.includes("linux") && entry.cpu?.includes("arm64") && (entry.libc?.includes("glibc") ?? true);
        });
        expect(arm64, `${name} has a linux-arm64 (glibc) build`).toBeDefined();
        expect(lock.packages[`node_modules/${arm64}`]!.version).toBe(locked!.version);
      }
    }
  });
});
