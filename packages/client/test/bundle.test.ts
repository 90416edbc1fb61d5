import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { browserBundle } from "../scripts/browser-bundle";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** What a frontend's bundler makes of `contents` (an app's entry importing @authlith/client). */
const bundle = (contents: string) => browserBundle({ stdin: { contents, resolveDir: ROOT, loader: "ts" }, absWorkingDir: ROOT });

describe("the client in a browser bundle", () => {
  it("carries no server code: its own modules and @trpc/client's (the router is a type-only import)", async () => {
    const { main, lazy } = await bundle(`export * from "@authlith/client";`);
    const modules = main.inputs.filter((input) => input !== "<stdin>");
    expect(modules.some((input) => input.startsWith("packages/client/src/"))).toBe(true);
    for (const input of modules) {
      expect(input).toMatch(/^(packages\/client\/src\/[a-z-]+\.ts|node_modules\/@trpc\/(client|server)\/dist\/[\w./-]+\.mjs)$/);
    }
    // No adapter of tRPC's server side (what @trpc/client takes from @trpc/server is shared code).
    expect(modules.filter((input) => /adapters|aws-lambda/.test(input))).toEqual([]);
    // The whole client with what it uses of @trpc/client, minified and gzipped (the budget:
    // 12 KiB); the build (npm run build -w @authlith/client) reports it too.
    expect(main.gzipBytes).toBeLessThan(12 * 1024);
    // The passkey ceremonies' library is loaded on first use (`import()`): a chunk of its own, with
    // nothing else in it, on a budget of its own.
    expect(lazy.inputs.length).toBeGreaterThan(0);
    for (const input of lazy.inputs) expect(input).toMatch(/^node_modules\/@simplewebauthn\/browser\//);
    expect(lazy.gzipBytes).toBeLessThan(6 * 1024);
  });

  it("is tree-shakeable: importing only the error class brings nothing else", async () => {
    const { main } = await bundle(`import { AuthClientError } from "@authlith/client"; console.log(AuthClientError);`);
    expect(main.text).toContain("AuthClientError");
    expect(main.text).not.toContain("BroadcastChannel");
    expect(main.text).not.toContain("/trpc/");
    expect(main.inputs.filter((input) => input.includes("@simplewebauthn"))).toEqual([]);
  });
});
