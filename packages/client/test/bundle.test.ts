import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** What a frontend's bundler makes of `contents` (an app's entry importing @authlith/client). */
async function bundle(contents: string) {
  const result = await build({
    stdin: { contents, resolveDir: ROOT, loader: "ts" },
    absWorkingDir: ROOT,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const code = result.outputFiles[0]!.contents;
  return { inputs: Object.keys(result.metafile.inputs), text: new TextDecoder().decode(code), gzipBytes: gzipSync(code, { level: 9 }).byteLength };
}

describe("the client in a browser bundle", () => {
  it("carries no server code: its own modules and @trpc/client's (the router is a type-only import)", async () => {
    const { inputs, gzipBytes } = await bundle(`export * from "@authlith/client";`);
    const modules = inputs.filter((input) => input !== "<stdin>");
    expect(modules.some((input) => input.startsWith("packages/client/src/"))).toBe(true);
    for (const input of modules) {
      expect(input).toMatch(/^(packages\/client\/src\/[a-z-]+\.ts|node_modules\/@trpc\/(client|server)\/dist\/[\w./-]+\.mjs)$/);
    }
    // No adapter of tRPC's server side (what @trpc/client takes from @trpc/server is shared code).
    expect(modules.filter((input) => /adapters|aws-lambda/.test(input))).toEqual([]);
    // The whole client with what it uses of @trpc/client, minified and gzipped (the budget:
    // 12 KiB); the build (npm run build -w @authlith/client) reports it too.
    expect(gzipBytes).toBeLessThan(12 * 1024);
  });

  it("is tree-shakeable: importing only the error class brings nothing else", async () => {
    const { text } = await bundle(`import { AuthClientError } from "@authlith/client"; console.log(AuthClientError);`);
    expect(text).toContain("AuthClientError");
    expect(text).not.toContain("BroadcastChannel");
    expect(text).not.toContain("/trpc/");
  });
});
