import { build } from "esbuild";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { DEFAULT_PASSWORD_POLICY, passwordContextWords, passwordProblem } from "../../packages/core/src/password-policy";
import { summarize } from "../lib/stats";

/**
 * What the password policy costs a sign-up: the time of one full check (length, surrogates,
 * blocklist, context words), the first one apart (it decodes the filter), and the bytes the
 * policy with its blocklist adds to the bundle (minified, on its own).
 */
export async function measurePasswordPolicy(iterations: number) {
  const context = passwordContextWords({ email: "ada.lovelace@example.com", name: "Ada Lovelace" });
  const candidate = () => `${randomBytes(12).toString("base64url")} horse`;
  const firstStart = performance.now();
  passwordProblem(candidate(), DEFAULT_PASSWORD_POLICY, context);
  const firstMs = performance.now() - firstStart;
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const password = candidate();
    const start = performance.now();
    passwordProblem(password, DEFAULT_PASSWORD_POLICY, context);
    samples.push((performance.now() - start) * 1000);
  }
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL("../../packages/core/src/password-policy.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    minify: true,
    write: false,
    logLevel: "error",
  });
  return { checkUs: summarize(samples), firstCheckMs: firstMs, bundleBytes: bundle.outputFiles[0]!.contents.byteLength };
}
