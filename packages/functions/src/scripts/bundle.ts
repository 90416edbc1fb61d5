import { build } from "esbuild";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const HANDLER_ENTRY = fileURLToPath(new URL("../handler.ts", import.meta.url));
/** Packages SST installs beside the bundle (`nodejs.install`) instead of bundling: native addons. */
export const INSTALLED_PACKAGES = ["@node-rs/argon2"];

/**
 * Bundles the Lambda handler as SST does for a Node function: one minified ESM file, platform
 * node, with `require` available to CommonJS dependencies, and the native argon2 addon left
 * external (SST installs it for the target architecture). Returns the file and its size.
 */
export async function bundleHandler(outdir: string, options: { target?: string } = {}) {
  const outfile = join(outdir, "handler.mjs");
  await build({
    entryPoints: [HANDLER_ENTRY],
    outfile,
    bundle: true,
    minify: true,
    platform: "node",
    format: "esm",
    target: options.target ?? "node20",
    mainFields: ["module", "main"],
    external: INSTALLED_PACKAGES,
    banner: { js: "import { createRequire as __authlithRequire } from 'node:module'; const require = __authlithRequire(import.meta.url);" },
    legalComments: "none",
    logLevel: "error",
  });
  return { file: outfile, bytes: (await stat(outfile)).size };
}
